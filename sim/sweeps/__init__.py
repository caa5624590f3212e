"""Sweeps that scale: chunked jobs, one tidy table, failure records and resume.

An experiment (`experiments/NAME.yaml`) is a Hydra multirun: each job is one design point
(the swept values) and a chunk of seeds, run one after another in the job's process, so a
sweep of thousands of runs is tens of jobs per core, whatever the launcher (basic, joblib,
submitit). Results are stored by design point, not by job::

    DIR/points/<hash>/point.json         the point's overrides, swept values, config
    DIR/points/<hash>/seed-0003/         one run: run.parquet (a row per policy),
                                         steps.parquet (policy means per week)
    DIR/points/<hash>/seed-0003.failed.json   a run that raised: the error and traceback
    DIR/jobs/<num>.json                  what job <num> of this sweep ran

`<hash>` is the hash of the point's resolved config (seed and chunk left out), so a rerun
of the same command into the same DIR skips every run that is complete (both files read
back) and runs only the missing, failed or damaged ones. A run's directory is written under
a temporary name and renamed into place, so a killed sweep loses at most the runs in flight.

`DIR/.sweep.json` says whose sweep DIR holds: its experiment, the id of its latest
submission and, from `clientsim-experiment run`, the design (the point hashes and seeds it
asked for). A sweep starts only in an empty directory or in a sweep of the same experiment,
and removes nothing but what an earlier sweep there wrote (job records, progress marks, the
joined tables). Every job carries its submission's id (`experiment.sweep_id`): a job of an
earlier submission (still queued when DIR was submitted again) writes nothing. When the
sweep ends, the `Collect` callback checks that the job records are exactly the design's
runs and joins them into `DIR/runs.parquet`, `DIR/steps.parquet` and `DIR/manifest.json`;
it exits non-zero with one line when any run failed, a requested run is missing, a record
is foreign or a run's file does not read back.

Modules: `points` (a point and its hash), `directory` (whose sweep a directory holds),
`jobs` (one job's runs), `tables` (the tidy tables), `collect` (the join), `experiment`
(designs and their submission) and `slurm` (the cluster).
"""
