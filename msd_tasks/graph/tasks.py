"""The Luigi task graph, one task per stage: `luigi --module msd_tasks BuildAll`.

Each task writes one checkpoint folder atomically under
`<checkpoint_dir>/<TaskFamily>/<own parameters>/<generation>/`, where the generation digests the
code version, the fingerprints of the raw files it reads and the folders of its requirements:
a changed input or parameter reaches exactly the tasks downstream of it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import luigi
import numpy as np
import pyarrow as pa
from luigi.task import flatten

from msd_tasks.errors import InputError
from msd_tasks.formats import raw
from msd_tasks.formats.atomic import (
    SUCCESS,
    atomic_folder,
    read_parquet,
    write_parquet,
)
from msd_tasks.formats.checkpoints import (
    read_plays,
    read_triplets_codes,
    shard_file,
    write_joined,
    write_triplets,
)
from msd_tasks.formats.deliverables import (
    mapping_frame,
    song_frame,
    song_table,
    user_frame,
    user_table,
    write_hdf,
)
from msd_tasks.formats.publish import checksums
from msd_tasks.graph.config import paths, pipeline, quality
from msd_tasks.graph.forks import install_fork_hooks
from msd_tasks.graph.runstats import measured
from msd_tasks.stages.arrays import distinct
from msd_tasks.stages.join import MAX_SHARDS, automatic_shard_count, join_plays, user_shards
from msd_tasks.stages.matrices import MAX_EXACT_FLOAT32, PlayCountOverflow, play_matrix, save_matrix
from msd_tasks.stages.mismatches import read_mismatched_songs
from msd_tasks.stages.music import DIMENSIONS, FEATURES, song_vectors
from msd_tasks.stages.quality import (
    SAMPLE_IDS,
    JoinFacts,
    QualityError,
    genre_warnings,
    join_problems,
    same_lines,
)
from msd_tasks.stages.songs import clean_songs, read_genres, read_msd
from msd_tasks.stages.triplets import read_triplets
from msd_tasks.stages.users import USER_ROWS_SCHEMA, merge_user_rows, user_rows

logger = logging.getLogger("luigi-interface")

# Bump when a change to the code changes what a checkpoint holds: every generation is rebuilt.
CHECKPOINT_VERSION = "3"
CHECKSUMS = "checksums.json"
# Luigi runs the runnable task of highest priority first, and raises every task's priority to
# that of the tasks waiting on it. The longest path is the train import, the join, the shards,
# then the build report, the longest task of the tail: it starts as soon as the shards, the song
# table and the matrices are done, while UserTable takes the other worker. The
# mappings are needed last, by Publish.
PRIORITY = {
    "train import": 100,
    "shards": 40,
    "report": 35,  # and so the song table and the matrices
    "user table": 30,
}


class RawFile(luigi.ExternalTask):
    """A raw input file under `[paths] raw_dir`; missing means Luigi's missing-data exit code."""

    key = luigi.ChoiceParameter(choices=list(raw.RAW_FILES))

    def output(self):
        return luigi.LocalTarget(str(raw.raw_path(paths().raw_dir, self.key)))


class ShardCount(luigi.IntParameter):
    """A number of user-hash shards; 0 stands for `[pipeline] n_shards`, and where that is 0 too,
    for the automatic count for the train file's size.

    Resolved when a task is made, from that one setting, so BuildAll and a stage started on its
    own agree.
    """

    def normalize(self, x):
        count = super().normalize(x) or pipeline().n_shards
        if count == 0:
            train = raw.raw_path(paths().raw_dir, "train")
            count = automatic_shard_count(train.stat().st_size if train.exists() else 0)
        if not 1 <= count <= MAX_SHARDS:
            raise ValueError(f"n_shards must be 0 (automatic) or 1 to {MAX_SHARDS}, not {count}")
        return count


class ResultParameters:
    """The parameters that change results, shared by BuildAll and every stage."""

    on_bad_lines = luigi.ChoiceParameter(
        choices=["error", "skip"], default="error", description="Malformed triplet lines"
    )
    music_scaling = luigi.ChoiceParameter(
        choices=["raw", "zscore"], default="raw", description="Audio features before MUSIC"
    )
    drop_mismatches = luigi.BoolParameter(
        default=False, description="Drop plays of songs listed in sid_mismatches.txt"
    )

    def result_parameters(self) -> dict[str, object]:
        names = ("on_bad_lines", "music_scaling", "drop_mismatches")
        return {name: getattr(self, name) for name in names}


