"""What every task of the graph shares: the raw files as external tasks, the shard count, and
`CheckpointTask`, whose identity and checkpoint folder are derived in one place.

A task's significant parameters are the ones that change its output, its own and those it
passes down (with `luigi.util.inherits` and `clone`). Its checkpoint folder is
`<checkpoint_dir>/<TaskFamily>/<parameter=value,...>/<generation>`, where the generation digests
those parameters, the folders of the tasks it requires and the fingerprints of the raw files it
requires: a changed input or parameter reaches exactly the tasks downstream of it.
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path

import luigi
from luigi.parameter import ParameterVisibility
from luigi.task import flatten

from msd_tasks.errors import InputError
from msd_tasks.formats import raw
from msd_tasks.formats.checkpoints import Checkpoint, DeliverablesCheckpoint
from msd_tasks.formats.publish import checksums
from msd_tasks.graph.config import paths, pipeline
from msd_tasks.graph.runstats import measured
from msd_tasks.stages.shards import automatic_shard_count

logger = logging.getLogger("luigi-interface")

# Bump when a change to the code changes what a checkpoint holds: every generation is rebuilt.
CHECKPOINT_VERSION = "6"

# The longest path: the train import, JoinPlays, the shards, UserTable. Luigi runs the runnable
# task of highest priority first and gives a task's requirements its priority: the train import
# starts before the small imports, and the shards before the tasks beside them (RESULTS.md).
# Next come the report's inputs (SongTable, PlayMatrices): the report then runs beside UserTable
# instead of last, alone, after PlaysTable (RESULTS.md, session 7).
PRIORITY = {"train import": 100, "longest path": 50, "report": 40}

# What the tasks' build() methods import (numpy, pyarrow, pandas, PyTables). Planning needs
# none of it, so a no-op build does not import it. Luigi forks a process per task (--workers 2):
# imported before the forks, by BuildAll when it is not complete, it is imported once per build
# instead of once per task (RESULTS.md, "Design measurements").
STAGE_LIBRARIES = (
    "msd_tasks.formats.layouts",
    "msd_tasks.formats.deliverables",
    "msd_tasks.stages.songs",
    "msd_tasks.stages.users",
    "msd_tasks.stages.matrices",
    "msd_tasks.stages.id_codes",  # numba, and its compiled functions from the cache
)


def import_stage_libraries() -> None:
    for name in STAGE_LIBRARIES:
        importlib.import_module(name)


class RawFile(luigi.ExternalTask):
    """A raw input file under `[paths] raw_dir`; a missing one is Luigi's missing data, except
    an optional file (sid_mismatches.txt), which the task that reads it may do without."""

    key = luigi.ChoiceParameter(choices=[*raw.RAW_FILES, *raw.OPTIONAL_FILES])

    def output(self):
        return luigi.LocalTarget(str(raw.raw_path(paths().raw_dir, self.key)))

    def complete(self) -> bool:
        return self.key in raw.OPTIONAL_FILES or super().complete()


class ShardCount(luigi.IntParameter):
    """A number of user-hash shards; 0 stands for `[pipeline] n_shards`, and where that is 0 too,
    for the automatic count for the train file's size.

    Resolved when a task is made, from that one setting, so BuildAll and a stage started on its
    own agree.
    """

    def normalize(self, x):
        count = super().normalize(x) or pipeline().n_shards
        if count == 0:
            train = raw.raw_source(paths().raw_dir, "train")
            count = automatic_shard_count(train.text_bytes() if train.path.exists() else 0)
        if count < 1:
            raise ValueError(f"n_shards must be 0 (automatic) or at least 1, not {count}")
        return count


class CheckpointTask(luigi.Task):
    """A stage whose output is a checkpoint folder; complete when it and all upstream ones are.

    Subclasses name their checkpoint class and implement `build(out)`: read `self.input()`,
    write into `out` (the checkpoint on a temporary folder, renamed into place when `build`
    returns) and return counts for `stats.json`; a `warnings` list in them is logged.
    """

    fingerprints = luigi.DictParameter(
        default={},
        significant=False,
        visibility=ParameterVisibility.HIDDEN,
        description="identity of each raw file's content when the build was planned (BuildAll "
        "sets it; empty: plan now); part of the checkpoint digest, not of the task id",
    )
    raw_stats = luigi.DictParameter(
        default={},
        significant=False,
        visibility=ParameterVisibility.HIDDEN,
        description="size:mtime of each raw file when the build was planned, to check that "
        "the file read is the one planned with",
    )
    planned_at = luigi.FloatParameter(
        default=0.0,
        significant=False,
        visibility=ParameterVisibility.HIDDEN,
        description="Unix time BuildAll planned the build at, for the build's wall time",
    )

    checkpoint = Checkpoint  # the class of its checkpoint

    def output(self) -> Checkpoint:
        return self.checkpoint(self.folder())

    def folder(self) -> Path:
        # Computed once per instance: it digests the whole upstream graph.
        if getattr(self, "_folder", None) is None:
            self._folder = checkpoint_folder(self)
        return self._folder

    def complete(self) -> bool:
        # Recursive: a deleted upstream checkpoint makes everything downstream of it rerun.
        return self.output().exists() and all(task.complete() for task in flatten(self.requires()))

    def run(self):
        with self.output().temporary() as out:
            with measured() as run:
                stats = self.build(out) or {}
                if isinstance(out, DeliverablesCheckpoint):  # hashed here, beside other tasks
                    out.write_checksums(checksums(out.path, out.names))
            for warning in stats.get("warnings", []):
                logger.warning("%s: %s", self.get_task_family(), warning)
            out.write_stats(stats)
            out.write_run({"task": self.task_id, **run.as_dict()})

    def build(self, out: Checkpoint) -> dict | None:
        raise NotImplementedError

    def raw_path(self, key: str) -> Path:
        return raw.raw_path(paths().raw_dir, key)

    def check_unchanged(self, key: str) -> None:
        """Fail if a raw file changed since the build was planned (it may have been half read)."""
        path = self.raw_path(key)
        planned, now = planned_raw_files(self)[1][key], raw.file_fingerprint(path)
        if now != planned:
            raise InputError(
                path,
                "while the build read it",
                f"an unchanged file (size:mtime {planned})",
                f"{now}; it was modified during the run, so run the build again",
            )


class DeliverableTask(CheckpointTask):
    """A task whose checkpoint holds files to publish, `published`, with their checksums."""

    published: tuple[str, ...] = ()

    def output(self) -> DeliverablesCheckpoint:
        return DeliverablesCheckpoint(self.folder(), self.published)


def checkpoint_folder(task: CheckpointTask) -> Path:
    """The one place a checkpoint's identity is made (gokart's `_make_hash_id` is the model)."""
    requirements = flatten(task.requires())
    upstream = sorted(str(t.folder()) for t in requirements if isinstance(t, CheckpointTask))
    fingerprints = planned_fingerprints(task)
    raw_inputs = sorted(f"{t.key}={fingerprints[t.key]}" for t in requirements if is_raw(t))
    label = ",".join(f"{name}={value}" for name, value in sorted(identity(task).items()))
    family = task.get_task_family()
    generation = raw.digest(CHECKPOINT_VERSION, family, label, *upstream, *raw_inputs)
    return Path(paths().checkpoint_dir, family, *([label] if label else []), generation)


def identity(task: luigi.Task) -> dict[str, object]:
    """The parameters that make `task` what it is: significant ones shown by the scheduler."""
    return {
        name: getattr(task, name)
        for name, parameter in task.get_params()
        if parameter.significant and parameter.visibility == ParameterVisibility.PUBLIC
    }


def build_plan(entry: luigi.Task) -> dict[str, object]:
    """The hidden parameters an entry task (BuildAll, BenchmarkSplit) gives every task of its
    build: the raw files' identities and size:mtime, planned now, and when it first planned
    (Luigi asks an entry task for its requirements more than once)."""
    identity, stats = raw.planned_fingerprints(Path(paths().raw_dir), Path(paths().checkpoint_dir))
    planned_at = entry.planned_at or entry.__dict__.setdefault("_planned_at", time.time())
    return {"fingerprints": identity, "raw_stats": stats, "planned_at": planned_at}


def planned_fingerprints(task: luigi.Task) -> dict[str, str]:
    """The raw files' identities the build of `task` planned with (or, if none, those now)."""
    return planned_raw_files(task)[0]


def planned_raw_files(task: luigi.Task) -> tuple[dict, dict]:
    """(identity, size:mtime) of the raw files, as BuildAll planned them, or planned now for a
    task started on its own (the same function, so the same identities)."""
    if task.fingerprints and task.raw_stats:
        return dict(task.fingerprints), dict(task.raw_stats)
    if task.fingerprints:  # given by hand: size:mtime as identity
        return dict(task.fingerprints), dict(task.fingerprints)
    return raw.planned_fingerprints(Path(paths().raw_dir), Path(paths().checkpoint_dir))


def is_raw(task: luigi.Task) -> bool:
    return isinstance(task, RawFile)


def graph_tasks(task: luigi.Task) -> list[CheckpointTask]:
    """`task` (if a CheckpointTask) and every CheckpointTask upstream of it, each once."""
    found = {}
    pending = [task]
    while pending:
        current = pending.pop()
        if current.task_id not in found and not is_raw(current):
            found[current.task_id] = current
            pending.extend(flatten(current.requires()))
    return [found_task for found_task in found.values() if isinstance(found_task, CheckpointTask)]
