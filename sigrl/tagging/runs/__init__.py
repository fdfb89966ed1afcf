"""Runs: what a run is and did, kept beside its output in OUT.meta.json. Imports only records.

    sidecar.py   run_meta, check_resumable (an output never mixes models, labels or rules),
                 earlier_runs, recorded_run (running -> complete / interrupted / failed)
    metafile.py  the sidecar's file: meta_path, read_meta, write_meta (atomic)
    summary.py   Summary (counts, timings, the final line) and the Progress protocol
"""

from sigrl.tagging.runs.metafile import meta_path, read_meta, write_meta
from sigrl.tagging.runs.summary import Progress, Summary

__all__ = ["Progress", "Summary", "meta_path", "read_meta", "write_meta"]
