"""Per-user rows of one shard, and the merge that checks every user is there exactly once."""

from __future__ import annotations

import numpy as np
import pytest

from msd_tasks.stages.join import Plays
from msd_tasks.stages.music import DIMENSIONS
from msd_tasks.stages.users import merge_user_rows, user_rows


def plays(rows: list[tuple[int, int, int, bool]]) -> Plays:
    users, songs, counts, train = zip(*rows, strict=True)
    return Plays(
        np.array(users, dtype=np.int32),
        np.array(songs, dtype=np.int32),
        np.array(counts, dtype=np.int32),
        np.array(train, dtype=bool),
    )


VECTORS = np.array([[1.0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0], [np.nan] * 5, [3.0, 3, 3, 3, 3]])


def test_rows_per_user():
    shard = plays(
        [(7, 3, 2, True), (2, 1, 1, False), (7, 0, 2, True), (7, 2, 9, True), (2, 1, 3, False)]
    )
    table = user_rows(shard, VECTORS)
    assert table.column("sparse_index").to_pylist() == [2, 7]
    assert table.column("num_songs").to_pylist() == [2, 3]
    assert table.column("is_test").to_pylist() == [True, False]
    assert table.column("song_sparse_indices").to_pylist() == [[1, 1], [0, 2, 3]]
    music = np.column_stack([table.column(name).to_numpy() for name in DIMENSIONS])
    np.testing.assert_allclose(music[0], [0, 2, 0, 0, 0])
    np.testing.assert_allclose(music[1], [2, 1.5, 1.5, 1.5, 1.5])  # NaN song 2 left out


def test_one_train_play_makes_a_train_user():
    table = user_rows(plays([(0, 0, 1, False), (0, 1, 1, True)]), VECTORS)
    assert table.column("is_test").to_pylist() == [False]


def test_merge_orders_shards_and_checks_completeness():
    first = user_rows(plays([(0, 0, 1, True), (3, 1, 1, True)]), VECTORS)
    second = user_rows(plays([(1, 0, 1, True), (2, 1, 1, True)]), VECTORS)
    merged = merge_user_rows([first, second], 4)
    assert merged.column("sparse_index").to_pylist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="shard is stale or missing"):
        merge_user_rows([first], 4)
    with pytest.raises(ValueError, match="shard is stale or missing"):
        merge_user_rows([first, second, first], 4)


def test_a_shard_without_plays_has_no_rows():
    empty = Plays(*(np.array([], dtype=t) for t in (np.int32, np.int32, np.int32, bool)))
    table = user_rows(empty, VECTORS)
    assert table.num_rows == 0
    assert table.schema.names[0] == "sparse_index"


def music_bytes(table) -> list[bytes]:
    return [table.column(name).to_numpy().tobytes() for name in DIMENSIONS]


def random_plays(seed: int, n: int = 20_000) -> Plays:
    """Plays with many repeated (user, song) pairs of different counts: where the order of
    float additions shows in the last bits."""
    rng = np.random.default_rng(seed)
    return Plays(
        rng.integers(0, 50, n).astype(np.int32),
        rng.integers(0, 4, n).astype(np.int32),
        rng.integers(1, 5000, n).astype(np.int32),
        rng.random(n) < 0.5,
    )


def test_music_does_not_depend_on_the_order_of_the_plays():
    vectors = np.array([[0.1, 0.7, -0.3, 1e-3, 2.9], [1 / 3, 2 / 7, 0.05, -1.1, 0.6]] * 2)
    shard = random_plays(5)
    expected = user_rows(shard, vectors)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(shard))
        shuffled = shard.subset(order)
        assert music_bytes(user_rows(shuffled, vectors)) == music_bytes(expected)
        assert user_rows(shuffled, vectors).equals(expected)


def test_ids_too_large_for_one_sort_key_take_the_lexsort_and_agree():
    vectors = np.zeros((2**20 + 1, 5))
    vectors[:, 0] = np.linspace(0, 1, len(vectors))
    small = random_plays(9, 2_000)
    large = Plays(
        small.user_index * 4096 + 2**20,  # user ids past 2^20: users x songs x counts > 2^63
        small.song_index * 2**18,
        small.play_count * 3000,  # counts up to 15M, still below 2^24
        small.is_train,
    )
    table = user_rows(large, vectors)
    again = user_rows(large.subset(np.random.default_rng(1).permutation(len(large))), vectors)
    assert music_bytes(table) == music_bytes(again)
    assert table.column("song_sparse_indices").to_pylist() == [
        sorted(large.song_index[large.user_index == user].tolist())
        for user in sorted(set(large.user_index.tolist()))
    ]
