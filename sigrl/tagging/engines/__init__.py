"""Engines: a TagJob run end to end. Both drive the same scoring.BatchScorer; neither imports the other.

    local.py       run_job: this process (decode threads, one runner), one output file
    ray_engine.py  run_job_ray: a Ray cluster, one model replica per actor, a folder of shards
"""
