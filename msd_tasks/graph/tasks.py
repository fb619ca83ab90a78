"""The stage tasks: each reads its inputs through `self.input()`, calls the pure stage
functions (msd_tasks/stages) and writes its checkpoint (msd_tasks/formats/checkpoints.py)."""

from __future__ import annotations

import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import luigi
import numpy as np
import pyarrow as pa
from luigi.util import inherits

from msd_tasks.errors import InputError
from msd_tasks.formats import raw
from msd_tasks.formats.checkpoints import (
    JoinedCheckpoint,
    SongsCheckpoint,
    TripletsCheckpoint,
    UserRowsCheckpoint,
)
from msd_tasks.formats.deliverables import (
    mapping_frame,
    song_frame,
    song_table,
    user_table,
    write_hdf,
    write_user_hdf,
)
from msd_tasks.formats.parquet import write_parquet
from msd_tasks.graph.base import CheckpointTask, DeliverableTask, RawFile, ShardCount
from msd_tasks.graph.config import quality
from msd_tasks.stages.arrays import distinct
from msd_tasks.stages.join import join_plays, user_shards
from msd_tasks.stages.matrices import (
    MAX_EXACT_FLOAT32,
    PlayCountOverflow,
    play_matrix,
    save_matrix,
)
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

# The longest path: the train import, JoinPlays, the shards, UserTable. Luigi runs the runnable
# task of highest priority first and gives a task's requirements its priority: the train import
# starts before the small imports, and the shards before the tasks beside them (RESULTS.md).
PRIORITY = {"train import": 100, "longest path": 50}


class CleanSongs(CheckpointTask):
    """songs.parquet: one row per song_id (first in file order), text decoded, plus `genre`."""

    checkpoint = SongsCheckpoint

    def requires(self):
        return {"msd": RawFile(key="msd"), "genres": RawFile(key="genres")}

    def build(self, out: SongsCheckpoint):
        msd = read_msd(self.raw_path("msd"))
        genres = read_genres(self.raw_path("genres"))
        songs = clean_songs(msd, genres)
        self.check_unchanged("msd")
        self.check_unchanged("genres")
        out.write_songs(songs)
        songs_with_genre = songs.num_rows - songs.column("genre").null_count
        return {
            "msd_rows": len(msd),
            "genre_lines": genres.num_rows,
            "songs": songs.num_rows,
            "songs_with_genre": songs_with_genre,
            "warnings": genre_warnings(genres.num_rows, songs_with_genre, raw.RAW_FILES["genres"]),
        }


class ImportTriplets(CheckpointTask):
    """plays.parquet (user_code, song_code, play_count per line) with user_ids/song_ids.parquet."""

    kind = luigi.ChoiceParameter(choices=list(raw.TRIPLET_KINDS))
    on_bad_lines = luigi.ChoiceParameter(
        choices=["error", "skip"], default="error", description="Malformed triplet lines"
    )

    checkpoint = TripletsCheckpoint

    @property
    def priority(self):
        return PRIORITY["train import"] if self.kind == "train" else 0

    def requires(self):
        return RawFile(key=self.kind)

    def build(self, out: TripletsCheckpoint):
        path = self.raw_path(self.kind)
        triplets = read_triplets(path, self.on_bad_lines)
        self.check_unchanged(self.kind)
        if triplets.skipped_lines:
            logger.warning("%s: skipped %d malformed lines", path, triplets.skipped_lines)
        out.write_triplets(triplets)
        return {
            "lines": len(triplets),
            "skipped_lines": triplets.skipped_lines,
            "users": len(triplets.user_ids),
            "songs": len(triplets.song_ids),
        }


