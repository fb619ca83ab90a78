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
    # (user, song, split) in one int64: about 41 bits at the real size. Ties, the same play
    # twice in one file, are ordered by count afterwards: rare, so cheaper than a lexsort.
    key = (user.astype(np.int64) * n_songs + song) * len(SPLITS) + split
    order = np.argsort(key)
    _order_ties_by(order, key[order], count)
    return LongPlays(user[order], song[order], count[order], split[order])


def _order_ties_by(order: np.ndarray, sorted_key: np.ndarray, count: np.ndarray) -> None:
    """Within each run of equal keys, put `order` in ascending `count` (in place)."""
    tied = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    if len(tied) == 0:
        return
    rows = np.union1d(tied, tied + 1)  # positions in runs of two or more
    by_run_then_count = np.lexsort((count[order[rows]], sorted_key[rows]))
    order[rows] = order[rows][by_run_then_count]
