"""user_df.h5's list columns pickled from arrays: the bytes CPython's pickler writes, and the
file pandas writes, for lists built the slow way in the test."""

from __future__ import annotations

import pickle
import pickletools

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tables

from msd_tasks.formats.deliverables import LIST_COLUMNS, write_hdf, write_user_hdf
from msd_tasks.formats.list_pickle import BATCH, list_columns_pickle, portable_pickle
from msd_tasks.stages.music import DIMENSIONS
from msd_tasks.stages.users import USER_ROWS_SCHEMA

# Lengths around pickle's batches of 1000 items, and values around each int opcode's range.
EDGE_LENGTHS = [0, 1, 2, BATCH - 1, BATCH, BATCH + 1, 2 * BATCH, 2 * BATCH + 1, 0, 1]
EDGE_VALUES = [0, 1, 255, 256, 65535, 65536, 2**31 - 1, 7, 300, 170_000]


def unframed(data: bytes) -> bytes:
    """`data` without its FRAME opcodes (each 9 bytes), which only group the others."""
    kept, last = bytearray(), 0
    for opcode, _, position in pickletools.genops(data):
        if opcode.name == "FRAME":
            kept += data[last:position]
            last = position + 9
    return bytes(kept + data[last:])


def lists_the_slow_way(floats, offsets, ints) -> np.ndarray:
    cells = np.empty((len(floats), 2), dtype=object, order="F")
    for row in range(len(floats)):
        cells[row, 0] = floats[row].tolist()
        cells[row, 1] = ints[offsets[row] : offsets[row + 1]].tolist()
    return cells


def random_lists(seed: int, users: int = 3000):
    rng = np.random.default_rng(seed)
    lengths = np.r_[EDGE_LENGTHS, rng.integers(0, 40, users)]
    offsets = np.r_[0, np.cumsum(lengths)]
    ints = rng.choice(EDGE_VALUES, size=int(offsets[-1])).astype(np.int32)
    floats = rng.normal(size=(len(lengths), 5))
    floats[3, 2], floats[4] = np.nan, np.inf
    return floats, offsets, ints


@pytest.mark.parametrize("seed", range(5))
def test_the_bytes_are_the_portable_pickle_without_its_frames(seed):
    floats, offsets, ints = random_lists(seed)
    expected = portable_pickle(lists_the_slow_way(floats, offsets, ints))
    assert list_columns_pickle(floats, offsets, ints) == unframed(expected)


@pytest.mark.parametrize("users", [2, 499, 500, 501, 1000])  # outer batches of 1000 cells
def test_rows_around_the_outer_batches_unpickle_to_the_same_lists(users):
    floats, offsets, ints = random_lists(7, users - len(EDGE_LENGTHS) if users > 10 else 0)
    floats, offsets = floats[:users], offsets[: users + 1]
    ints = ints[: offsets[-1]]
    slow = lists_the_slow_way(floats, offsets, ints)
    fast = pickle.loads(list_columns_pickle(floats, offsets, ints))
    assert fast.shape == slow.shape == (users, 2)
    assert [repr(cell) for cell in fast.ravel()] == [repr(cell) for cell in slow.ravel()]
    assert list_columns_pickle(floats, offsets, ints) == unframed(portable_pickle(slow))


def test_items_outside_int32_are_refused():
    with pytest.raises(ValueError, match=r"0\.\.2\^31-1"):
        list_columns_pickle(np.zeros((1, 5)), np.array([0, 1]), np.array([2**31]))


def user_rows(seed: int) -> tuple[pa.Table, pa.Array]:
    floats, offsets, ints = random_lists(seed, users=200)
    n = len(floats)
    columns = {
        "sparse_index": np.arange(n, dtype=np.int32),
        **{name: floats[:, k] for k, name in enumerate(DIMENSIONS)},
        "num_songs": np.diff(offsets).astype(np.int32),
        "is_test": np.arange(n) % 3 == 0,
        "song_sparse_indices": pa.ListArray.from_arrays(
            pa.array(offsets.astype(np.int32)), pa.array(ints)
        ),
    }
    ids = pa.array([f"{k:040x}" for k in range(n)])
    return pa.table(columns, schema=USER_ROWS_SCHEMA), ids