class PipelineTask(ResultParameters, luigi.Task):
    """A stage with a checkpoint folder; complete when the folder and all upstream ones are.

    Subclasses implement `build(folder)`: write the checkpoint files into `folder` (a temporary
    one, renamed into place when `build` returns) and return counts for `stats.json`.
    """

    fingerprints = luigi.DictParameter(
        default={}, description="size:mtime of each raw file (BuildAll sets it; empty = stat now)"
    )
    n_shards = ShardCount(
        default=0, description="User-hash shards of PerUserMusic; 0: [pipeline] n_shards"
    )

    own_parameters: tuple[str, ...] = ()  # parameters that shape this task's own output
    raw_inputs: tuple[str, ...] = ()  # raw files this task reads itself
    published: tuple[str, ...] = ()  # checkpoint files (or folders) that Publish publishes

    def raw_fingerprints(self) -> dict[str, str]:
        return dict(self.fingerprints) or raw.fingerprints(paths().raw_dir)

    def folder(self) -> Path:
        # Computed once per instance: it digests the whole upstream graph.
        if getattr(self, "_folder", None) is None:
            self._folder = self._generation_folder()
        return self._folder

    def _generation_folder(self) -> Path:
        requirements = flatten(self.requires())
        upstream = [str(task.folder()) for task in requirements if isinstance(task, PipelineTask)]
        fingerprints = self.raw_fingerprints()
        direct = [f"{key}={fingerprints[key]}" for key in self.raw_inputs]
        own = [f"{name}={getattr(self, name)}" for name in self.own_parameters]
        generation = raw.digest(CHECKPOINT_VERSION, *upstream, *direct, *own)
        return Path(paths().checkpoint_dir, self.get_task_family(), *own, generation)

    def output(self):
        return luigi.LocalTarget(str(self.folder() / SUCCESS))

    def complete(self) -> bool:
        # Recursive: a deleted upstream checkpoint makes everything downstream of it rerun.
        return (
            super().complete()
            and self.published_files_intact()
            and all(task.complete() for task in flatten(self.requires()))
        )

    def published_files_intact(self) -> bool:
        """Every file to publish is there, with the size its checksums.json recorded.

        Otherwise (a file deleted or truncated, or a checkpoint written before it was published)
        the task counts as not done and runs again, instead of Publish failing on every run.
        """
        if not self.published:
            return True
        try:
            recorded = self.checksums()
        except (OSError, ValueError):
            return False
        folder = self.folder()
        covered = {name.split("/", 1)[0] for name in recorded}
        if not set(self.published) <= covered:
            return False
        try:
            return all(
                (folder / name).stat().st_size == entry["bytes"] for name, entry in recorded.items()
            )
        except OSError:
            return False

    def run(self):
        with atomic_folder(self.folder()) as folder:
            with measured() as run_stats:
                stats = self.build(folder) or {}
                if self.published:  # hashed here, beside other tasks, not at the end in Publish
                    files = checksums(folder, self.published)
                    (folder / CHECKSUMS).write_text(json.dumps(files, indent=1))
            for warning in stats.get("warnings", []):
                logger.warning("%s: %s", self.get_task_family(), warning)
            (folder / "stats.json").write_text(json.dumps(stats, indent=1))
            run = {"task": self.task_id, **run_stats.as_dict()}
            (folder / "run.json").write_text(json.dumps(run, indent=1))

    def build(self, folder: Path) -> dict | None:
        raise NotImplementedError

    def check_unchanged(self, key: str) -> None:
        """Fail if a raw file changed since the build was planned (it may have been half read)."""
        path = raw.raw_path(paths().raw_dir, key)
        planned, now = self.raw_fingerprints()[key], raw.file_fingerprint(path)
        if now != planned:
            raise InputError(
                path,
                "while the build read it",
                f"an unchanged file (size:mtime {planned})",
                f"{now}; it was modified during the run, so run the build again",
            )

    def stats(self) -> dict:
        return read_json(self.folder() / "stats.json")

    def checksums(self) -> dict[str, dict]:
        """Bytes and sha256 of each published file, keyed by its path in the checkpoint."""
        return read_json(self.folder() / CHECKSUMS)

    def joined(self) -> JoinPlays:
        return self.clone(JoinPlays)

    def shards(self) -> list[PerUserMusic]:
        return [self.clone(PerUserMusic, shard=shard) for shard in range(self.n_shards)]

    def songs(self) -> CleanSongs:
        return self.clone(CleanSongs)


