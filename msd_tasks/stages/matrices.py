"""Songs x users play matrices (float32 CSR), as `scipy.sparse.save_npz` files."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

MAX_EXACT_FLOAT32 = 2**24  # the largest integer up to which every integer is a float32


class PlayCountOverflow(ValueError):
    """A (song, user) cell whose repeated lines sum past what float32 holds exactly."""

    def __init__(self, song_index: int, user_index: int, total: int) -> None:
        self.song_index, self.user_index, self.total = song_index, user_index, total
        super().__init__(
            f"the plays of song sparse_index {song_index} by user sparse_index {user_index} "
            f"sum to {total}, above {MAX_EXACT_FLOAT32}: float32 would no longer hold it"
        )


def play_matrix(
    song_index: np.ndarray, user_index: np.ndarray, play_count: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """The notebook's `coo_matrix(...).tocsr()`: repeated (song, user) pairs are summed.

    Faster at full size than building users x songs and transposing (benchmarks/RESULTS.md,
    "Design measurements"), and the notebook's own.
    """
    import scipy.sparse as sp  # only the matrices need it

    coo = sp.coo_matrix((play_count.astype(np.float32), (song_index, user_index)), shape=shape)
    matrix = coo.tocsr()
    # float32 sums are exact below 2^24 and never round down past it, so a cell whose true sum
    # exceeds 2^24 holds at least 2^24: only such cells are summed again, exactly.
    for position in np.flatnonzero(matrix.data >= MAX_EXACT_FLOAT32):
        song = int(np.searchsorted(matrix.indptr, position, side="right") - 1)
        user = int(matrix.indices[position])
        lines = (song_index == song) & (user_index == user)
        total = int(play_count[lines].sum(dtype=np.int64))
        if total > MAX_EXACT_FLOAT32:
            raise PlayCountOverflow(song, user, total)
    return matrix


def save_matrix(matrix: sp.csr_matrix, file: BinaryIO) -> None:
    """Uncompressed npz: `load_npz` reads it the same way, and deflating it costs far more
    than it saves (benchmarks/RESULTS.md, "Design measurements")."""
    import scipy.sparse as sp

    sp.save_npz(file, matrix, compressed=False)
