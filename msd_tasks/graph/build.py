"""The end of the graph: publish the deliverables, write the build report, and BuildAll.

`luigi --module msd_tasks BuildAll` runs everything; see msd_tasks/tasks.py for the stages.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import luigi
from luigi.task import flatten

from msd_tasks.errors import MissingInputError
from msd_tasks.formats import raw
from msd_tasks.formats.atomic import prune_generations, remove_orphan_temporaries, remove_retired
from msd_tasks.formats.publish import publish
from msd_tasks.graph.config import paths, pipeline
from msd_tasks.graph.gc_pause import gc_paused
from msd_tasks.graph.tasks import (
    PRIORITY,
    ImportTriplets,
    IndexMappings,
    PipelineTask,
    PlayMatrices,
    ResultParameters,
    SongTable,
    UserTable,
    featureless_stats,
    read_json,
)

logger = logging.getLogger("luigi-interface")

# Tasks of earlier versions of the graph, whose checkpoints nothing reads any more.
RETIRED_FAMILIES = ("UserFrame",)  # user_df.h5 is now written by UserTable
# Each deliverable and the task whose checkpoint holds it.
DELIVERABLES = {
    name: task
    for task in (IndexMappings, PlayMatrices, SongTable, UserTable)
    for name in task.published
}


def build_id(task: PipelineTask) -> str:
    """Names one build: a digest of the checkpoint folders its deliverables come from.

    The report and the manifest both carry it, so a consumer can tell they belong together.
    """
    families = {producer.__name__: producer for producer in DELIVERABLES.values()}
    return raw.digest(*(str(task.clone(families[name]).folder()) for name in sorted(families)))


class Publish(PipelineTask):
    """The deliverables in `[paths] output_dir`, replaced together, then manifest.json."""

    def requires(self):
        families = sorted({task.__name__: task for task in DELIVERABLES.values()}.items())
        return {
            **{name: self.clone(task) for name, task in families},
            "BuildReport": self.clone(BuildReport),
        }

    def output(self):
        return luigi.LocalTarget(str(Path(paths().output_dir) / "manifest.json"))

    def complete(self) -> bool:
        manifest = Path(self.output().path)
        if not manifest.exists():
            return False
        try:
            published = json.loads(manifest.read_text())
        except ValueError:
            return False
        output_dir = manifest.parent
        return (
            published.get("build") == build_id(self)
            and published.get("state") == "complete"
            and all((output_dir / name).is_file() for name in published.get("files", {}))
            and all(task.complete() for task in flatten(self.requires()))
        )

    def run(self):
        tasks = self.requires()
        sources = {
            name: tasks[task.__name__].folder() / name for name, task in DELIVERABLES.items()
        }
        sources["report"] = tasks["BuildReport"].folder() / "report"
        known_checksums = {}
        for task in tasks.values():
            known_checksums.update(task.checksums())
        counts = {
            **{key: value for key, value in self.joined().stats().items() if key != "warnings"},
            **tasks["PlayMatrices"].stats(),
            **tasks["UserTable"].stats(),
            "songs_without_features": tasks["SongTable"].stats()["songs_without_features"],
            "skipped_lines": {
                kind: self.clone(ImportTriplets, kind=kind).stats()["skipped_lines"]
                for kind in raw.TRIPLET_KINDS
            },
        }
        publish(
            sources,
            Path(paths().output_dir),
            build=build_id(self),
            details={
                "warnings": build_warnings(self),
                "fingerprints": self.raw_fingerprints(),
                "parameters": {**self.result_parameters(), "n_shards": self.n_shards},
                "counts": counts,
            },
            known_checksums=known_checksums,
        )
        removed = prune_generations(
            Path(paths().checkpoint_dir), pipeline().keep_generations, graph_folders(self)
        )
        removed += remove_retired(Path(paths().checkpoint_dir), RETIRED_FAMILIES)
        removed += remove_orphan_temporaries(Path(paths().checkpoint_dir))
        if removed:
            logger.info(
                "Removed %d old checkpoint generations and orphan temporaries", len(removed)
            )


def graph_folders(task: luigi.Task) -> set[Path]:
    """The checkpoint folders of `task` and everything upstream of it."""
    return {upstream.folder() for upstream in graph_tasks(task)}


class BuildAll(ResultParameters, luigi.WrapperTask):
    """Everything, from the raw files in `[paths] raw_dir` to the deliverables in `output_dir`."""

    def requires(self):
        from msd_tasks.graph import interrupts  # SIGINT/SIGTERM: exit by them, never half-publish

        interrupts.install()
        missing = raw.missing_files(paths().raw_dir)
        if missing:
            logger.error("%s", MissingInputError(missing, raw.SOURCES))
        return Publish(
            fingerprints=raw.fingerprints(paths().raw_dir),
            **self.result_parameters(),
        )


class BuildReport(PipelineTask):
    """report/: index.html, report.json and PNG figures of what the build did.

    Drawn from the checkpoints while UserTable and IndexMappings run, and published
    with the deliverables; the run section covers the tasks it waited for.
    """

    priority = PRIORITY["report"]
    published = ("report",)

    def requires(self):
        # The user rows come from the shards, not UserTable: the report need not wait for the
        # merge, and it reads the same rows.
        return {
            "SongTable": self.clone(SongTable),
            "PlayMatrices": self.clone(PlayMatrices),
            "shards": self.shards(),
        }

    def build(self, folder):
        with gc_paused():  # matplotlib's modules and artists: thousands of objects, few garbage
            return self.draw(folder)

    def draw(self, folder):
        from msd_tasks.report.page import render_report  # matplotlib is slow to import

        tasks = self.requires()
        sources = {
            "user_df.parquet": [task.folder() / "user_rows.parquet" for task in tasks["shards"]],
            "song_df.parquet": tasks["SongTable"].folder() / "song_df.parquet",
            "train_sparse.npz": tasks["PlayMatrices"].folder() / "train_sparse.npz",
        }
        report = render_report(report_facts(self), sources, folder / "report")
        return {"figures": len(report["figures"])}


FUNNEL = [
    ("CleanSongs", "msd_rows", "MSD rows"),
    ("CleanSongs", "songs", "songs after dedupe"),
    ("CleanSongs", "songs_with_genre", "songs with a genre"),
    ("train", "lines", "train triplets"),
    ("visible", "lines", "visible test triplets"),
    ("hidden", "lines", "hidden test triplets"),
    ("JoinPlays", "mismatched_plays_dropped", "plays of mismatched songs dropped"),
    ("JoinPlays", "visible_plays", "visible plays after the join"),
    ("JoinPlays", "hidden_plays", "hidden plays after the join"),
    ("JoinPlays", "hidden_only_users", "hidden-only users removed"),
    ("JoinPlays", "users", "users"),
    ("JoinPlays", "songs", "songs in the index"),
    ("PlayMatrices", "train_nonzeros", "train matrix nonzeros"),
    ("PlayMatrices", "test_nonzeros", "test matrix nonzeros"),
]


def funnel_key(source: str, key: str) -> str:
    if source in raw.TRIPLET_KINDS:
        return f"{source}_lines"
    return "song_index" if (source, key) == ("JoinPlays", "songs") else key


def report_facts(report_task: BuildReport) -> dict:
    """The numbers of one build, from its checkpoints' stats.json and run.json files."""
    upstream = [task for task in graph_tasks(report_task) if task is not report_task]
    tasks = {task.get_task_family(): task for task in upstream}
    tasks.update({kind: report_task.clone(ImportTriplets, kind=kind) for kind in raw.TRIPLET_KINDS})
    funnel = [
        {
            "key": funnel_key(source, key),
            "label": label,
            "count": tasks[source].stats()[key],
        }
        for source, key, label in FUNNEL
        if key in tasks[source].stats()
    ]
    runs = []
    for task in sorted(upstream, key=lambda task: task.task_id):
        run_file = task.folder() / "run.json"
        if run_file.exists():
            run = read_json(run_file)
            runs.append(
                {
                    "task": task.task_id,
                    "family": task.get_task_family(),
                    "wall_seconds": run["wall_seconds"],
                    "peak_rss_bytes": run["peak_rss_bytes"],
                }
            )
    return {
        "build": build_id(report_task),
        "funnel": funnel,
        "tasks": runs,
        "fingerprints": report_task.raw_fingerprints(),
        "parameters": {**report_task.result_parameters(), "n_shards": report_task.n_shards},
        "warnings": build_warnings(report_task),
    }