@PipelineTask.event_handler(luigi.Event.DEPENDENCY_DISCOVERED)
def prepare_the_forks(task: luigi.Task, dependency: luigi.Task) -> None:
    """Runs in the process that schedules a build, before Luigi forks a worker per task."""
    late_imports = install_fork_hooks()
    if isinstance(dependency, JoinPlays):
        # Once its inputs are there, JoinPlays runs alone and leaves a core idle for 0.3 s at
        # scale 0.1: the moment for the imports of the tasks after it (msd_tasks/forks.py).
        late_imports.start_after(flatten(dependency.requires()))


class CleanSongs(PipelineTask):
    """songs.parquet: one row per song_id (first in file order), text decoded, plus `genre`."""

    raw_inputs = ("msd", "genres")

    def requires(self):
        return [RawFile(key="msd"), RawFile(key="genres")]

    def build(self, folder):
        msd = read_msd(raw.raw_path(paths().raw_dir, "msd"))
        genres = read_genres(raw.raw_path(paths().raw_dir, "genres"))
        songs = clean_songs(msd, genres)
        self.check_unchanged("msd")
        self.check_unchanged("genres")
        write_parquet(songs, folder / "songs.parquet")
        songs_with_genre = songs.num_rows - songs.column("genre").null_count
        return {
            "msd_rows": len(msd),
            "genre_lines": genres.num_rows,
            "songs": songs.num_rows,
            "songs_with_genre": songs_with_genre,
            "warnings": genre_warnings(genres.num_rows, songs_with_genre, raw.RAW_FILES["genres"]),
        }


class ImportTriplets(PipelineTask):
    """plays.parquet (user_code, song_code, play_count per line) with user_ids/song_ids.parquet."""

    kind = luigi.ChoiceParameter(choices=list(raw.TRIPLET_KINDS))
    own_parameters = ("kind", "on_bad_lines")

    @property
    def priority(self):
        # The train file is 95% of the lines and the head of the longest path: start it first.
        return PRIORITY["train import"] if self.kind == "train" else 0

    @property
    def raw_inputs(self):
        return (self.kind,)

    def requires(self):
        return RawFile(key=self.kind)

    def build(self, folder):
        path = raw.raw_path(paths().raw_dir, self.kind)
        triplets = read_triplets(path, self.on_bad_lines)
        self.check_unchanged(self.kind)
        if triplets.skipped_lines:
            logger.warning("%s: skipped %d malformed lines", path, triplets.skipped_lines)
        write_triplets(triplets, folder)
        return {
            "lines": len(triplets),
            "skipped_lines": triplets.skipped_lines,
            "users": len(triplets.user_ids),
            "songs": len(triplets.song_ids),
        }


class JoinPlays(PipelineTask):
    """Plays joined with the catalogue, hidden-only users removed, users and songs numbered.

    users.parquet / songs.parquet: one row per sparse_index; hidden.parquet and
    visible/shard-NNNN.parquet: one row per surviving play (user_index, song_index, play_count,
    is_train), visible plays split by the user's shard.
    """

    own_parameters = ("n_shards", "drop_mismatches")

    @property
    def raw_inputs(self):
        return ("mismatches",) if self.drop_mismatches else ()

    def requires(self):
        imports = {kind: self.clone(ImportTriplets, kind=kind) for kind in raw.TRIPLET_KINDS}
        return {"songs": self.songs(), **imports}

    def build(self, folder):
        inputs = self.requires()
        catalog = read_parquet(inputs["songs"].folder() / "songs.parquet", ["song_id"])
        catalog_ids = catalog.column("song_id").combine_chunks()
        files = {kind: read_triplets_codes(inputs[kind].folder()) for kind in raw.TRIPLET_KINDS}
        joined = join_plays(catalog_ids, files, self.mismatched_songs())
        train_stats = inputs["train"].stats()
        facts = JoinFacts(
            train_lines=train_stats["lines"] + train_stats["skipped_lines"],
            train_plays_joined=joined.train_plays_joined,
            users=len(joined.user_ids),
            songs=len(joined.song_ids),
            unmatched_song_ids=joined.unmatched_song_ids,
            catalog_song_ids=catalog_ids[:SAMPLE_IDS].to_pylist(),
            test_users_in_train=joined.test_users_in_train,
            test_pairs_in_both=joined.test_pairs_in_both,
            test_files_equal_to_train=tuple(
                kind for kind in ("visible", "hidden") if same_lines(files["train"], files[kind])
            ),
        )
        del files
        settings = quality()
        errors, warnings = join_problems(
            facts, settings.min_train_join_share, settings.test_users_in_train
        )
        if errors:
            raise QualityError(self.get_task_family(), errors)
        write_joined(joined, user_shards(joined.user_ids, self.n_shards), self.n_shards, folder)
        return {
            "users": len(joined.user_ids),
            "songs": len(joined.song_ids),
            "visible_plays": len(joined.visible),
            "hidden_plays": len(joined.hidden),
            "hidden_only_users": joined.hidden_only_users,
            "mismatched_plays_dropped": joined.mismatched_plays_dropped,
            "train_plays_joined": joined.train_plays_joined,
            "test_users_in_train": joined.test_users_in_train,
            "warnings": warnings,
        }

    def mismatched_songs(self) -> pa.Array | None:
        """Songs whose plays to drop: none unless asked for and sid_mismatches.txt exists."""
        path = raw.raw_path(paths().raw_dir, "mismatches")
        if not self.drop_mismatches:
            return None
        if not path.exists():
            logger.warning("--drop-mismatches: %s not found, no plays dropped", path)
            return None
        songs = read_mismatched_songs(path)
        self.check_unchanged("mismatches")
        return songs


