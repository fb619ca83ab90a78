"""The end of the graph: publish the deliverables, write the build report, and BuildAll.

`luigi --module msd_tasks BuildAll` runs everything; see msd_tasks/tasks.py for the stages.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import luigi
from luigi.task import flatten

from msd_tasks import raw
from msd_tasks.checkpoints import prune_generations, remove_orphan_temporaries
from msd_tasks.config import paths, pipeline
from msd_tasks.errors import MissingInputError
from msd_tasks.publish import publish
from msd_tasks.tasks import (
    ImportTriplets,
    IndexMappings,
    PipelineTask,
    PlayMatrices,
    SongTable,
    UserTable,
    read_json,
)

logger = logging.getLogger("luigi-interface")

DELIVERABLES = {
    "user_mapping.h5": IndexMappings,
    "song_mapping.h5": IndexMappings,
    "train_sparse.npz": PlayMatrices,
    "test_sparse.npz": PlayMatrices,
    "song_df.h5": SongTable,
    "user_df.h5": UserTable,
    "song_df.parquet": SongTable,
    "user_df.parquet": UserTable,
}


class Publish(PipelineTask):
    """The deliverables in `[paths] output_dir`, replaced together, then manifest.json."""

    def requires(self):
        families = sorted({task.__name__: task for task in DELIVERABLES.values()}.items())
        return {name: self.clone(task) for name, task in families}

    def output(self):
        return luigi.LocalTarget(str(Path(paths().output_dir) / "manifest.json"))

    def complete(self) -> bool:
        manifest = Path(self.output().path)
        if not manifest.exists():
            return False
        try:
            build = json.loads(manifest.read_text()).get("build")
        except ValueError:
            return False
        return build == self.folder().name and all(t.complete() for t in flatten(self.requires()))

    def run(self):
        tasks = self.requires()
        sources = {
            name: tasks[task.__name__].folder() / name for name, task in DELIVERABLES.items()
        }
        counts = {
            **self.joined().stats(),
            **tasks["PlayMatrices"].stats(),
            **tasks["UserTable"].stats(),
            "skipped_lines": {
                kind: self.clone(ImportTriplets, kind=kind).stats()["skipped_lines"]
                for kind in raw.TRIPLET_KINDS
            },
        }
        publish(
            sources,
            Path(paths().output_dir),
            build=self.folder().name,
            details={
                "fingerprints": self.raw_fingerprints(),
                "parameters": {
                    "on_bad_lines": self.on_bad_lines,
                    "music_scaling": self.music_scaling,
                    "n_shards": self.n_shards,
                    "drop_mismatches": self.drop_mismatches,
                },
                "counts": counts,
            },
        )
        removed = prune_generations(
            Path(paths().checkpoint_dir), pipeline().keep_generations, graph_folders(self)
        )
        removed += remove_orphan_temporaries(Path(paths().checkpoint_dir))
        if removed:
            logger.info(
                "Removed %d old checkpoint generations and orphan temporaries", len(removed)
            )


def graph_folders(task: luigi.Task) -> set[Path]:
    """The checkpoint folders of `task` and everything upstream of it."""
    return {upstream.folder() for upstream in graph_tasks(task)}


class BuildAll(luigi.WrapperTask):
    """Everything, from the raw files in `[paths] raw_dir` to the deliverables in `output_dir`."""

    on_bad_lines = luigi.ChoiceParameter(
        choices=["error", "skip"], default="error", description="Malformed triplet lines"
    )
    music_scaling = luigi.ChoiceParameter(
        choices=["raw", "zscore"], default="raw", description="Audio features before MUSIC"
    )
    drop_mismatches = luigi.BoolParameter(
        default=False, description="Drop plays of songs listed in sid_mismatches.txt"
    )

    def requires(self):
        missing = raw.missing_files(paths().raw_dir)
        if missing:
            logger.error("%s", MissingInputError(missing, raw.SOURCES))
        return BuildReport(
            fingerprints=raw.fingerprints(paths().raw_dir),
            on_bad_lines=self.on_bad_lines,
            music_scaling=self.music_scaling,
            drop_mismatches=self.drop_mismatches,
            n_shards=pipeline().n_shards,
        )


class BuildReport(PipelineTask):
    """`output_dir/report/`: index.html, report.json and PNG figures of what the build did."""

    @property
    def publish(self) -> Publish:
        return self.clone(Publish)

    def requires(self):
        return self.publish

    def output(self):
        return luigi.LocalTarget(str(self.report_dir() / "report.json"))

    def report_dir(self) -> Path:
        return Path(paths().output_dir) / "report"

    def complete(self) -> bool:
        report = Path(self.output().path)
        if not report.exists() or not self.publish.complete():
            return False
        try:
            return read_json(report).get("build") == self.publish.folder().name
        except ValueError:
            return False

    def run(self):
        from msd_tasks.report import render_report  # matplotlib is slow to import

        render_report(report_facts(self.publish), Path(paths().output_dir), self.report_dir())


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


def report_facts(publish_task: Publish) -> dict:
    """The numbers of one build, from its checkpoints' stats.json and run.json files."""
    tasks = {task.get_task_family(): task for task in graph_tasks(publish_task)}
    tasks.update(
        {kind: publish_task.clone(ImportTriplets, kind=kind) for kind in raw.TRIPLET_KINDS}
    )
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
    for task in sorted(graph_tasks(publish_task), key=lambda task: task.task_id):
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
        "build": publish_task.folder().name,
        "funnel": funnel,
        "tasks": runs,
        "fingerprints": publish_task.raw_fingerprints(),
        "parameters": {
            "on_bad_lines": publish_task.on_bad_lines,
            "music_scaling": publish_task.music_scaling,
            "n_shards": publish_task.n_shards,
            "drop_mismatches": publish_task.drop_mismatches,
        },
        "warnings": build_warnings(tasks),
    }


def build_warnings(tasks: dict[str, PipelineTask]) -> list[str]:
    warnings = []
    for kind in raw.TRIPLET_KINDS:
        skipped = tasks[kind].stats()["skipped_lines"]
        if skipped:
            warnings.append(f"{raw.RAW_FILES[kind]}: skipped {skipped:,} malformed lines")
    users = tasks["UserTable"].stats()
    if users["songs_without_features"]:
        warnings.append(
            f"{users['songs_without_features']:,} songs have no audio features; they are left "
            f"out of the MUSIC means of {users['users_with_featureless_songs']:,} users, "
            f"{users['users_without_music']:,} of whom have no MUSIC (NaN)"
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
