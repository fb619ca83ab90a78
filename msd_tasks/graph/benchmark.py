"""The standard MSD benchmark split (Mult-VAE / RecVAE / EASE) as a task family beside BuildAll:
`luigi --module msd_tasks BenchmarkSplit` writes it into `output_dir/benchmark/msd-multvae/`.

MultVaeSplit reads the train import's checkpoint (the same ImportTriplets(train) as BuildAll's)
and writes the split's files into its own checkpoint; PublishBenchmarkSplit publishes them with
their manifest, as Publish does the deliverables. BuildAll does not build it (about 10 s more).
"""

from __future__ import annotations

from pathlib import Path

import luigi
from luigi.util import inherits

from msd_tasks.formats import raw
from msd_tasks.formats.checkpoints import TripletsCheckpoint
from msd_tasks.formats.publish import is_published, publish
from msd_tasks.formats.split_layout import COPIES, CSV_FILES, SPLIT_FOLDER
from msd_tasks.graph.base import (
    DeliverableTask,
    build_plan,
    graph_tasks,
    identity,
    planned_raw_files,
)
from msd_tasks.graph.config import paths
from msd_tasks.graph.inputs import ImportTriplets


class MultVaeSplit(DeliverableTask):
    """The split's files: RecVAE's seven, byte for byte, and their parquet and .npz copies."""

    on_bad_lines = ImportTriplets.on_bad_lines
    min_songs_per_user = luigi.IntParameter(default=20, description="Users with fewer lines go")
    min_users_per_song = luigi.IntParameter(default=200, description="Songs on fewer lines go")
    heldout_users = luigi.IntParameter(
        default=50_000, description="Validation users, and as many test users"
    )
    test_share = luigi.FloatParameter(
        default=0.2, description="Share of each held-out user's songs to predict"
    )
    seed = luigi.IntParameter(default=98765, description="Seed of the legacy NumPy generator")

    published = CSV_FILES + COPIES

    def requires(self):
        return self.clone(ImportTriplets, kind="train")

    def build(self, out):
        from concurrent.futures import ThreadPoolExecutor

        from msd_tasks.formats.benchmark_files import write_split_csv, write_split_parquet

        train: TripletsCheckpoint = self.input()
        self.set_status_message("splitting")
        with ThreadPoolExecutor(max_workers=1) as pool:  # hashed beside the split, for the manifest
            digest = pool.submit(raw.file_digest, self.raw_path("train"))
            split = self.split(train)
            inputs = {raw.raw_name(paths().raw_dir, "train"): digest.result()}
        self.check_unchanged("train")
        self.set_status_message("writing")
        with ThreadPoolExecutor(max_workers=1) as pool:  # pyarrow writes without the GIL
            copies = pool.submit(write_split_parquet, split, out.path)
            write_split_csv(split, out.path)
            copies.result()
        return {
            "users": len(split.unique_uid),
            "songs": len(split.unique_sid),
            **{f"{name}_lines": len(part) for name, part in split.parts().items()},
            "inputs": inputs,
        }

    def split(self, train: TripletsCheckpoint):
        from msd_tasks.stages.benchmark_split import benchmark_split
        from msd_tasks.stages.quality import QualityError

        try:
            return benchmark_split(
                train.triplets(),
                min_songs_per_user=self.min_songs_per_user,
                min_users_per_song=self.min_users_per_song,
                heldout_users=self.heldout_users,
                test_share=self.test_share,
                seed=self.seed,
            )
        except ValueError as error:  # the data cannot make this split: publish nothing
            raise QualityError(self.get_task_family(), [str(error)]) from None


@inherits(MultVaeSplit)
class PublishBenchmarkSplit(luigi.Task):
    """The split in `output_dir/benchmark/msd-multvae/`, replaced whole, then its manifest."""

    def requires(self):
        return self.clone(MultVaeSplit)

    def output(self):
        return luigi.LocalTarget(str(split_dir() / "manifest.json"))

    def complete(self) -> bool:
        return is_published(split_dir(), self.build_id()) and self.requires().complete()

    def build_id(self) -> str:
        return raw.digest(str(self.requires().folder()))

    def run(self):
        split: MultVaeSplit = self.requires()
        checkpoint = self.input()
        counts = checkpoint.stats()
        inputs = counts.pop("inputs")
        publish(
            {file: checkpoint.file(file) for file in MultVaeSplit.published},
            split_dir(),
            build=self.build_id(),
            details={
                "protocol": "Mult-VAE (Liang et al., WWW 2018), as RecVAE's preprocessing.py",
                "parameters": identity(split),
                "fingerprints": {"train": planned_raw_files(self)[0]["train"]},
                "inputs": inputs,
                "counts": counts,
                "tasks": [task.task_id for task in graph_tasks(split)],
            },
            known_checksums=checkpoint.checksums(),
        )
        raw.record_digests(
            paths().raw_dir, Path(paths().checkpoint_dir), *planned_raw_files(self), inputs
        )


@inherits(PublishBenchmarkSplit)
class BenchmarkSplit(luigi.WrapperTask):
    """The benchmark split from `[paths] raw_dir` to `output_dir/benchmark/msd-multvae/`; the
    train file is fingerprinted once, here, as BuildAll does."""

    def requires(self):
        return self.clone(PublishBenchmarkSplit, **build_plan(self))


def split_dir() -> Path:
    return Path(paths().output_dir) / SPLIT_FOLDER
