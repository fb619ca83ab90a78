"""Sort-based numpy helpers, in place of `np.unique`: numpy 2.4 hashes there, which on this
data takes far longer than sorting (benchmarks/RESULTS.md, "np.unique")."""

from __future__ import annotations

import numpy as np


def _starts(ordered: np.ndarray) -> np.ndarray:
    """Where a new value begins in a sorted array."""
    starts = np.empty(len(ordered), dtype=bool)
    if len(ordered):
        starts[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    return starts


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (`np.unique(values)`)."""
    ordered = np.sort(values)
    return ordered[_starts(ordered)]


def first_positions(values: np.ndarray) -> np.ndarray:
    """The position of the first occurrence of each distinct value, in the order of the values
    (`np.unique(values, return_index=True)[1]`)."""
    order = np.argsort(values, kind="stable")
    return order[_starts(values[order])]
