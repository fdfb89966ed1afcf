"""Batch tagging of image collections: inputs -> scoring -> records -> outputs, run by an engine.

The Python API is `Tagger` (sigrl.tagging.api): `Tagger(model=..., backend=..., labels=[...])`,
then `.tag(inputs)` -> records, `.scores(inputs)` -> [n, N], `.run(inputs, out)` -> Summary.
A whole run is one frozen value, `TagJob` (sigrl.tagging.spec), taken by both engines.

Data flows one way:

    inputs/ (paths, tar samples, table rows)      plan_inputs -> InputPlan; iter_members -> Member
      -> scoring/ (decode, runner.infer, recheck) BatchScorer(inputs) -> (Batch, scores [b, N])
      -> records.py (decisions/ turn scores into tags)  batch_records -> Record
      -> outputs/ (file, Parquet, shard folder)   open_output(...).write(records); write_shard
    runs/ keeps OUT.meta.json beside the output (what the run is, whether it may resume, counts)

The layers, each importing only those listed before it (tests/test_layers.py checks this):

    decisions/   decision rule, thresholds (read, write, fit, the model's stored ones), label files,
                 choose_rule; imports nothing else of sigrl.tagging
    records.py   what a record is, how it is stored, a path's identity (path_key)
    inputs/      planning, files and folders, tar shards, Parquet tables, brace patterns, Member
    runs/        the metadata sidecar and its file, Summary, Progress
    outputs/     the crash-safe writer and its codecs, Parquet, Ray shard files, merge
    scoring/     BatchScorer, the CPU and device decode pipelines, the near-tie recheck
    spec.py      TagJob and its parts, build_job (the CLI's options, parsed once), resolve_model
    engines/     local.run_job and ray_engine.run_job_ray; both drive scoring.BatchScorer
    api.py       Tagger (the local engine with the model opened once); calibrate.py: fitted thresholds

inputs/ never imports outputs/ or runs/, and neither of those imports inputs/ or scoring/; scoring/
knows the runner interface but no outputs or engines; the engines do not import each other.

Nothing here imports torch: the decode path and the writers must stay cheap to import so that an
ONNX Runtime run starts fast.
"""

__all__ = ["TagJob", "Tagger"]


def __getattr__(name: str) -> object:  # lazy: importing sigrl.tagging stays cheap
    if name == "Tagger":
        from sigrl.tagging.api import Tagger

        return Tagger
    if name == "TagJob":
        from sigrl.tagging.spec import TagJob

        return TagJob
    raise AttributeError(f"module 'sigrl.tagging' has no attribute {name!r}")
