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
    folders = {task.folder()} if isinstance(task, PipelineTask) else set()
    for requirement in flatten(task.requires()):
        folders |= graph_folders(requirement)
    return folders


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
        return Publish(
            fingerprints=raw.fingerprints(paths().raw_dir),
            on_bad_lines=self.on_bad_lines,
            music_scaling=self.music_scaling,
            drop_mismatches=self.drop_mismatches,
            n_shards=pipeline().n_shards,
        )
