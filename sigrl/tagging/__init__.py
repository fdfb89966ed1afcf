"""Batch tagging of image collections: discovery, decoding, batching, decisions and output.

Data flows one way: paths -> decoded uint8 -> (a runner) scores -> decisions -> records -> writer.

    sources.discover(inputs)                      -> Discovery(paths, problems)
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

    job.run_tagging(inputs, runner, labels, rule, out, resume, overwrite, batch_size, workers,
                    decoding, progress)            -> Summary
    job.choose_rule(labels, threshold, threshold_file, topk, scores_mode, model) -> (rule, source)
    calibrate.calibrate(runner, manifest, labels)  -> Calibration (per-label F1-optimal thresholds)

Nothing here imports torch: the decode path and the writers must stay cheap to import so that an
ONNX Runtime run starts fast.
"""
