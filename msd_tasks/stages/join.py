"""Join plays with the song catalogue, drop hidden-only users, and number users and songs.

Everything happens on integer codes: each file's song dictionary is looked up in the catalogue
once and each file's user dictionary is merged into one user numbering, then plays are `take`n.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from msd_tasks.stages.arrays import distinct
from msd_tasks.stages.quality import SAMPLE_IDS
from msd_tasks.stages.triplets import Triplets


@dataclass(frozen=True)
class Plays:
    """Plays that survive the join, as the sparse indices of their user and song."""

    user_index: np.ndarray  # int32
    song_index: np.ndarray  # int32
    play_count: np.ndarray  # int32
    is_train: np.ndarray  # bool: from the train file (as opposed to a test file)

    def __len__(self) -> int:
        return len(self.play_count)

    def subset(self, rows: np.ndarray) -> Plays:
        return Plays(
            self.user_index[rows], self.song_index[rows], self.play_count[rows], self.is_train[rows]
        )


@dataclass(frozen=True)
class JoinedPlays:
    user_ids: pa.Array  # string, sorted; position = user sparse_index
    song_ids: pa.Array  # string, sorted; position = song sparse_index
    song_catalog_rows: np.ndarray  # int32 row of each song in the catalogue
    visible: Plays  # train and visible-test plays: the train matrix and user_df
    hidden: Plays  # hidden-test plays: the test matrix
    hidden_only_users: int  # users dropped because only their hidden plays joined
    mismatched_plays_dropped: int = 0  # plays of songs listed as song-to-track mismatches
    train_plays_joined: int = 0  # train plays whose song is in the catalogue
    unmatched_song_ids: list[str] = field(default_factory=list)  # a few train songs not in it
    test_users_in_train: int = 0  # users of a test file who also have train lines
    test_pairs_in_both: int = 0  # (user, catalogue song) pairs in both test files


def sort_ids(ids: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The distinct `ids` sorted, and each id's position in that order (its sparse index).

    pyarrow sorts strings bytewise, which for UTF-8 is code-point order: the order in which
    pandas sorts the categories of a string column, so positions equal categorical codes.
    """
    order = pc.sort_indices(ids)
    positions = np.empty(len(ids), dtype=np.int32)
    positions[order.to_numpy()] = np.arange(len(ids), dtype=np.int32)
    return ids.take(order), positions