class IndexMappings(PipelineTask):
    """user_mapping.h5 and song_mapping.h5: one row per sparse_index (sparse_index, id)."""

    published = ("user_mapping.h5", "song_mapping.h5")

    def requires(self):
        return self.joined()

    def build(self, folder):
        joined = self.joined().folder()
        users = read_parquet(joined / "users.parquet", ["user_id"]).column("user_id")
        songs = read_parquet(joined / "songs.parquet", ["song_id"]).column("song_id")
        write_hdf(mapping_frame(users.combine_chunks(), "user_id"), folder / "user_mapping.h5")
        write_hdf(mapping_frame(songs.combine_chunks(), "song_id"), folder / "song_mapping.h5")
        return {"users": len(users), "songs": len(songs)}


class PlayMatrices(PipelineTask):
    """train_sparse.npz (visible plays) and test_sparse.npz (hidden): songs x users, float32 CSR."""

    published = ("train_sparse.npz", "test_sparse.npz")

    def requires(self):
        return self.joined()

    def build(self, folder):
        joined = self.joined().folder()
        shape = (
            read_parquet(joined / "songs.parquet", ["sparse_index"]).num_rows,
            read_parquet(joined / "users.parquet", ["sparse_index"]).num_rows,
        )
        stats = {}
        for name, files, raw_files in (
            (
                "train_sparse.npz",
                sorted((joined / "visible").glob("shard-*.parquet")),
                ("train", "visible"),
            ),
            ("test_sparse.npz", [joined / "hidden.parquet"], ("hidden",)),
        ):
            plays = [read_plays(path) for path in files]
            try:
                matrix = play_matrix(
                    np.concatenate([p.song_index for p in plays]),
                    np.concatenate([p.user_index for p in plays]),
                    np.concatenate([p.play_count for p in plays]),
                    shape,
                )
            except PlayCountOverflow as overflow:
                raise overflow_error(joined, overflow, raw_files) from None
            del plays
            with open(folder / name, "wb") as file:
                save_matrix(matrix, file)
            stats[name.removesuffix("_sparse.npz") + "_nonzeros"] = int(matrix.nnz)
        return stats


def overflow_error(
    joined: Path, overflow: PlayCountOverflow, raw_files: tuple[str, ...]
) -> InputError:
    """The overflow named by ids: the user and the song whose lines sum past 2^24."""
    song = read_parquet(joined / "songs.parquet", ["song_id"]).column("song_id")
    user = read_parquet(joined / "users.parquet", ["user_id"]).column("user_id")
    return InputError(
        " + ".join(str(raw.raw_path(paths().raw_dir, key)) for key in raw_files),
        f"the lines of user {user[overflow.user_index]} and song {song[overflow.song_index]}",
        f"play counts that sum to at most {MAX_EXACT_FLOAT32}",
        f"{overflow.total} (float32 would no longer hold it exactly)",
    )


class SongTable(PipelineTask):
    """song_df.h5 / song_df.parquet: one row per song sparse_index, all metadata plus genre."""

    published = ("song_df.h5", "song_df.parquet")

    def requires(self):
        return {"joined": self.joined(), "songs": self.songs()}

    def build(self, folder):
        mapping = read_parquet(self.joined().folder() / "songs.parquet")
        catalog = read_parquet(self.songs().folder() / "songs.parquet")
        songs = song_table(
            catalog,
            mapping.column("song_id").combine_chunks(),
            mapping.column("catalog_row").to_numpy(),
        )
        write_parquet(songs, folder / "song_df.parquet")
        write_hdf(song_frame(songs), folder / "song_df.h5")
        features = np.column_stack(
            [songs.column(name).to_numpy(zero_copy_only=False) for name in FEATURES]
        )
        return {
            "songs": songs.num_rows,
            "songs_without_features": int((~np.isfinite(features)).any(axis=1).sum()),
        }