def test_user_df_h5_reads_as_the_frame_pandas_writes_with_lists(tmp_path):
    rows, ids = user_rows(3)
    songs = rows.column("song_sparse_indices").to_pylist()
    music = np.column_stack([rows.column(name).to_numpy() for name in DIMENSIONS])
    expected = pd.DataFrame(
        {
            "user_id": ids.to_pylist(),
            "MUSIC": music.tolist(),
            "num_songs": rows.column("num_songs").to_numpy().astype(np.int64),
            "is_test": rows.column("is_test").to_numpy(zero_copy_only=False),
            "song_sparse_indices": songs,
        },
        index=pd.Index(np.arange(rows.num_rows, dtype=np.int64), name="sparse_index"),
    )
    write_hdf(expected, tmp_path / "pandas.h5")
    write_user_hdf(rows, ids, tmp_path / "ours.h5")

    ours = pd.read_hdf(tmp_path / "ours.h5", key="df")
    pd.testing.assert_frame_equal(ours, pd.read_hdf(tmp_path / "pandas.h5", key="df"))
    assert ours["song_sparse_indices"].map(type).eq(list).all()
    with tables.open_file(tmp_path / "pandas.h5") as a, tables.open_file(tmp_path / "ours.h5") as b:
        nodes = [{n._v_pathname: _attributes(n) for n in h5.walk_nodes("/")} for h5 in (a, b)]
        assert nodes[0] == nodes[1]
        block = next(
            node
            for node in b.walk_nodes("/df")
            if node._v_name.endswith("_items")
            and [i.decode() for i in node.read()] == list(LIST_COLUMNS)
        )
        values = b.get_node(f"/df/{block._v_name.replace('_items', '_values')}")
        assert type(values.atom) is tables.ObjectAtom  # read back as plain pickled objects


def _attributes(node) -> dict:
    attributes = {name: repr(node._v_attrs[name]) for name in node._v_attrs._f_list("user")}
    return {"class": type(node).__name__, **attributes}


def _globals(data: bytes) -> set[str]:
    """`module.name` of every global the pickle loads, memoized strings followed."""
    memo, pushed, found = [], [], set()
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            pushed.append(argument)
        elif opcode.name in ("BINGET", "LONG_BINGET"):
            pushed.append(memo[argument])
        elif opcode.name == "MEMOIZE":
            memo.append(pushed[-1])
        elif opcode.name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        elif opcode.name == "GLOBAL":
            found.add(argument.replace(" ", "."))
            pushed.append(None)
        elif opcode.stack_after:  # pushes something else
            pushed.append(None)
    return found


@pytest.mark.parametrize(
    "values",
    [
        np.array(["a", "b", None, float("nan")], dtype=object),
        np.asfortranarray(np.full((70_000, 2), "x" * 40, dtype=object)),  # several frames
        np.array([np.float64(1.5), np.int64(3)], dtype=object),  # numpy scalars in cells
    ],
)
def test_portable_pickles_load_on_python_3_4_and_numpy_1(values):
    data = portable_pickle(values)
    assert data[:2] == b"\x80\x04"
    assert max(opcode.proto for opcode, _, _ in pickletools.genops(data)) <= 4
    assert not any(name.startswith("numpy._core") for name in _globals(data))
    assert b"numpy._core" not in data
    loaded = pickle.loads(data)
    assert loaded.shape == values.shape
    assert [repr(cell) for cell in loaded.ravel()] == [repr(cell) for cell in values.ravel()]


def test_written_deliverables_hold_only_portable_pickles(tmp_path):
    rows, ids = user_rows(4)
    write_user_hdf(rows, ids, tmp_path / "user_df.h5")
    with h5py.File(tmp_path / "user_df.h5", "r") as h5:  # h5py: the raw pickles, not loaded
        blocks = [name for name in h5["df"] if h5["df"][name].dtype.kind == "O"]
        assert len(blocks) == 2  # user_id (pandas, through PyTables) and the lists (ours)
        for node in blocks:
            data = h5["df"][node][0].tobytes()
            assert data[:2] == b"\x80\x04", node
            assert _globals(data) == {
                "numpy.core.multiarray._reconstruct",
                "numpy.ndarray",
                "numpy.dtype",
            }, node
