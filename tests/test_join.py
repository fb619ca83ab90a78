"""The join on codes: inner join with the catalogue, hidden-only users, sorted numbering, shards."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from msd_tasks.stages.join import join_plays, sort_ids, user_shards
from msd_tasks.stages.shards import MIN_SHARDS, SHARD_TEXT_BYTES, automatic_shard_count
from msd_tasks.stages.triplets import Triplets


def triplets(lines: list[tuple[str, str, int]]) -> Triplets:
    users = sorted({u for u, _, _ in lines}, reverse=True)  # dictionary order is arbitrary
    songs = sorted({s for _, s, _ in lines})
    return Triplets(
        user_code=np.array([users.index(u) for u, _, _ in lines], dtype=np.int32),
        song_code=np.array([songs.index(s) for _, s, _ in lines], dtype=np.int32),
        play_count=np.array([c for _, _, c in lines], dtype=np.int32),
        user_ids=pa.array(users, pa.string()),
        song_ids=pa.array(songs, pa.string()),
    )


CATALOG = pa.array(["S3", "S1", "S2", "S9"])  # catalogue order is not sorted order
FILES = {
    "train": triplets([("ub", "S1", 2), ("ub", "Sx", 5), ("ua", "S2", 1), ("ua", "S2", 4)]),
    "visible": triplets([("uc", "S3", 1), ("ud", "Sx", 1), ("ua", "S1", 2)]),
    "hidden": triplets([("uc", "S9", 7), ("ud", "S1", 3), ("ue", "S2", 1)]),
}


def test_users_and_songs_are_numbered_in_sorted_order():
    joined = join_plays(CATALOG, FILES)
    # ud and ue have no visible play that joins: hidden-only, removed everywhere
    assert joined.user_ids.to_pylist() == ["ua", "ub", "uc"]
    assert joined.hidden_only_users == 2
    # S9 is only played (hidden) by uc, who survives, so it keeps an index
    assert joined.song_ids.to_pylist() == ["S1", "S2", "S3", "S9"]
    assert joined.song_catalog_rows.tolist() == [1, 2, 0, 3]


def test_plays_keep_every_joined_line():
    joined = join_plays(CATALOG, FILES)
    users, songs = joined.user_ids.to_pylist(), joined.song_ids.to_pylist()
    visible = sorted(
        (users[u], songs[s], int(c), bool(t))
        for u, s, c, t in zip(
            joined.visible.user_index,
            joined.visible.song_index,
            joined.visible.play_count,
            joined.visible.is_train,
            strict=True,
        )
    )
    assert visible == [
        ("ua", "S1", 2, False),
        ("ua", "S2", 1, True),
        ("ua", "S2", 4, True),  # a repeated line stays a separate play
        ("ub", "S1", 2, True),
        ("uc", "S3", 1, False),
    ]
    hidden = [
        (users[u], songs[s], int(c))
        for u, s, c in zip(
            joined.hidden.user_index,
            joined.hidden.song_index,
            joined.hidden.play_count,
            strict=True,
        )
    ]
    assert hidden == [("uc", "S9", 7)]


def test_sorted_positions_use_code_point_order_like_pandas():
    values = ["b", "B", "é", "e", "Z", "ü", "a"]
    ordered, positions = sort_ids(pa.array(values))
    assert ordered.to_pylist() == sorted(values)
    expected = {value: rank for rank, value in enumerate(sorted(values))}
    assert positions.tolist() == [expected[value] for value in values]
    import pandas as pd

    categorical = pd.Series(values).astype("category")
    assert positions.tolist() == categorical.cat.codes.tolist()


def test_user_shards_are_stable_and_spread():
    ids = pa.array([f"{i:040x}" for i in range(2000)])
    shards = user_shards(ids, 8)
    assert shards.tolist() == user_shards(ids, 8).tolist()
    assert set(shards.tolist()) == set(range(8))
    assert min(np.bincount(shards)) > 150
    import zlib

    assert shards[5] == zlib.crc32(f"{5:040x}".encode()) % 8


@pytest.mark.process  # a fresh interpreter
def test_user_shards_are_the_same_in_another_process_with_another_hash_seed():
    import json
    import os
    import subprocess
    import sys

    ids = [f"{i:040x}" for i in range(0, 4000, 7)]
    code = (
        "import json, sys, pyarrow as pa; from msd_tasks.stages.join import user_shards; "
        "print(json.dumps(user_shards(pa.array(json.loads(sys.stdin.read())), 8).tolist()))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(ids),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(other.stdout) == user_shards(pa.array(ids), 8).tolist()


def test_automatic_shard_count_grows_with_the_train_text():
    assert automatic_shard_count(0) == MIN_SHARDS == 2  # one per worker, even for tiny data
    assert automatic_shard_count(300_106_594) == 2  # the sample at scale 0.1
    assert automatic_shard_count(2 * SHARD_TEXT_BYTES) == 2
    assert automatic_shard_count(2 * SHARD_TEXT_BYTES + 1) == 3
    assert automatic_shard_count(3_001_070_295) == 8  # the sample at scale 1.0
    assert automatic_shard_count(2_900_000_000) == 8  # the real train_triplets.txt (2.9 GB)


def test_facts_for_the_quality_gates():
    joined = join_plays(CATALOG, FILES)
    # train: ("ub", "Sx") matches no catalogue song; three of four lines join
    assert joined.train_plays_joined == 3
    assert joined.unmatched_song_ids == ["Sx"]
    assert joined.test_users_in_train == 1  # ua: train lines and a visible line
    assert joined.test_pairs_in_both == 0
    overlapping = {**FILES, "hidden": triplets([("uc", "S3", 2), ("ua", "S1", 1)])}
    assert join_plays(CATALOG, overlapping).test_pairs_in_both == 2  # (uc, S3), (ua, S1)
