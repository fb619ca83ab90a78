"""The end of the graph: the build report, the publication of the deliverables, and BuildAll.

`luigi --module msd_tasks BuildAll` runs everything; graph/inputs.py and graph/outputs.py have
the stages.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import luigi
from luigi.task import flatten
from luigi.util import inherits

from msd_tasks.errors import MissingInputError
from msd_tasks.formats import raw
from msd_tasks.formats.atomic import prune_generations, remove_orphan_temporaries
from msd_tasks.formats.checkpoints import DeliverablesCheckpoint
from msd_tasks.formats.metrics import BuildMetrics, TaskMetrics, write_metrics
from msd_tasks.formats.publish import is_published, publish
from msd_tasks.graph import interrupts
from msd_tasks.graph.base import (
    PRIORITY,
    CheckpointTask,
    DeliverableTask,
    RawFile,
    build_plan,
    graph_tasks,
    identity,
    import_stage_libraries,
    planned_fingerprints,
    planned_raw_files,
)
from msd_tasks.graph.config import metrics_path, paths, pipeline
from msd_tasks.graph.inputs import ImportTriplets, RawDigests
from msd_tasks.graph.outputs import (
    IndexMappings,
    PerUserMusic,
    PlayMatrices,
    PlaysTable,
    SongTable,
    UserTable,
)
from msd_tasks.report.summary import BuildSummary, TaskRun, summarize

logger = logging.getLogger("luigi-interface")

# The tasks whose checkpoints hold the deliverables.
PRODUCERS = (IndexMappings, PlayMatrices, PlaysTable, SongTable, UserTable)
DELIVERABLES = {name: task for task in PRODUCERS for name in task.published}
# Stages whose stats a summary reads, by family (the imports by kind).
SUMMARY_STAGES = ("CleanSongs", "JoinPlays", "PlayMatrices", "SongTable", "RawDigests")


def build_id(task: luigi.Task) -> str:
    """Names one build: a digest of the checkpoint folders its deliverables come from.

    The report and the manifest both carry it, so a consumer can tell they belong together.
    """
    return raw.digest(*(str(task.clone(producer).folder()) for producer in PRODUCERS))


def build_summary(task: luigi.Task) -> BuildSummary:
    """The summary of the build `task` ends: every upstream checkpoint's stats read once."""
    upstream = [other for other in graph_tasks(task) if other is not task]
    stats = {other.task_id: other.output().stats() for other in upstream}
    stages = {
        (other.kind if isinstance(other, ImportTriplets) else other.get_task_family()): stats[
            other.task_id
        ]
        for other in upstream
        if isinstance(other, ImportTriplets) or other.get_task_family() in SUMMARY_STAGES
    }
    runs = []
    for other in upstream:
        run = other.output().run()
        if run is not None:
            runs.append(
                TaskRun(
                    task=other.task_id,
                    family=other.get_task_family(),
                    wall_seconds=run["wall_seconds"],
                    peak_rss_bytes=run["peak_rss_bytes"],
                )
            )
    return summarize(
        build=build_id(task),
        parameters=identity(task),
        fingerprints=planned_fingerprints(task),
        stages=stages,
        shards=[stats[o.task_id] for o in upstream if isinstance(o, PerUserMusic)],
        runs=runs,
    )


@inherits(UserTable)
class BuildReport(DeliverableTask):
    """report/: index.html, report.json and PNG figures of what the build did.

    Drawn from the checkpoints while UserTable and IndexMappings run, and published with the
    deliverables; its run section covers the tasks it waited for.
    """

    published = ("report",)
    priority = PRIORITY["report"]

    def requires(self):
        # The user rows come from the shards, not UserTable: the report need not wait for the
        # merge, and it reads the same rows.
        return {
            "SongTable": self.clone(SongTable),
            "PlayMatrices": self.clone(PlayMatrices),
            "shards": [self.clone(PerUserMusic, shard=shard) for shard in range(self.n_shards)],
        }

    def build(self, out):
        from msd_tasks.report.page import render_report  # matplotlib: only this task needs it

        inputs = self.input()
        sources = {
            "user_df.parquet": [shard.rows_path for shard in inputs["shards"]],
            "song_df.parquet": inputs["SongTable"].file("song_df.parquet"),
            "train_sparse.npz": inputs["PlayMatrices"].file("train_sparse.npz"),
        }
        report = render_report(build_summary(self), sources, out.file("report"))
        return {"figures": len(report["figures"])}


