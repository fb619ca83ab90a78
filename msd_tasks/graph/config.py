"""Environment settings, read from `luigi.cfg` sections or `--<section>-<name>` flags.

Settings here never change results; what changes results is a task parameter, so it lands in
the checkpoint paths.
"""

from __future__ import annotations

from pathlib import Path

import luigi


class paths(luigi.Config):
    raw_dir = luigi.Parameter(default="data", description="Folder holding the raw MSD files")
    checkpoint_dir = luigi.Parameter(
        default="data/checkpoints", description="Folder for the per-task parquet checkpoints"
    )
    output_dir = luigi.Parameter(default="data", description="Folder the deliverables go to")


class pipeline(luigi.Config):
    n_shards = luigi.IntParameter(
        default=0,
        description="User-hash shards of PerUserMusic, run in parallel by --workers; "
        "0: one per 384 MiB of train_triplets.txt, at least 2",
    )
    keep_generations = luigi.IntParameter(
        default=3, description="Checkpoint generations kept per task after a successful build"
    )


class quality(luigi.Config):
    """Quality gates (msd_tasks/quality.py): checked when the stage that sees the problem runs."""

    min_train_join_share = luigi.FloatParameter(
        default=0.2,
        description="Fail when the join keeps a smaller share of the train lines "
        "(the real files keep about a third)",
    )
    test_users_in_train = luigi.ChoiceParameter(
        choices=["warn", "error"],
        default="warn",
        description="Test-file users who also have train lines: a warning or an error",
    )


class metrics(luigi.Config):
    path = luigi.Parameter(
        default="",
        description="Where every build writes metrics.prom (Prometheus text format); "
        "empty: <output_dir>/metrics.prom",
    )


def metrics_path() -> Path:
    from msd_tasks.formats.metrics import FILE_NAME

    return Path(metrics().path or Path(paths().output_dir) / FILE_NAME)
