"""The plays as one long table, for tools that read tables, not scipy matrices: one row per
surviving play (a line of a triplet file), with its split.

The rows are sorted by user, song, split and play count, so the same raw content gives the same
table whatever the order of the lines, the shards or the workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msd_tasks.stages.join import Plays

# The `split` of a row: which file the line came from. The train matrix holds train and visible
# plays, the test matrix the hidden ones.
SPLITS = ("train", "visible", "hidden")


@dataclass(frozen=True)
class LongPlays:
    user_index: np.ndarray  # int32, a column of the matrices
    song_index: np.ndarray  # int32, a row of the matrices
    play_count: np.ndarray  # int32
    split: np.ndarray  # int8, a position in SPLITS


def long_plays(visible: list[Plays], hidden: Plays, n_songs: int) -> LongPlays:
    """Every play of the visible parts (train and visible lines) and of the hidden part, sorted."""
    parts = [*visible, hidden]
    user = np.concatenate([part.user_index for part in parts])
    song = np.concatenate([part.song_index for part in parts])
    count = np.concatenate([part.play_count for part in parts])
    split = np.concatenate(
        [np.where(part.is_train, 0, 1).astype(np.int8) for part in visible]
        + [np.full(len(hidden), 2, dtype=np.int8)]
    )
    fields = (user, song, split, count)  # the sort order, most significant first
    widths = [_bit_length(field.max()) if len(field) else 0 for field in fields]
    if sum(widths) <= 63:
        return _sorted_as_packed_values(fields, widths)
    # (user, song, split) in one int64, ties (the same play twice in one file) ordered by count
    # afterwards: rare, so cheaper than a lexsort.
    key = (user.astype(np.int64) * n_songs + song) * len(SPLITS) + split
    order = np.argsort(key)
    _order_ties_by(order, key[order], count)
    return LongPlays(user[order], song[order], count[order], split[order])


def _bit_length(value) -> int:
    return int(value).bit_length()


def _sorted_as_packed_values(fields: tuple[np.ndarray, ...], widths: list[int]) -> LongPlays:
    """Sort the rows as values rather than positions: the four fields as bit fields of one
    int64 (about 55 bits at the real size), sorted, and taken apart again. np.sort of the values
    is several times faster than np.argsort and four gathers (RESULTS.md, session 7)."""
    shifts = np.cumsum([0, *widths[::-1]])[-2::-1]  # the least significant field at bit 0
    packed = np.zeros(len(fields[0]), dtype=np.int64)
    scratch = np.empty_like(packed)  # one buffer for every step: no 150 MB temporaries
    for field, shift in zip(fields, shifts, strict=True):
        np.copyto(scratch, field)
        np.left_shift(scratch, shift, out=scratch)
        np.bitwise_or(packed, scratch, out=packed)
    packed.sort()

    def unpacked(shift, width, dtype) -> np.ndarray:
        np.right_shift(packed, shift, out=scratch)
        np.bitwise_and(scratch, (1 << int(width)) - 1, out=scratch)
        return scratch.astype(dtype)

    user, song, split, count = (
        unpacked(shift, width, field.dtype)
        for field, shift, width in zip(fields, shifts, widths, strict=True)
    )
    return LongPlays(user, song, count, split)


def _order_ties_by(order: np.ndarray, sorted_key: np.ndarray, count: np.ndarray) -> None:
    """Within each run of equal keys, put `order` in ascending `count` (in place). Only when
    the keys and counts do not fit one int64 together."""
    tied = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    if len(tied) == 0:
        return
    rows = np.union1d(tied, tied + 1)  # positions in runs of two or more
    by_run_then_count = np.lexsort((count[order[rows]], sorted_key[rows]))
    order[rows] = order[rows][by_run_then_count]