def join_plays(
    catalog_song_ids: pa.Array, files: dict[str, Triplets], dropped_song_ids: pa.Array | None = None
) -> JoinedPlays:
    """The notebook's inner join of all triplets with the catalogue, hidden-only users removed.

    files: triplets for "train", "visible" and "hidden". A play survives when its song is in the
    catalogue; a user survives when at least one of their train or visible plays survives (the
    notebook removes users whose joined plays are all hidden). Plays of `dropped_song_ids`
    (known song-to-track mismatches) are dropped before the join and counted.
    """
    kinds = ("train", "visible", "hidden")
    user_offsets = np.cumsum([0] + [len(files[kind].user_ids) for kind in kinds])
    all_user_ids = pa.concat_arrays([files[kind].user_ids for kind in kinds])
    merged = pc.dictionary_encode(all_user_ids)
    global_of_local = merged.indices.to_numpy(zero_copy_only=False)
    distinct_users = merged.dictionary

    joined = {}
    dropped_plays = 0
    unmatched_song_ids: list[str] = []
    for offset, kind in zip(user_offsets[:-1], kinds, strict=True):
        triplets = files[kind]
        catalog_row_of_code = pc.index_in(triplets.song_ids, value_set=catalog_song_ids)
        catalog_row_of_code = catalog_row_of_code.fill_null(-1).to_numpy().astype(np.int32)
        if dropped_song_ids is not None:
            dropped = pc.is_in(triplets.song_ids, value_set=dropped_song_ids).to_numpy(
                zero_copy_only=False
            )
            dropped_plays += int(dropped[triplets.song_code].sum())
            catalog_row_of_code[dropped] = -1
        if kind == "train":
            unmatched = np.flatnonzero(catalog_row_of_code < 0)[:SAMPLE_IDS]
            unmatched_song_ids = triplets.song_ids.take(pa.array(unmatched)).to_pylist()
        catalog_row = catalog_row_of_code[triplets.song_code]
        kept = np.flatnonzero(catalog_row >= 0)
        joined[kind] = (
            global_of_local[offset + triplets.user_code[kept]],
            catalog_row[kept],
            triplets.play_count[kept],
        )

    in_file = {kind: np.zeros(len(distinct_users), dtype=bool) for kind in kinds}
    for kind, start, end in zip(kinds, user_offsets[:-1], user_offsets[1:], strict=True):
        in_file[kind][global_of_local[start:end]] = True
    test_users_in_train = int((in_file["train"] & (in_file["visible"] | in_file["hidden"])).sum())
    test_pairs_in_both = len(
        np.intersect1d(
            _pairs(joined["visible"], len(catalog_song_ids)),
            _pairs(joined["hidden"], len(catalog_song_ids)),
            assume_unique=True,
        )
    )

    has_visible = np.zeros(len(distinct_users), dtype=bool)
    has_visible[joined["train"][0]] = True
    has_visible[joined["visible"][0]] = True
    hidden_users = distinct(joined["hidden"][0])
    hidden_only_users = int((~has_visible[hidden_users]).sum())

    surviving_users = np.flatnonzero(has_visible)
    user_index_of_global = np.full(len(distinct_users), -1, dtype=np.int32)
    user_ids, user_index_of_global[surviving_users] = sort_ids(
        distinct_users.take(pa.array(surviving_users))
    )

    hidden_users_kept = user_index_of_global[joined["hidden"][0]] >= 0
    joined["hidden"] = tuple(column[hidden_users_kept] for column in joined["hidden"])

    played = np.zeros(len(catalog_song_ids), dtype=bool)
    for kind in kinds:
        played[joined[kind][1]] = True
    played_rows = np.flatnonzero(played).astype(np.int32)
    song_index_of_catalog = np.full(len(catalog_song_ids), -1, dtype=np.int32)
    song_ids, song_index_of_catalog[played_rows] = sort_ids(
        catalog_song_ids.take(pa.array(played_rows))
    )
    song_catalog_rows = np.empty_like(played_rows)
    song_catalog_rows[song_index_of_catalog[played_rows]] = played_rows

    def plays(kinds_: tuple[str, ...]) -> Plays:
        users = np.concatenate([joined[kind][0] for kind in kinds_])
        songs = np.concatenate([joined[kind][1] for kind in kinds_])
        counts = np.concatenate([joined[kind][2] for kind in kinds_])
        is_train = np.concatenate(
            [np.full(len(joined[kind][0]), kind == "train") for kind in kinds_]
        )
        return Plays(user_index_of_global[users], song_index_of_catalog[songs], counts, is_train)

    return JoinedPlays(
        user_ids=user_ids,
        song_ids=song_ids,
        song_catalog_rows=song_catalog_rows,
        visible=plays(("train", "visible")),
        hidden=plays(("hidden",)),
        hidden_only_users=hidden_only_users,
        mismatched_plays_dropped=dropped_plays,
        train_plays_joined=len(joined["train"][0]),
        unmatched_song_ids=unmatched_song_ids,
        test_users_in_train=test_users_in_train,
        test_pairs_in_both=test_pairs_in_both,
    )


def _pairs(plays: tuple[np.ndarray, np.ndarray, np.ndarray], n_songs: int) -> np.ndarray:
    """Distinct (user, catalogue row) pairs of joined plays, as one int64 each."""
    return distinct(plays[0].astype(np.int64) * n_songs + plays[1])


def user_shards(user_ids: pa.Array, n_shards: int) -> np.ndarray:
    """A stable shard number per user: CRC-32 of the UTF-8 id modulo n_shards.

    Python's hash() is salted per process, so it would send a user to different shards in
    different runs; CRC-32 is the same on every machine and run.
    """
    checksums = np.fromiter(
        map(zlib.crc32, user_ids.cast(pa.binary()).to_pylist()),  # the UTF-8 bytes, as is
        dtype=np.uint32,
        count=len(user_ids),
    )
    return (checksums % n_shards).astype(np.int32)
