"""Per-user rows of user_df: MUSIC scores, play counts, test flag and the songs each user played.

`user_rows` is computed per user-hash shard by the PerUserMusic tasks, vectorised over all the
shard's users at once; `merge_user_rows` puts the shards back together for UserTable.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from msd_tasks.stages.join import Plays
from msd_tasks.stages.music import DIMENSIONS, weighted_means

# One row per user. MUSIC is five named float columns, not a list, so columnar tools can use it.
USER_ROWS_SCHEMA = pa.schema(
    [
        pa.field("sparse_index", pa.int32(), nullable=False),  # column of the play matrices
        *[pa.field(name, pa.float64()) for name in DIMENSIONS],  # weighted mean MUSIC score
        pa.field("num_songs", pa.int32(), nullable=False),  # visible plays (lines), repeats count
        pa.field("is_test", pa.bool_(), nullable=False),  # no train play: a test-split user
        pa.field("song_sparse_indices", pa.list_(pa.int32()), nullable=False),  # ascending
    ]
)


def user_rows(plays: Plays, song_vectors: np.ndarray) -> pa.Table:
    """user_df rows for the users of `plays` (visible plays only), sorted by sparse_index.

    song_vectors: MUSIC vector per song sparse index (songs x 5, NaN where features are missing).
    The plays are taken in (user, song, play_count) order whatever their order in `plays`, so
    the float sums of the MUSIC means, and so their last bits, do not depend on the line order.
    """
    sorted_users, sorted_songs, sorted_counts = _in_user_song_count_order(plays, len(song_vectors))
    starts = np.flatnonzero(np.diff(sorted_users, prepend=-1))
    users = sorted_users[starts]
    n_users = len(users)
    local = np.repeat(np.arange(n_users), np.diff(np.r_[starts, len(sorted_users)]))
    music = weighted_means(local, sorted_counts, sorted_songs, song_vectors, n_users)
    num_songs = np.diff(np.r_[starts, len(sorted_users)])
    local_of_user = np.zeros(int(users[-1]) + 1 if n_users else 0, dtype=np.int64)
    local_of_user[users] = np.arange(n_users)
    train_plays = np.bincount(
        local_of_user[plays.user_index], weights=plays.is_train, minlength=n_users
    )
    offsets = np.r_[starts, len(sorted_users)].astype(np.int32)
    sorted_songs = sorted_songs.astype(np.int32)
    songs = pa.ListArray.from_arrays(pa.array(offsets), pa.array(sorted_songs))
    columns = [pa.array(users.astype(np.int32))]
    columns += [pa.array(music[:, k]) for k in range(len(DIMENSIONS))]
    columns += [pa.array(num_songs.astype(np.int32)), pa.array(train_plays == 0), songs]
    return pa.Table.from_arrays(columns, schema=USER_ROWS_SCHEMA)


def _in_user_song_count_order(
    plays: Plays, n_songs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plays' users, songs and counts sorted by (user, song, count): one sort of int64
    keys where they fit, a lexsort otherwise."""
    n_songs, n_counts = max(n_songs, 1), int(plays.play_count.max(initial=0)) + 1
    n_users = int(plays.user_index.max(initial=0)) + 1
    if n_users * n_songs * n_counts < 2**63:
        keys = np.sort(
            (plays.user_index.astype(np.int64) * n_songs + plays.song_index) * n_counts
            + plays.play_count
        )
        pairs, counts = np.divmod(keys, n_counts)
        users, songs = np.divmod(pairs, n_songs)
        return users, songs, counts
    order = np.lexsort((plays.play_count, plays.song_index, plays.user_index))
    return (
        plays.user_index[order].astype(np.int64),
        plays.song_index[order].astype(np.int64),
        plays.play_count[order].astype(np.int64),
    )


def in_sparse_index_order(shards: list[pa.Table]) -> pa.Table:
    """The shards' rows (all their columns or the same few, sparse_index among them) as one
    table in sparse_index order, the order of user_df."""
    table = pa.concat_tables(shards)
    if len(shards) == 1:
        return table  # a shard's rows are sorted already
    return table.take(np.argsort(table.column("sparse_index").to_numpy(), kind="stable"))


def merge_user_rows(shards: list[pa.Table], n_users: int) -> pa.Table:
    """All shards' rows in sparse_index order; every user must appear exactly once."""
    table = in_sparse_index_order(shards)
    index = table.column("sparse_index").to_numpy()
    if len(index) != n_users or not np.array_equal(index, np.arange(n_users)):
        raise ValueError(
            f"user shards hold {len(index)} rows for {n_users} users: a shard is stale or missing"
        )
    return table
