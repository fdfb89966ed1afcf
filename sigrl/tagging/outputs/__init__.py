"""Outputs: where records go. Imports records, and the run sidecar's file I/O (runs.metafile) for merge.

    formats.py   FORMATS, output_format: the format from the file extension
    writer.py    open_output -> Output: crash-safe appends, resume, torn-tail repair, foreign-file
                 refusal; read_records reads any output back
    codecs.py    the JSON Lines and CSV layouts, and the checks before a file is continued
    parquet.py   Parquet output, finished from the writer's JSON Lines journal (never imports the writer)
    shards.py    a sharded run's folder (Ray engine): shard plan, shard files, manifest
    merge.py     merge_shards: a shard folder joined into one file (`sigrl merge`)
"""

from sigrl.tagging.outputs.formats import FORMATS, output_format
from sigrl.tagging.outputs.merge import merge_shards
from sigrl.tagging.outputs.writer import Output, holds_records, open_output, read_records

__all__ = ["FORMATS", "Output", "holds_records", "merge_shards", "open_output", "output_format", "read_records"]