class JoinPlays(CheckpointTask):
    """Plays joined with the catalogue, hidden-only users removed, users and songs numbered,
    and the visible plays split by user-hash shard (JoinedCheckpoint)."""

    on_bad_lines = ImportTriplets.on_bad_lines  # passed down to the imports
    drop_mismatches = luigi.BoolParameter(
        default=False, description="Drop plays of songs listed in sid_mismatches.txt"
    )
    n_shards = ShardCount(
        default=0, description="User-hash shards of PerUserMusic; 0: [pipeline] n_shards"
    )

    checkpoint = JoinedCheckpoint

    def requires(self):
        inputs = {
            "songs": self.clone(CleanSongs),
            **{kind: self.clone(ImportTriplets, kind=kind) for kind in raw.TRIPLET_KINDS},
        }
        if self.drop_mismatches:
            inputs["mismatches"] = RawFile(key="mismatches")
        return inputs

    def build(self, out: JoinedCheckpoint):
        inputs = self.input()
        catalog_ids = inputs["songs"].songs(["song_id"]).column("song_id").combine_chunks()
        files = {kind: inputs[kind].triplets() for kind in raw.TRIPLET_KINDS}
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
        out.write_joined(joined, user_shards(joined.user_ids, self.n_shards), self.n_shards)
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
        if not self.drop_mismatches:
            return None
        path = self.raw_path("mismatches")
        if not path.exists():
            logger.warning("--drop-mismatches: %s not found, no plays dropped", path)
            return None
        songs = read_mismatched_songs(path)
        self.check_unchanged("mismatches")
        return songs


class RawDigests(CheckpointTask):
    """stats.json `inputs`: bytes and sha256 of every raw file the build reads, for the
    manifest and for the next build's check by content (formats/raw.py).

    It needs what JoinPlays needs, so it runs beside JoinPlays, which leaves a core idle: the
    CPU-bound imports before it do not pay for the hashing.
    """

    on_bad_lines = ImportTriplets.on_bad_lines
    drop_mismatches = JoinPlays.drop_mismatches

    def requires(self):
        keys = [*raw.RAW_FILES, *(["mismatches"] if self.drop_mismatches else [])]
        return {
            "beside JoinPlays": [
                self.clone(CleanSongs),
                *[self.clone(ImportTriplets, kind=kind) for kind in raw.TRIPLET_KINDS],
            ],
            "raw": [RawFile(key=key) for key in keys],
        }

    def build(self, out):
        digests = {}
        for task in self.requires()["raw"]:
            path = self.raw_path(task.key)
            if path.exists():  # sid_mismatches.txt may be absent
                digests[task.key] = raw.file_digest(path)
                self.check_unchanged(task.key)
        return {"inputs": digests}


@inherits(JoinPlays)
class IndexMappings(DeliverableTask):
    """user_mapping.h5 and song_mapping.h5: one row per sparse_index (sparse_index, id)."""

    published = ("user_mapping.h5", "song_mapping.h5")

    def requires(self):
        return self.clone_parent()

    def build(self, out):
        joined: JoinedCheckpoint = self.input()
        users, songs = joined.user_ids(), joined.song_ids()
        write_hdf(mapping_frame(users, "user_id"), out.file("user_mapping.h5"))
        write_hdf(mapping_frame(songs, "song_id"), out.file("song_mapping.h5"))
        return {"users": len(users), "songs": len(songs)}


@inherits(JoinPlays)
class PlayMatrices(DeliverableTask):
    """train_sparse.npz (visible plays) and test_sparse.npz (hidden): songs x users, float32 CSR."""

    published = ("train_sparse.npz", "test_sparse.npz")

    def requires(self):
        return self.clone_parent()

    def build(self, out):
        joined: JoinedCheckpoint = self.input()
        stats = {}
        for name, read, raw_files in (
            (
                "train_sparse.npz",
                lambda: [joined.visible(shard) for shard in range(self.n_shards)],
                ("train", "visible"),
            ),
            ("test_sparse.npz", lambda: [joined.hidden()], ("hidden",)),
        ):
            plays = read()
            try:
                matrix = play_matrix(
                    np.concatenate([p.song_index for p in plays]),
                    np.concatenate([p.user_index for p in plays]),
                    np.concatenate([p.play_count for p in plays]),
                    joined.shape(),
                )
            except PlayCountOverflow as overflow:
                raise self.overflow_error(joined, overflow, raw_files) from None
            del plays
            with open(out.file(name), "wb") as file:
                save_matrix(matrix, file)
            stats[name.removesuffix("_sparse.npz") + "_nonzeros"] = int(matrix.nnz)
        return stats

    def overflow_error(
        self, joined: JoinedCheckpoint, overflow: PlayCountOverflow, raw_files: tuple[str, ...]
    ) -> InputError:
        """The overflow named by ids: the user and the song whose lines sum past 2^24."""
        song = joined.song_ids()[overflow.song_index]
        user = joined.user_ids()[overflow.user_index]
        return InputError(
            " + ".join(str(self.raw_path(key)) for key in raw_files),
            f"the lines of user {user} and song {song}",
            f"play counts that sum to at most {MAX_EXACT_FLOAT32}",
            f"{overflow.total} (float32 would no longer hold it exactly)",
        )


