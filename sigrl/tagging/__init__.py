"""Batch tagging of image collections: discovery, decoding, batching, decisions and output.

The Python API is `Tagger` (sigrl.tagging.api): `Tagger(model=..., backend=..., labels=[...])`,
then `.tag(inputs)` -> records, `.scores(inputs)` -> [n, N], `.run(inputs, out)` -> Summary.
A whole run is one frozen value, `TagJob` (sigrl.tagging.spec), taken by both engines.

Data flows one way: paths -> decoded uint8 -> (a runner) scores -> decisions -> records -> writer.

    inputs.plan_inputs(inputs)                    -> InputPlan(files: Discovery, containers, patterns)
    sources.discover(inputs)                      -> Discovery(paths, problems)
    inputs.iter_members(containers, skip)         -> Member per tar sample / Parquet row (streamed;
                                                     webdataset.py, tables.py, braces.py)
    labels.read_labels(path)                      -> list[str]
    decisions.make_rule(labels, threshold, per_label, topk, scores_mode) -> DecisionRule
    writers.open_output(out, resume, overwrite)   -> Output (skip Output.is_done(path) inputs)
    pipeline.iter_batches(paths, preprocess, batch_size, workers, decoding, queue_depth)
                                                  -> Batch(paths, images [b,S,S,3] uint8, failures, reduced)
    recheck.Rechecker(runner, labels, rule, decoding, workers).push(batch, scores)
                                                  -> [(batch, final scores)] (--decode checked)
    records.batch_records(batch.paths, scores, rule, batch.failures) -> Output.write(...)
    sidecar.recorded_run(out, sidecar.run_meta(...), summary, runs, started, progress)
                                                  -> OUT.meta.json: running, then complete/interrupted/failed

The whole run, as `sigrl tag` calls it (resume checks, metadata sidecar, counts, timings):

    spec.build_job(inputs, labels_file, out, ...)  -> TagJob (the CLI's options, parsed once)
    Tagger.from_job(job).run_job(job, plan, progress) -> Summary (local engine: job.run_job)
    ray_engine.run_job_ray(job, plan, progress, echo) -> Summary (Ray engine)
    job.run_tagging(inputs, runner, labels, rule, out, resume, overwrite, batch_size, workers,
                    decoding, progress)            -> Summary (run_job with the job as arguments)
    job.choose_rule(labels, threshold, threshold_file, topk, scores_mode, model) -> (rule, source)
    calibrate.calibrate(runner, manifest, labels)  -> Calibration (per-label F1-optimal thresholds)

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
