"""The pickle pandas stores for user_df's two list columns, encoded with numpy, and the
pickle every object block of the .h5 deliverables is stored as (`portable_pickle`).

pandas writes a frame's object block to HDF5 as one pickle of the block's values: PyTables
writes `pickle.dumps(values, HIGHEST_PROTOCOL)`, protocol 5, which Python < 3.8 refuses, and
numpy 2 names its reconstructor `numpy._core.multiarray._reconstruct`, which numpy < 1.26.1
cannot import. The deliverables' pickles are written with protocol 4 (object arrays use no
protocol-5 opcode, so only the PROTO byte differs) and name `numpy.core.multiarray`, where
every numpy 1.x has `_reconstruct` and numpy 2.x keeps it, without a warning, for old pickles.
For user_df that is the (n_users, 2) object array of the MUSIC lists (5 floats each) and the
song_sparse_indices lists (ints). Building 1.1M Python lists and pickling them was the slowest
step of the build. `list_columns_pickle` writes the same opcodes from the arrays directly: the
bytes equal `portable_pickle(values)` once its FRAME opcodes (optional in protocol 4) are taken
out, so `pickle.loads` gives an equal array. numpy lists the cells row by row (C order)
whatever the array's layout: MUSIC of user 0, songs of user 0, MUSIC of user 1, ...
"""

from __future__ import annotations

import pickle

import numpy as np

BATCH = 1000  # pickle appends list items in batches of this many (MARK ... APPENDS)
PROTOCOL = 4  # the highest Python 3.4-3.7 read
NUMPY_2_MODULE = b"\x8c\x16numpy._core.multiarray"  # SHORT_BINUNICODE of 22 characters
NUMPY_1_MODULE = b"\x8c\x15numpy.core.multiarray"  # importable in numpy 1.x and 2.x
FRAME = b"\x95"  # + 8-byte length: protocol 4's optional grouping of the opcodes that follow
EMPTY_LIST, MEMOIZE, MARK, APPENDS, APPEND = b"]", b"\x94", b"(", b"e", b"a"
BINFLOAT, BININT1, BININT2, BININT = b"G", b"K", b"M", b"J"
FLOAT_CELL = 2 + 1 + 9 * 5 + 1  # ]\x94 ( 5 x (G + 8 bytes) e
ROWS_PER_CHUNK = 65_536  # float cells written at a time, to bound the index arrays


