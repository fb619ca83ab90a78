"""The standard MSD benchmark split of Mult-VAE / RecVAE / EASE, on the triplets in memory.

RecVAE's `preprocessing.py` (after vae_cf), run with `--threshold 0 --min_items_per_user 20
--min_users_per_item 200 --heldout_users 50000`, reproduced exactly (tests/recvae_port.py is the
reference) but vectorised over the codes of `Triplets`:

1. One filter pass over the lines, repeated (user, song) lines counted each time: songs on at
   least `min_users_per_song` lines are kept, then users with at least `min_songs_per_user` lines
   among those. (No second pass: a song may fall below its minimum once users are dropped.)
2. The surviving user ids sorted in Python string order (code point order, which is UTF-8 byte
   order, as pyarrow sorts), then shuffled by the legacy `np.random.seed(seed);
   np.random.permutation(n)`: `unique_uid`, whose position is a user's uid. The last
   `2 * heldout_users` are held out, validation users before test users.
3. `unique_sid`: the songs of the training users' lines, in order of first appearance in the file.
4. The held-out users' lines of songs in `unique_sid`, per user in sorted-id order, lines in file
   order. Per part the generator is re-seeded; each user with n >= 5 lines draws
   `choice(n, int(test_share * n), replace=False)` (those lines go to `_te`, the rest to `_tr`);
   users with fewer lines go whole to `_tr` and draw nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from msd_tasks.formats.split_layout import PARTS
from msd_tasks.stages.triplets import Triplets

MIN_LINES_TO_SPLIT = 5  # the reference's `if n_items_u >= 5`


@dataclass(frozen=True)
class SplitPart:
    """Lines of one part as (uid, sid) pairs, in the reference's row order."""

    uid: np.ndarray  # int32, positions in unique_uid
    sid: np.ndarray  # int32, positions in unique_sid

    def __len__(self) -> int:
        return len(self.uid)


@dataclass(frozen=True)
class BenchmarkSplit:
    unique_sid: pa.Array  # string: song ids, position = sid
    unique_uid: pa.Array  # string: user ids, position = uid
    train: SplitPart
    validation_tr: SplitPart
    validation_te: SplitPart
    test_tr: SplitPart
    test_te: SplitPart

    def parts(self) -> dict[str, SplitPart]:
        return {name: getattr(self, name) for name in PARTS}


def benchmark_split(
    triplets: Triplets,
    min_songs_per_user: int = 20,
    min_users_per_song: int = 200,
    heldout_users: int = 50_000,
    test_share: float = 0.2,
    seed: int = 98765,
    threshold: float = 0.0,
) -> BenchmarkSplit:
    """The split of RecVAE's preprocessing (the MSD run's parameters as defaults).

    Lines with a play count above `threshold` take part (the reference's `rating > threshold`;
    every count of `Triplets` is >= 1, so 0 keeps all).

    Raises ValueError where the reference goes wrong: with fewer than `2 * heldout_users + 1`
    surviving users it slices with negative or empty bounds (no training user: every part but
    train empty, or users in two parts), and when no user of a held-out part has 5 lines of
    training songs it fails in `pd.concat([])`.
    """
    if heldout_users < 1:
        raise ValueError(f"heldout_users must be >= 1, not {heldout_users}")
    if not 0 <= test_share <= 1:
        raise ValueError(f"test_share must be within [0, 1], not {test_share}")
    user_code, song_code = triplets.user_code, triplets.song_code
    n_user_codes, n_song_codes = len(triplets.user_ids), len(triplets.song_ids)

    # 1. The filter. Ids of the dictionary may have no line (skipped lines): a minimum of at
    # least 1 keeps them out, as they are not in the reference's frame at all.
    line_ok = triplets.play_count > threshold if threshold >= 1 else None
    song_lines = np.bincount(_where(song_code, line_ok), minlength=n_song_codes)
    song_ok = song_lines >= max(min_users_per_song, 1)
    line_ok = song_ok[song_code] if line_ok is None else line_ok & song_ok[song_code]
    user_lines = np.bincount(user_code[line_ok], minlength=n_user_codes)
    user_ok = user_lines >= max(min_songs_per_user, 1)

    # 2. unique_uid: the surviving users sorted by id, then permuted.
    surviving = np.flatnonzero(user_ok).astype(np.int32)
    sorted_users = surviving[id_order(triplets.user_ids.filter(pa.array(user_ok)))]
    n_users = len(sorted_users)
    if n_users < 2 * heldout_users + 1:
        raise ValueError(
            f"{n_users} users keep {min_songs_per_user}+ lines of songs on "
            f"{min_users_per_song}+ lines: at least 2 * {heldout_users} + 1 are needed to hold "
            f"out {heldout_users} validation and {heldout_users} test users and train on one"
        )
    rank_of_uid = np.random.RandomState(seed).permutation(n_users)  # uid -> rank in id order
    uid_codes = sorted_users[rank_of_uid]
    uid_of_code = np.full(n_user_codes, -1, np.int32)
    uid_of_code[uid_codes] = np.arange(n_users, dtype=np.int32)
    n_train = n_users - 2 * heldout_users

    # Each kept line's uid, -1 for the others; as uint32, -1 sorts after every uid.
    line_uid = uid_of_code[user_code]
    line_uid[~line_ok] = -1
    del line_ok
    unsigned = line_uid.view(np.uint32)

    # 3. Training lines and unique_sid (pd.unique: order of first appearance, as the reference).
    is_train = unsigned < n_train
    train_uid = line_uid[is_train]
    train_song = song_code[is_train]
    del is_train
    sid_codes = pd.unique(train_song).astype(np.int32)
    sid_of_code = np.full(n_song_codes, -1, np.int32)
    sid_of_code[sid_codes] = np.arange(len(sid_codes), dtype=np.int32)
    train = SplitPart(train_uid, sid_of_code[train_song])
    del train_song

    # 4. Held-out lines of training songs, then the per-user draws of each part.
    held = np.flatnonzero((unsigned >= n_train) & (unsigned < n_users))
    held_uid = line_uid[held]
    held_sid = sid_of_code[song_code[held]]
    del held, line_uid
    parts = []
    for first_uid in (n_train, n_train + heldout_users):
        lines = np.flatnonzero(
            (held_uid >= first_uid) & (held_uid < first_uid + heldout_users) & (held_sid >= 0)
        )
        parts += _split_by_user(
            held_uid[lines], held_sid[lines], rank_of_uid, test_share, seed, first_uid
        )
    return BenchmarkSplit(
        unique_sid=triplets.song_ids.take(pa.array(sid_codes)),
        unique_uid=triplets.user_ids.take(pa.array(uid_codes)),
        train=train,
        validation_tr=parts[0],
        validation_te=parts[1],
        test_tr=parts[2],
        test_te=parts[3],
    )


