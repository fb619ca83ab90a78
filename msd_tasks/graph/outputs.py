"""The deliverables side of the graph: index mappings, play matrices, the song table, MUSIC
per user-hash shard and the user table. Each task reads the join's checkpoint through
`self.input()` and writes files to publish; the stage modules are imported in `build()`, as in
graph/inputs.py.
"""

from __future__ import annotations

import os
import socket

import luigi
from luigi.util import inherits

from msd_tasks.errors import InputError
from msd_tasks.formats.checkpoints import JoinedCheckpoint, UserRowsCheckpoint
from msd_tasks.graph.base import PRIORITY, CheckpointTask, DeliverableTask
from msd_tasks.graph.inputs import CleanSongs, JoinPlays


@inherits(JoinPlays)
class IndexMappings(DeliverableTask):
    """user_mapping.h5 and song_mapping.h5: one row per sparse_index (sparse_index, id)."""

    published = ("user_mapping.h5", "song_mapping.h5")

    def requires(self):
        return self.clone_parent()

    def build(self, out):
        from msd_tasks.formats.deliverables import mapping_frame, write_hdf

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
        import numpy as np

        from msd_tasks.stages.matrices import PlayCountOverflow, play_matrix, save_matrix

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
        self, joined: JoinedCheckpoint, overflow, raw_files: tuple[str, ...]
    ) -> InputError:
        """The overflow named by ids: the user and the song whose lines sum past 2^24."""
        from msd_tasks.stages.matrices import MAX_EXACT_FLOAT32

        song = joined.song_ids()[overflow.song_index]
        user = joined.user_ids()[overflow.user_index]
        return InputError(
            " + ".join(str(self.raw_path(key)) for key in raw_files),
            f"the lines of user {user} and song {song}",
            f"play counts that sum to at most {MAX_EXACT_FLOAT32}",
            f"{overflow.total} (float32 would no longer hold it exactly)",
        )


@inherits(JoinPlays)
class PlaysTable(DeliverableTask):
    """plays.parquet: one row per surviving play, with its split (formats/deliverables.py)."""

    published = ("plays.parquet",)

    def requires(self):
        return self.clone_parent()

    def build(self, out):
        from msd_tasks.formats.deliverables import plays_table
        from msd_tasks.formats.parquet import write_parquet
        from msd_tasks.stages.long_plays import long_plays

        joined: JoinedCheckpoint = self.input()
        visible = [joined.visible(shard) for shard in range(self.n_shards)]
        plays = long_plays(visible, joined.hidden(), joined.shape()[0])
        del visible
        write_parquet(plays_table(plays), out.file("plays.parquet"), compress=True)
        return {"plays": len(plays.play_count)}


@inherits(JoinPlays)
class SongTable(DeliverableTask):
    """song_df.h5 / song_df.parquet: one row per song sparse_index, all metadata plus genre."""

    published = ("song_df.h5", "song_df.parquet")

    def requires(self):
        return {"joined": self.clone_parent(), "songs": self.clone(CleanSongs)}

    def build(self, out):
        import numpy as np

        from msd_tasks.formats.deliverables import song_frame, song_table, write_hdf
        from msd_tasks.formats.parquet import write_parquet
        from msd_tasks.stages.music import FEATURES

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
        import numpy as np

        from msd_tasks.formats.parquet import write_parquet
        from msd_tasks.stages.arrays import distinct
        from msd_tasks.stages.music import DIMENSIONS, FEATURES, song_vectors
        from msd_tasks.stages.users import USER_ROWS_SCHEMA, user_rows

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
        from concurrent.futures import ThreadPoolExecutor

        from msd_tasks.formats.deliverables import user_table, write_user_hdf
        from msd_tasks.formats.parquet import write_parquet
        from msd_tasks.stages.users import merge_user_rows

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