@inherits(UserTable)
class Publish(luigi.Task):
    """The deliverables in `[paths] output_dir`, replaced together, then manifest.json."""

    def requires(self):
        return {
            **{producer.__name__: self.clone(producer) for producer in PRODUCERS},
            "BuildReport": self.clone(BuildReport),
            "RawDigests": self.clone(RawDigests),
        }

    def output(self):
        return luigi.LocalTarget(str(Path(paths().output_dir) / "manifest.json"))

    def complete(self) -> bool:
        return is_published(Path(paths().output_dir), build_id(self)) and all(
            task.complete() for task in flatten(self.requires())
        )

    def run(self):
        checkpoints: dict[str, DeliverablesCheckpoint] = self.input()
        sources = {
            name: checkpoints[producer.__name__].file(name)
            for name, producer in DELIVERABLES.items()
        }
        sources["report"] = checkpoints["BuildReport"].file("report")
        known_checksums = {}
        for name, checkpoint in checkpoints.items():
            if name != "RawDigests":
                known_checksums.update(checkpoint.checksums())
        summary = build_summary(self)
        for warning in summary.warnings:
            logger.warning("Build warning: %s", warning)
        publish(
            sources,
            Path(paths().output_dir),
            build=summary.build,
            details={
                "warnings": list(summary.warnings),
                "fingerprints": summary.fingerprints,
                "inputs": summary.inputs,
                "parameters": summary.parameters,
                "counts": summary.counts,
            },
            known_checksums=known_checksums,
        )
        write_metrics(metrics_path(), success_metrics(summary, self.planned_at))
        in_use = {task.folder() for task in graph_tasks(self)}
        checkpoint_dir = Path(paths().checkpoint_dir)
        raw.record_digests(
            paths().raw_dir, checkpoint_dir, *planned_raw_files(self), summary.inputs
        )
        removed = prune_generations(checkpoint_dir, pipeline().keep_generations, in_use)
        removed += remove_orphan_temporaries(checkpoint_dir)
        if removed:
            logger.info("Removed %d old checkpoint generations and temporaries", len(removed))


@inherits(Publish)
class BuildAll(luigi.WrapperTask):
    """Everything, from the raw files in `[paths] raw_dir` to the deliverables in `output_dir`.

    The raw files are fingerprinted once, here: every task plans with the same fingerprints.
    """

    def complete(self) -> bool:
        done = super().complete()
        if not done:  # tasks will run, in processes forked from this one: import their libraries
            import_stage_libraries()  # once, here, not in each of them
        return done

    def requires(self):
        interrupts.install()  # SIGINT/SIGTERM: exit by them, never half-publish
        missing = raw.missing_files(paths().raw_dir)
        if missing:
            logger.error("%s", MissingInputError(missing, raw.SOURCES))
        return self.clone(Publish, **build_plan(self))


def success_metrics(summary: BuildSummary, planned_at: float) -> BuildMetrics:
    finished = time.time()
    return BuildMetrics(
        succeeded=True,
        finished_at=finished,
        wall_seconds=finished - planned_at if planned_at else None,
        tasks=tuple(
            TaskMetrics(run.task, run.family, run.wall_seconds, run.peak_rss_bytes)
            for run in summary.runs
        ),
        funnel={step.key: step.count for step in summary.funnel},
        skipped_lines=dict(summary.counts["skipped_lines"]),
        warnings=summary.warnings,
    )


def write_failure_metrics(task: luigi.Task, reason: str) -> None:
    """metrics.prom for a failed build: the failure, and the runs of the checkpoints upstream
    of the failed task. Never raises: the build's own error is the one to see."""
    try:
        finished = time.time()
        planned_at = getattr(task, "planned_at", 0.0)
        done = [other for other in graph_tasks(task) if other.output().exists()]
        runs = [(other, other.output().run()) for other in done]
        write_metrics(
            metrics_path(),
            BuildMetrics(
                succeeded=False,
                finished_at=finished,
                wall_seconds=finished - planned_at if planned_at else None,
                tasks=tuple(
                    TaskMetrics(
                        other.task_id,
                        other.get_task_family(),
                        run["wall_seconds"],
                        run["peak_rss_bytes"],
                    )
                    for other, run in runs
                    if run is not None
                ),
                failure=f"{task}: {reason}",
            ),
        )
    except Exception as error:
        logger.warning("Could not write %s: %r", metrics_path(), error)


@CheckpointTask.event_handler(luigi.Event.FAILURE)
@Publish.event_handler(luigi.Event.FAILURE)
def _task_failed(task: luigi.Task, exception: BaseException) -> None:
    write_failure_metrics(task, f"{type(exception).__name__}: {exception}")


@CheckpointTask.event_handler(luigi.Event.PROCESS_FAILURE)
@Publish.event_handler(luigi.Event.PROCESS_FAILURE)
def _task_process_died(task: luigi.Task, error_message: str) -> None:
    write_failure_metrics(task, error_message)


@RawFile.event_handler(luigi.Event.DEPENDENCY_MISSING)
def _raw_file_missing(task: luigi.Task) -> None:
    write_failure_metrics(task, f"missing raw file {task.output().path}")