def id_order(ids: pa.Array) -> np.ndarray:
    """Positions of distinct string ids in Python string order (code point order), which is
    UTF-8 byte order: as numpy sorts bytes and pyarrow sorts strings.

    Ids of one byte length (the MSD's) are sorted as a zero-copy numpy `S<n>` view, 8x faster
    than pyarrow's sort of 1M ids.
    """
    large = pa.types.is_large_string(ids.type)
    offsets = np.frombuffer(ids.buffers()[1], np.int64 if large else np.int32)
    offsets = offsets[ids.offset : ids.offset + len(ids) + 1]
    width = int(offsets[1] - offsets[0]) if len(ids) else 0
    if width and (np.diff(offsets) == width).all():
        data = np.frombuffer(ids.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
        return np.argsort(data.view(f"S{width}"))
    return pc.sort_indices(ids).to_numpy()


def _where(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return values if mask is None else values[mask]


def _split_by_user(
    uid: np.ndarray,
    sid: np.ndarray,
    rank_of_uid: np.ndarray,
    test_share: float,
    seed: int,
    first_uid: int,
) -> tuple[SplitPart, SplitPart]:
    """The reference's `split_train_test_proportion` on one part's lines (in file order)."""
    # groupby('userId'): groups in id order (a uid's rank), file order within a group.
    order = np.argsort(rank_of_uid[uid], kind="stable")
    uid, sid = uid[order], sid[order]
    del order
    starts = np.flatnonzero(np.r_[True, uid[1:] != uid[:-1]]) if len(uid) else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, len(uid)])
    split = sizes >= MIN_LINES_TO_SPLIT
    if not split.any():
        raise ValueError(
            f"no user among uids {first_uid}.. has {MIN_LINES_TO_SPLIT} lines of training "
            "songs to split; the reference fails here (pd.concat of no frame)"
        )
    # `choice(n, k, replace=False)` of the legacy generator is `permutation(n)[:k]`, and
    # `permutation(n)` shuffles `arange(n)`. Shuffling each group's slice of one arange in place
    # draws the same numbers, in the same sequence, and leaves the chosen lines first.
    position = np.arange(len(uid))
    random = np.random.RandomState(seed)
    for start, size in zip(starts[split].tolist(), sizes[split].tolist(), strict=True):
        random.shuffle(position[start : start + size])
    # int(test_share * n): the same float64 product, truncated as int() does.
    chosen = np.where(split, (test_share * sizes).astype(np.int64), 0)
    group_of = np.repeat(np.arange(len(starts)), sizes)
    first_k = np.arange(len(uid)) - starts[group_of] < chosen[group_of]
    is_te = np.zeros(len(uid), dtype=bool)
    is_te[position[first_k]] = True
    # pd.concat of the groups' frames: tr groups in order, te groups in order.
    return SplitPart(uid[~is_te], sid[~is_te]), SplitPart(uid[is_te], sid[is_te])