@inherits(JoinPlays)
class SongTable(DeliverableTask):
    """song_df.h5 / song_df.parquet: one row per song sparse_index, all metadata plus genre."""

    published = ("song_df.h5", "song_df.parquet")

    def requires(self):
        return {"joined": self.clone_parent(), "songs": self.clone(CleanSongs)}

    def build(self, out):
        inputs = self.input()
        mapping = inputs["joined"].songs(["song_id", "catalog_row"])
        songs = song_table(
            inputs["songs"].songs(),
            mapping.column("song_id").combine_chunks(),
            mapping.column("catalog_row").to_numpy(),
        )
        write_parquet(songs, out.file("song_df.parquet"))
        write_hdf(song_frame(songs), out.file("song_df.h5"))
        features = np.column_stack(
            [songs.column(name).to_numpy(zero_copy_only=False) for name in FEATURES]
        )
        return {
            "songs": songs.num_rows,
            "songs_without_features": int((~np.isfinite(features)).any(axis=1).sum()),
        }


@inherits(JoinPlays)
class PerUserMusic(CheckpointTask):
    """user_rows.parquet: the user_df rows of one user-hash shard (USER_ROWS_SCHEMA)."""

    music_scaling = luigi.ChoiceParameter(
        choices=["raw", "zscore"], default="raw", description="Audio features before MUSIC"
    )
    shard = luigi.IntParameter(description="Which user-hash shard, 0..n_shards-1")

    checkpoint = UserRowsCheckpoint

    def requires(self):
        return {"joined": self.clone_parent(), "songs": self.clone(CleanSongs)}

    def build(self, out: UserRowsCheckpoint):
        self.set_status_message("reading plays and song features")
        inputs = self.input()
        catalog = inputs["songs"].songs(list(FEATURES))
        features = np.column_stack([catalog.column(name).to_numpy() for name in FEATURES])
        catalog_rows = inputs["joined"].songs(["catalog_row"]).column("catalog_row").to_numpy()
        vectors = song_vectors(features, self.music_scaling)[catalog_rows]
        plays = inputs["joined"].visible(self.shard)
        self.set_progress_percentage(30)
        self.set_status_message(f"scoring {len(plays):,} plays")
        rows = user_rows(plays, vectors)
        self.set_progress_percentage(80)
        self.set_status_message(f"writing {rows.num_rows:,} users")
        write_parquet(
            rows,
            out.rows_path,
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


@inherits(JoinPlays)
class UserTable(DeliverableTask):
    """user_df.parquet and user_df.h5: one row per user sparse_index, merged from the shards."""

    music_scaling = PerUserMusic.music_scaling

    published = ("user_df.parquet", "user_df.h5")
    priority = PRIORITY["longest path"]

    def requires(self):
        shards = [self.clone(PerUserMusic, shard=shard) for shard in range(self.n_shards)]
        return {"joined": self.clone_parent(), "shards": shards}

    def build(self, out):
        inputs = self.input()
        user_ids = inputs["joined"].user_ids()
        rows = merge_user_rows([shard.rows() for shard in inputs["shards"]], len(user_ids))
        self.set_status_message("writing user_df.parquet and user_df.h5")
        # pyarrow writes the parquet file on another thread while this one writes user_df.h5
        # (here: pandas' HDF writer changes process-wide warning filters).
        with ThreadPoolExecutor(max_workers=1) as pool:
            parquet = pool.submit(
                write_parquet, user_table(rows, user_ids), out.file("user_df.parquet")
            )
            write_user_hdf(rows, user_ids, out.file("user_df.h5"))
            parquet.result()
        return {"users": len(user_ids)}