def build_warnings(task: PipelineTask) -> list[str]:
    """The warnings of the build `task` belongs to: the quality gates' and the counts'."""
    upstream = sorted(
        (other for other in graph_tasks(task) if other is not task), key=lambda t: t.task_id
    )
    tasks = {other.get_task_family(): other for other in upstream}
    tasks.update({kind: task.clone(ImportTriplets, kind=kind) for kind in raw.TRIPLET_KINDS})
    featureless_users = featureless_stats(task.shards())
    warnings = [
        f"{other.get_task_family()}: {warning}"
        for other in upstream
        for warning in other.stats().get("warnings", [])
    ]
    for kind in raw.TRIPLET_KINDS:
        skipped = tasks[kind].stats()["skipped_lines"]
        if skipped:
            warnings.append(f"{raw.RAW_FILES[kind]}: skipped {skipped:,} malformed lines")
    songs_without_features = tasks["SongTable"].stats()["songs_without_features"]
    if songs_without_features:
        warnings.append(
            f"{songs_without_features:,} songs have no audio features; they are left out of the "
            f"MUSIC means of {featureless_users['users_with_featureless_songs']:,} users, "
            f"{featureless_users['users_without_music']:,} of whom have no MUSIC (NaN)"
        )
    return warnings


def graph_tasks(task: luigi.Task) -> list[PipelineTask]:
    """`task` and every pipeline task upstream of it, each once."""
    found = {}
    pending = [task]
    while pending:
        current = pending.pop()
        if isinstance(current, PipelineTask) and current.task_id not in found:
            found[current.task_id] = current
            pending.extend(flatten(current.requires()))
    return list(found.values())
