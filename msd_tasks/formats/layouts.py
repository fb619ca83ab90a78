"""The parquet layouts of the checkpoints: their schemas, and the conversions between the
files and the stages' data classes. The targets in checkpoints.py call these when a checkpoint
is read or written; planning a build, which only asks whether checkpoints exist, needs none.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from msd_tasks.formats.parquet import column_array, read_parquet, run_concurrently, write_parquet
from msd_tasks.stages.join import JoinedPlays, Plays
from msd_tasks.stages.triplets import Triplets

# ImportTriplets: one row per line of the file, ids as codes into the two id files.
TRIPLET_CODES_SCHEMA = pa.schema(
    [
        pa.field("user_code", pa.int32(), nullable=False),  # row of user_ids.parquet
        pa.field("song_code", pa.int32(), nullable=False),  # row of song_ids.parquet
        pa.field("play_count", pa.int32(), nullable=False),
    ]
)
# JoinPlays plays: one row per surviving play (a line of a triplet file).
PLAYS_SCHEMA = pa.schema(
    [
        pa.field("user_index", pa.int32(), nullable=False),  # user sparse_index
        pa.field("song_index", pa.int32(), nullable=False),  # song sparse_index
        pa.field("play_count", pa.int32(), nullable=False),
        pa.field("is_train", pa.bool_(), nullable=False),  # from train_triplets.txt
    ]
)
# JoinPlays users: one row per user sparse_index.
USERS_SCHEMA = pa.schema(
    [
        pa.field("sparse_index", pa.int32(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
    ]
)
# JoinPlays songs: one row per song sparse_index.
SONGS_SCHEMA = pa.schema(
    [
        pa.field("sparse_index", pa.int32(), nullable=False),
        pa.field("song_id", pa.string(), nullable=False),
        pa.field("catalog_row", pa.int32(), nullable=False),  # row in CleanSongs' songs.parquet
    ]
)


def read_triplets(folder: Path) -> Triplets:
    codes = read_parquet(folder / "plays.parquet")
    return Triplets(
        user_code=column_array(codes, "user_code"),
        song_code=column_array(codes, "song_code"),
        play_count=column_array(codes, "play_count"),
        user_ids=read_column(folder / "user_ids.parquet", "user_id"),
        song_ids=read_column(folder / "song_ids.parquet", "song_id"),
    )


def write_triplets(folder: Path, triplets: Triplets) -> None:
    codes = pa.table(
        {
            "user_code": triplets.user_code,
            "song_code": triplets.song_code,
            "play_count": triplets.play_count,
        }
    )
    write_parquet(
        codes, folder / "plays.parquet", TRIPLET_CODES_SCHEMA, compress=True, lines=len(triplets)
    )
    write_parquet(pa.table({"user_id": triplets.user_ids}), folder / "user_ids.parquet")
    write_parquet(pa.table({"song_id": triplets.song_ids}), folder / "song_ids.parquet")


def read_column(path: Path, column: str) -> pa.Array:
    return read_parquet(path, [column]).column(column).combine_chunks()


def write_joined(
    folder: Path, shard_path, joined: JoinedPlays, shards: np.ndarray, n_shards: int
) -> None:
    """Everything at once, on two threads: `shards` is the shard of each user, `shard_path(n)`
    the file of shard n."""
    users = pa.table(
        {
            "sparse_index": np.arange(len(joined.user_ids), dtype=np.int32),
            "user_id": joined.user_ids,
        }
    )
    songs = pa.table(
        {
            "sparse_index": np.arange(len(joined.song_ids), dtype=np.int32),
            "song_id": joined.song_ids,
            "catalog_row": joined.song_catalog_rows,
        }
    )
    (folder / "visible").mkdir()
    # In the smallest type that holds a shard number: numpy's stable argsort is then a radix
    # sort (8 or 16 bits; 17M plays: 0.55 s against 1.36 s as int32). Plays keep their order.
    play_shards = shards.astype(np.min_scalar_type(n_shards - 1))[joined.visible.user_index]
    by_shard = np.argsort(play_shards, kind="stable")
    plays_per_shard = np.bincount(play_shards, minlength=n_shards)
    ends = np.cumsum(plays_per_shard)
    starts = ends - plays_per_shard

    def write_shard(shard: int) -> None:
        rows = by_shard[starts[shard] : ends[shard]]
        table = plays_table(joined.visible.subset(rows))
        write_parquet(table, shard_path(shard), PLAYS_SCHEMA, compress=True)

    hidden = plays_table(joined.hidden)
    run_concurrently(
        [
            partial(write_parquet, users, folder / "users.parquet", USERS_SCHEMA),
            partial(write_parquet, songs, folder / "songs.parquet", SONGS_SCHEMA),
            partial(write_parquet, hidden, folder / "hidden.parquet", PLAYS_SCHEMA, compress=True),
            *[partial(write_shard, shard) for shard in range(n_shards)],
        ]
    )


def plays_table(plays: Plays) -> pa.Table:
    return pa.table(
        {
            "user_index": plays.user_index,
            "song_index": plays.song_index,
            "play_count": plays.play_count,
            "is_train": plays.is_train,
        }
    )


def read_plays(path: Path) -> Plays:
    table = read_parquet(path)
    return Plays(
        user_index=column_array(table, "user_index"),
        song_index=column_array(table, "song_index"),
        play_count=column_array(table, "play_count"),
        is_train=column_array(table, "is_train"),
    )