def list_columns_pickle(floats: np.ndarray, offsets: np.ndarray, ints: np.ndarray) -> bytes:
    """The pickle (as `portable_pickle` writes it) of the Fortran-ordered (n, 2) object array
    whose row i holds `list(floats[i])` (5 floats) and `list(ints[offsets[i]:offsets[i + 1]])`.

    Every byte that is not an int item is written at its place first (the frame, the float
    cells, each int list's EMPTY_LIST, MARK, APPENDS and APPEND opcodes); the int items, each
    its opcode and argument, then fill the remaining bytes in order. ints must be in
    0..2^31-1 (they are sparse indices).
    """
    n = len(floats)
    offsets = np.asarray(offsets, dtype=np.int64)
    if floats.shape != (n, 5) or len(offsets) != n + 1:
        raise ValueError(f"expected {n} x 5 floats and {n + 1} offsets")
    ints = np.asarray(ints)
    if len(ints) and (ints.min() < 0 or ints.max() >= 2**31):
        raise ValueError("list items must be in 0..2^31-1")
    header, trailer = _array_frame(n)
    lengths = np.diff(offsets)
    sizes = (ints >= 256).astype(np.uint8)  # 2, 3 or 5 bytes: BININT1, BININT2 or BININT
    sizes += 2
    sizes[ints >= 65536] = 5
    before = np.zeros(len(ints) + 1, np.int64)  # bytes of the items before each one
    np.cumsum(sizes, out=before[1:])
    batches = np.where(lengths > 1, -(-lengths // BATCH), 0)
    int_cells = 2 + before[offsets[1:]] - before[offsets[:-1]] + (lengths == 1) + 2 * batches
    cell_lengths = np.empty(2 * n, np.int64)
    cell_lengths[0::2], cell_lengths[1::2] = FLOAT_CELL, int_cells
    cells = 2 * n
    outer = len(header) + 2  # where the first cell's batch starts
    starts = outer + np.cumsum(cell_lengths) - cell_lengths + 2 * (np.arange(cells) // BATCH) + 1
    out = np.zeros(
        outer + int(cell_lengths.sum()) + 2 * -(-cells // BATCH) + len(trailer), np.uint8
    )
    is_item = np.ones(len(out), bool)  # cleared wherever something else is written
    out[: len(header)] = np.frombuffer(header, np.uint8)
    out[len(header) : outer] = np.frombuffer(EMPTY_LIST + MEMOIZE, np.uint8)
    out[len(out) - len(trailer) :] = np.frombuffer(trailer, np.uint8)
    is_item[:outer] = is_item[len(out) - len(trailer) :] = False
    if cells:
        marks = starts[::BATCH] - 1
        last_in_batch = np.r_[np.arange(BATCH - 1, cells - 1, BATCH), cells - 1]
        appends = starts[last_in_batch] + cell_lengths[last_in_batch]
        out[marks], out[appends] = ord(MARK), ord(APPENDS)
        is_item[marks] = is_item[appends] = False
    for first in range(0, n, ROWS_PER_CHUNK):
        cell_starts = starts[2 * first : 2 * (first + ROWS_PER_CHUNK) : 2]
        where = cell_starts[:, None] + np.arange(FLOAT_CELL)
        out[where] = _float_cells(floats[first : first + ROWS_PER_CHUNK])
        is_item[where] = False
    _write_int_structure(out, is_item, starts[1::2], offsets, lengths, batches, before)
    out[is_item] = _item_bytes(ints, sizes)
    return out.tobytes()


def portable_pickle(values: np.ndarray) -> bytes:
    """`pickle.dumps(values, 4)` of an object array, with numpy 2's `numpy._core.multiarray`
    renamed `numpy.core.multiarray` (numpy 1.x writes that name already). The module is the
    pickle's first string, right after PROTO and the first FRAME (whose length is adjusted),
    and is memoized there: later globals of that module (`scalar`, for numpy scalars in cells)
    refer to it, so they are renamed with it."""
    data = pickle.dumps(values, PROTOCOL)
    head = 11 if data[2:3] == FRAME else 2
    if data[head : head + len(NUMPY_2_MODULE)] != NUMPY_2_MODULE:
        return data
    frame = data[2:head]
    if frame:  # the first frame is one byte shorter
        frame = FRAME + (int.from_bytes(frame[1:], "little") - 1).to_bytes(8, "little")
    rest = memoryview(data)[head + len(NUMPY_2_MODULE) :]
    return b"".join((data[:2], frame, NUMPY_1_MODULE, rest))  # one copy of the pickle


def _write_int_structure(
    out: np.ndarray,
    is_item: np.ndarray,
    starts: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    batches: np.ndarray,
    before: np.ndarray,
) -> np.ndarray:
    """Each int list's opcodes around its items, cleared in `is_item`."""
    out[starts] = ord(EMPTY_LIST)
    out[starts + 1] = ord(MEMOIZE)
    is_item[starts] = is_item[starts + 1] = False
    single = lengths == 1
    append = starts[single] + 2 + before[offsets[1:][single]] - before[offsets[:-1][single]]
    out[append] = ord(APPEND)
    is_item[append] = False
    lists = np.repeat(np.flatnonzero(batches), batches[batches > 0])
    batch = np.arange(len(lists)) - np.repeat(
        np.cumsum(batches[batches > 0]) - batches[batches > 0], batches[batches > 0]
    )
    first = offsets[lists] + batch * BATCH
    end = np.minimum(first + BATCH, offsets[lists + 1])
    mark = starts[lists] + 2 + 2 * batch + before[first] - before[offsets[lists]]
    appends = mark + 1 + before[end] - before[first]
    out[mark], out[appends] = ord(MARK), ord(APPENDS)
    is_item[mark] = is_item[appends] = False


def _item_bytes(ints: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Every int's opcode (BININT1, BININT2 or BININT) and little-endian argument, in order."""
    records = np.empty((len(ints), 5), np.uint8)
    opcodes = np.zeros(6, np.uint8)
    opcodes[[2, 3, 5]] = [ord(BININT1), ord(BININT2), ord(BININT)]
    records[:, 0] = opcodes[sizes]
    records[:, 1:] = ints.astype("<u4").view(np.uint8).reshape(-1, 4)
    return records[np.arange(5) < sizes[:, None]]


def _array_frame(n: int) -> tuple[bytes, bytes]:
    """The pickle of an (n, 2) Fortran-ordered object array up to its list of cells, and after.

    Taken from pickling a 2 x 2 one (the same numpy and Python write the same header) with the
    shape replaced, so it follows numpy's own reduce.
    """
    sample = portable_pickle(np.asfortranarray(np.full((2, 2), None, dtype=object)))
    if sample[2:3] == FRAME:  # one FRAME opcode around everything: unframe
        sample = sample[:2] + sample[11:]
    shape, cells = b"K\x02K\x02\x86", EMPTY_LIST + MEMOIZE + MARK + b"N" * 4 + APPENDS
    if sample.count(shape) != 1 or sample.count(cells) != 1:
        raise RuntimeError("unexpected pickle of an object array from this numpy")
    head, tail = sample.split(cells)
    return head.replace(shape, _int_opcode(n) + _int_opcode(2) + b"\x86"), tail


def _int_opcode(value: int) -> bytes:
    if value < 256:
        return BININT1 + value.to_bytes(1, "little")
    if value < 65536:
        return BININT2 + value.to_bytes(2, "little")
    return BININT + value.to_bytes(4, "little", signed=True)


def _float_cells(floats: np.ndarray) -> np.ndarray:
    """The bytes of each row's list of 5 floats, one row each."""
    rows = np.zeros((len(floats), FLOAT_CELL), np.uint8)
    rows[:, :3] = np.frombuffer(EMPTY_LIST + MEMOIZE + MARK, np.uint8)
    big_endian = np.ascontiguousarray(floats, dtype=">f8").view(np.uint8).reshape(-1, 5, 8)
    for k in range(5):
        rows[:, 3 + 9 * k] = ord(BINFLOAT)
        rows[:, 4 + 9 * k : 12 + 9 * k] = big_endian[:, k]
    rows[:, -1] = ord(APPENDS)
    return rows