def song_music_vectors(joined: Path, songs: Path, scaling: str) -> np.ndarray:
    """MUSIC vector per song sparse_index (NaN where features are missing)."""
    catalog_rows = read_parquet(joined / "songs.parquet", ["catalog_row"]).column("catalog_row")
    catalog = read_parquet(songs / "songs.parquet", list(FEATURES))
    features = np.column_stack([catalog.column(name).to_numpy() for name in FEATURES])
    return song_vectors(features, scaling)[catalog_rows.to_numpy()]


class PerUserMusic(PipelineTask):
    """user_rows.parquet: the user_df rows of one user-hash shard (USER_ROWS_SCHEMA)."""

    shard = luigi.IntParameter(description="Which user-hash shard, 0..n_shards-1")
    priority = PRIORITY["shards"]
    own_parameters = ("music_scaling", "n_shards", "shard")

    def requires(self):
        return {"joined": self.joined(), "songs": self.songs()}

    def build(self, folder):
        self.set_status_message("reading plays and song features")
        joined = self.joined().folder()
        vectors = song_music_vectors(joined, self.songs().folder(), self.music_scaling)
        plays = read_plays(shard_file(joined, self.shard))
        self.set_progress_percentage(30)
        self.set_status_message(f"scoring {len(plays):,} plays")
        rows = user_rows(plays, vectors)
        self.set_progress_percentage(80)
        self.set_status_message(f"writing {rows.num_rows:,} users")
        write_parquet(
            rows,
            folder / "user_rows.parquet",
            USER_ROWS_SCHEMA,
            written_by={"host": socket.gethostname(), "pid": os.getpid()},
        )
        featureless = np.isnan(vectors).any(axis=1)[plays.song_index]
        music = rows.column(DIMENSIONS[0]).to_numpy(zero_copy_only=False)
        self.set_progress_percentage(100)
        self.set_status_message(f"done: {rows.num_rows:,} users, {len(plays):,} plays")
        return {
            "users": rows.num_rows,
            "plays": len(plays),
            "users_with_featureless_songs": len(distinct(plays.user_index[featureless])),
            "users_without_music": int(np.isnan(music).sum()),
        }


class UserTable(PipelineTask):
    """user_df.parquet and user_df.h5: one row per user sparse_index, merged from the shards.

    user_df.h5 holds the notebook's user_df, lists in cells: building 1.1M Python lists and
    pickling them is the slowest write of all, and runs while the build report is drawn.
    """

    published = ("user_df.parquet", "user_df.h5")

    priority = PRIORITY["user table"]

    def requires(self):
        return {"joined": self.joined(), "shards": self.shards()}

    def build(self, folder):
        joined = self.joined().folder()
        user_ids = read_parquet(joined / "users.parquet", ["user_id"]).column("user_id")
        user_ids = user_ids.combine_chunks()
        shards = self.requires()["shards"]
        rows = merge_user_rows(
            [read_parquet(task.folder() / "user_rows.parquet") for task in shards], len(user_ids)
        )
        self.set_status_message("writing user_df.parquet and user_df.h5")
        # pyarrow writes the parquet file on another thread while this one builds and pickles
        # the lists (here: pandas' HDF writer changes process-wide warning filters).
        with ThreadPoolExecutor(max_workers=1) as pool:
            parquet = pool.submit(
                write_parquet, user_table(rows, user_ids), folder / "user_df.parquet"
            )
            write_hdf(user_frame(rows, user_ids), folder / "user_df.h5")
            parquet.result()
        stats = featureless_stats(shards)
        if stats["users_with_featureless_songs"]:
            logger.warning(
                "%d users played songs without audio features, which are left out of their "
                "MUSIC means; %d of them have no MUSIC (NaN)",
                stats["users_with_featureless_songs"],
                stats["users_without_music"],
            )
        return stats


def featureless_stats(shards: list[PerUserMusic]) -> dict[str, int]:
    """Users touched by songs without audio features, summed over the shards."""
    keys = ("users_with_featureless_songs", "users_without_music")
    return {key: sum(task.stats()[key] for task in shards) for key in keys}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
