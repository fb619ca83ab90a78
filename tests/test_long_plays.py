"""plays.parquet: the long table of plays, by hand on a few plays and against the matrices of a
real build, read back with DuckDB as its users would."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.sparse

from msd_tasks.formats.deliverables import PLAYS_COLUMNS, plays_table
from msd_tasks.stages.join import Plays
from msd_tasks.stages.long_plays import long_plays


def plays(rows: list[tuple[int, int, int, bool]]) -> Plays:
    user, song, count, is_train = zip(*rows, strict=True)
    return Plays(
        np.array(user, np.int32),
        np.array(song, np.int32),
        np.array(count, np.int32),
        np.array(is_train, bool),
    )


@pytest.mark.unit
def test_rows_are_sorted_by_user_song_split_and_count_with_their_split():
    shard_a = plays([(2, 0, 5, True), (0, 1, 7, False), (0, 1, 3, True)])
    shard_b = plays([(1, 2, 1, True), (0, 1, 2, True), (2, 0, 4, True)])
    hidden = plays([(0, 0, 9, False), (2, 0, 1, False)])

    table = plays_table(long_plays([shard_a, shard_b], hidden, n_songs=3))

    assert table.to_pylist() == [
        # user 0: song 0 (hidden), then song 1: train 2 and 3 (ties by count), visible 7
        {"user_index": 0, "song_index": 0, "play_count": 9, "split": "hidden"},
        {"user_index": 0, "song_index": 1, "play_count": 2, "split": "train"},
        {"user_index": 0, "song_index": 1, "play_count": 3, "split": "train"},
        {"user_index": 0, "song_index": 1, "play_count": 7, "split": "visible"},
        {"user_index": 1, "song_index": 2, "play_count": 1, "split": "train"},
        # user 2, song 0: train 4 and 5 from two shards, then hidden 1
        {"user_index": 2, "song_index": 0, "play_count": 4, "split": "train"},
        {"user_index": 2, "song_index": 0, "play_count": 5, "split": "train"},
        {"user_index": 2, "song_index": 0, "play_count": 1, "split": "hidden"},
    ]


@pytest.mark.unit
def test_the_order_of_the_plays_and_shards_does_not_change_the_table():
    rng = np.random.default_rng(3)
    n = 5_000
    rows = list(
        zip(
            rng.integers(0, 50, n).tolist(),
            rng.integers(0, 20, n).tolist(),  # many repeated (user, song) pairs
            rng.integers(1, 4, n).tolist(),
            (rng.random(n) < 0.8).tolist(),
            strict=True,
        )
    )
    hidden = plays(rows[:500])
    first = plays_table(long_plays([plays(rows[500:])], hidden, n_songs=20))
    order = rng.permutation(n - 500) + 500
    shuffled = [rows[i] for i in order]
    second = plays_table(
        long_plays([plays(shuffled[:1000]), plays(shuffled[1000:])], hidden, n_songs=20)
    )
    assert first.equals(second)
    assert first.num_rows == n


@pytest.mark.unit
@pytest.mark.parametrize(
    "max_user, max_count",
    [
        (60, 9),  # a few bits: the rows sort as packed values
        (2**20, 2**24),  # 20 + 17 + 2 + 25 bits do not fit one int64: sorted by positions
    ],
)
def test_the_table_is_python_sorted_of_its_rows_whichever_way_it_is_sorted(max_user, max_count):
    rng = np.random.default_rng(11)
    n, n_songs = 4_000, 2**17
    user = rng.choice([0, 1, max_user], n)
    song = rng.choice([0, 1, n_songs - 1], n)  # the largest indices, and many repeats
    count = rng.choice([1, 2, max_count], n)  # ties in (user, song, split), and the largest count
    is_train = rng.random(n) < 0.7
    rows = list(zip(user.tolist(), song.tolist(), count.tolist(), is_train.tolist(), strict=True))
    visible, hidden = plays(rows[:3_000]), plays([(*row[:3], False) for row in rows[3_000:]])

    table = plays_table(long_plays([visible], hidden, n_songs=n_songs))

    split_of = {"train": 0, "visible": 1, "hidden": 2}
    got = [
        (row["user_index"], row["song_index"], split_of[row["split"]], row["play_count"])
        for row in table.to_pylist()
    ]
    expected = sorted(
        [(u, s, 0 if train else 1, c) for u, s, c, train in rows[:3_000]]
        + [(u, s, 2, c) for u, s, c, _ in rows[3_000:]]
    )
    assert got == expected


def test_duckdb_group_by_over_plays_parquet_equals_both_matrices(pipeline_in, raw_files):
    pipeline = pipeline_in(raw_files("sample", scale=0.001, seed=8))
    pipeline.build_ok()
    out = pipeline.output_dir
    path = out / "plays.parquet"
    schema = pq.read_schema(path)
    assert schema.names == list(PLAYS_COLUMNS)
    assert b"description" in schema.metadata
    assert all(b"description" in field.metadata for field in schema)

    for name, splits in (
        ("train_sparse.npz", "'train', 'visible'"),
        ("test_sparse.npz", "'hidden'"),
    ):
        matrix = scipy.sparse.load_npz(out / name).tocoo()
        summed = duckdb.sql(
            f"SELECT song_index, user_index, sum(play_count) AS plays FROM '{path}' "
            f"WHERE split IN ({splits}) GROUP BY ALL ORDER BY ALL"
        ).fetchnumpy()
        order = np.lexsort((matrix.col, matrix.row))
        assert np.array_equal(summed["song_index"], matrix.row[order])
        assert np.array_equal(summed["user_index"], matrix.col[order])
        assert np.array_equal(summed["plays"], matrix.data[order])
        assert len(order) > 0
