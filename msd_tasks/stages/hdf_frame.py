"""Read a DataFrame that pandas wrote in its fixed HDF5 format, from a file nobody vouches for.

pandas (through PyTables) unpickles such a file twice over: every object column is one pickle,
and PyTables unpickles node attributes as soon as a node is opened. Either runs whatever code
the file's author chose. This reader uses h5py, which never unpickles, and sends each object
column through `SafeUnpickler`, which admits only what an array of strings, bytes and numbers
needs. The frame it returns equals `pd.read_hdf(path, key)` for such files, with a RangeIndex.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from msd_tasks.errors import InputError

# pandas' name for what a column holds (infer_dtype, NaN and None skipped) that pyarrow takes.
PLAIN_COLUMN_KINDS = frozenset(
    {"string", "bytes", "integer", "floating", "mixed-integer-float", "boolean", "empty"}
)
PLAIN_TYPES = (str, bytes, int, float, bool, type(None), np.number, np.bool_)
NUMERIC_KINDS = "biuf"  # numpy scalars a column may hold: booleans, integers, floats
# pandas 3 (or 2.x with future.infer_string) reads text columns as its `str` dtype, as here.
INFERS_STRINGS = pd.Series(["text"]).dtype != object
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
EXPECTED_FILE = "an HDF5 file written by DataFrame.to_hdf (fixed format)"
TEXT_ENCODINGS = ("utf-8", "utf8", "ascii", "latin-1", "latin1", "iso-8859-1")


class Forbidden:
    """What a pickle's reference to anything outside the admitted names becomes: inert, named."""

    def __init__(self, reference: str) -> None:
        self.reference = reference

    def __call__(self, *args, **kwargs) -> Forbidden:
        return self

    def __setstate__(self, state) -> None:
        pass


class _Dtype:
    """Stands for `numpy.dtype(code, ...)` in a pickle; its state (flags) is ignored."""

    def __init__(self, code: object = None, *args) -> None:
        self.code = code if isinstance(code, str) else None

    def __setstate__(self, state) -> None:
        pass

    def numeric(self) -> np.dtype | None:
        """The plain numeric dtype meant, or None."""
        try:
            dtype = np.dtype(self.code) if self.code else None
        except TypeError:
            return None
        return dtype if dtype is not None and dtype.kind in NUMERIC_KINDS else None


class _Array:
    """Stands for `numpy.core.multiarray._reconstruct(ndarray, ...)`; BUILD gives it the state
    (version, shape, dtype, Fortran order, list of values), checked before numpy sees it."""

    def __init__(self, *args) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            return
        _, shape, dtype, _, values = state
        if not (
            isinstance(dtype, _Dtype)
            and dtype.code == "O8"
            and isinstance(values, list)
            and isinstance(shape, tuple)
            and all(type(size) is int and size >= 0 for size in shape)
            and math.prod(shape) == len(values)
        ):
            return
        flat = np.empty(len(values), dtype=object)
        for position, value in enumerate(values):  # one by one: a list value stays one cell
            flat[position] = value
        # numpy lists an object array's values in C order; the flag is only its memory layout
        self.array = flat.reshape(shape)


def _scalar(dtype: object = None, data: object = b"") -> object:
    """Stands for `numpy.core.multiarray.scalar`: a plain number, from exactly its bytes."""
    numeric = dtype.numeric() if isinstance(dtype, _Dtype) else None
    if numeric is None or not isinstance(data, bytes) or len(data) != numeric.itemsize:
        return Forbidden("numpy.core.multiarray.scalar of a non-numeric dtype")
    return np.frombuffer(data, dtype=numeric)[0]


def _encode(text: object = None, encoding: object = "latin1") -> object:
    """Stands for `_codecs.encode`, which pickle protocol 2 uses to rebuild bytes."""
    if isinstance(text, str) and encoding in ("latin1", "latin-1"):
        return text.encode("latin-1")
    return Forbidden("_codecs.encode")


# What pickle.dumps of a numpy object array of str, bytes, int, float, bool and None refers to
# (numpy 1.x and 2.x module names), each replaced by a stand-in that checks its arguments: no
# numpy constructor ever sees the pickle's data (numpy's own trust it: a list shorter than the
# shape, or an object dtype with forged flags, makes them read memory as object pointers).
STAND_INS = {
    ("numpy", "ndarray"): Forbidden("numpy.ndarray outside _reconstruct"),
    ("numpy", "dtype"): _Dtype,
    ("numpy.core.multiarray", "_reconstruct"): _Array,
    ("numpy._core.multiarray", "_reconstruct"): _Array,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("_codecs", "encode"): _encode,
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain values only: admitted names become checking stand-ins, others Forbidden."""

    def find_class(self, module: str, name: str):
        return STAND_INS.get((module, name)) or Forbidden(f"{module}.{name}")

    def persistent_load(self, pid):
        return Forbidden("a persistent id")


def safe_loads(data: bytes) -> object:
    """The unpickled value; an object array comes back as a numpy array."""
    value = SafeUnpickler(io.BytesIO(data)).load()
    if isinstance(value, _Array):
        return value.array if value.array is not None else Forbidden("a malformed array")
    return value


def read_frame(path: Path, key: str) -> pd.DataFrame:
    """The frame under `key`; anything but plain columns fails with the file, key and column."""
    path = Path(path)
    _check_signature(path)
    try:
        with h5py.File(path, "r") as h5:
            keys = sorted(h5.keys())
            if key not in keys:
                raise InputError(path, "HDF5 keys", f"a frame under key '{key}'", f"keys {keys}")
            if not isinstance(h5.get(key, getlink=True), h5py.HardLink):
                raise InputError(path, f"key '{key}'", "a node in this file", "a link elsewhere")
            return _read_fixed_frame(path, key, h5[key])
    except InputError:
        raise
    except OSError as error:  # h5py's one-line message of the HDF5 library's error
        raise InputError(path, "reading", EXPECTED_FILE, _first_line(error)) from None
    except (ValueError, TypeError, LookupError, IndexError, MemoryError) as error:
        # Attributes or nodes of unexpected shapes and types: data, never trusted to be sane.
        raise InputError(path, f"key '{key}'", EXPECTED_FILE, _first_line(error)) from None


def _check_signature(path: Path) -> None:
    with open(path, "rb") as file:
        head = file.read(len(HDF5_SIGNATURE))
    if not head:
        raise InputError(path, "the whole file", EXPECTED_FILE, "an empty file")
    if head != HDF5_SIGNATURE and not h5py.is_hdf5(path):  # a user block may precede it
        raise InputError(path, "byte 1", EXPECTED_FILE, f"no HDF5 signature but {head!r}")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _text(value: object) -> str:
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _read_fixed_frame(path: Path, key: str, group: h5py.Group | h5py.Dataset) -> pd.DataFrame:
    where = f"key '{key}'"
    kind = _text(group.attrs.get("pandas_type", "")) if isinstance(group, h5py.Group) else ""
    if kind != "frame":
        found = f"pandas_type '{kind}'" if kind else "no pandas object"
        if kind == "frame_table":
            found += " (the table format; write it with format='fixed')"
        raise InputError(path, where, "a DataFrame (pandas_type 'frame')", found)
    encoding = _text(group.attrs.get("encoding", "UTF-8"))
    if encoding.lower() not in TEXT_ENCODINGS:
        raise InputError(path, f"{where}, encoding", "UTF-8, ASCII or Latin-1", repr(encoding))
    columns = _names(path, where, group, "axis0", encoding)
    n_rows = _dataset(path, where, group, "axis1").shape[0]
    frames = []
    for block in range(int(group.attrs.get("nblocks", 0))):
        items = _names(path, where, group, f"block{block}_items", encoding)
        values = _block_values(path, where, group, f"block{block}_values", items, n_rows)
        frame = pd.DataFrame(np.asfortranarray(values), columns=items, copy=False)
        if values.dtype == object and INFERS_STRINGS:
            strings = [name for name in items if _kind(frame[name]) in ("string", "empty")]
            frame[strings] = frame[strings].astype(pd.StringDtype(na_value=np.nan))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=columns, index=pd.RangeIndex(n_rows))
    return pd.concat(frames, axis=1).reindex(columns=columns)


def _dataset(path: Path, where: str, group: h5py.Group, name: str) -> h5py.Dataset:
    node = group.get(name)
    if not isinstance(node, h5py.Dataset):
        raise InputError(path, where, f"pandas' node '{name}' of a fixed-format frame", "none")
    # Data from outside the file (a link, external storage, a virtual dataset) is not read.
    if (
        not isinstance(group.get(name, getlink=True), h5py.HardLink)
        or node.external
        or node.is_virtual
    ):
        raise InputError(path, f"{where}, {name}", "data stored in this file", "a reference out")
    return node


def _names(path: Path, where: str, group: h5py.Group, name: str, encoding: str) -> list[str]:
    """Column names: pandas stores text names as fixed-width bytes."""
    node = _dataset(path, where, group, name)
    if node.dtype.kind != "S":
        raise InputError(path, f"{where}, {name}", "column names as text", f"{node.dtype} values")
    return [bytes(value).decode(encoding) for value in node[()]]


def _block_values(
    path: Path, where: str, group: h5py.Group, name: str, items: list[str], n_rows: int
) -> np.ndarray:
    """A block's values, rows x columns."""
    node = _dataset(path, where, group, name)
    if _text(node.attrs.get("PSEUDOATOM", "")) == "object":
        values = _unpickle_block(path, where, node, items)
    elif node.dtype.kind in "biuf":
        values = node[()]
    else:
        columns = ", ".join(items)
        raise InputError(
            path, f"{where}, columns {columns}", "numbers or text", f"{node.dtype} values"
        )
    if not node.attrs.get("transposed", False):  # pandas stores 2-d blocks transposed
        values = values.T
    if values.ndim != 2 or values.shape != (n_rows, len(items)):
        raise InputError(
            path, f"{where}, {name}", f"{n_rows} rows x {len(items)} columns", str(values.shape)
        )
    return values


def _unpickle_block(path: Path, where: str, node: h5py.Dataset, items: list[str]) -> np.ndarray:
    columns = f"{where}, columns {', '.join(items)}"
    if node.shape != (1,):
        raise InputError(path, columns, "one pickled array", f"{node.shape[0]} rows")
    try:
        values = safe_loads(node[0].tobytes())
    except Exception as error:  # any malformed pickle: it is data, never trusted to be well-formed
        raise InputError(path, columns, "a pickled array", _first_line(error)) from None
    if not isinstance(values, np.ndarray) or values.dtype != object:
        found = values.reference if isinstance(values, Forbidden) else type(values).__name__
        raise InputError(path, columns, "a pickled array of strings, bytes and numbers", found)
    if values.ndim == 1 and len(items) == 1:  # pandas 3 writes a `str` column as one 1-d array
        values = values.reshape(-1, 1)
    if values.ndim != 2 or values.shape[1] != len(items):
        raise InputError(path, columns, f"rows x {len(items)} columns", str(values.shape))
    for position, name in enumerate(items):
        column = values[:, position]
        if _kind(column) not in PLAIN_COLUMN_KINDS:
            row, found = _first_odd_cell(column)
            raise InputError(
                path,
                f"{where}, column '{name}', row {row}",
                "a column of strings, bytes or numbers",
                found,
            )
    return values


def _kind(values) -> str:
    return pd.api.types.infer_dtype(values, skipna=True)


def _first_odd_cell(column: np.ndarray) -> tuple[int, str]:
    """Row (from 1) and description of the first cell that is not a plain value, or that mixes
    text with another type."""
    first_type = None
    for row, value in enumerate(column, start=1):
        if isinstance(value, Forbidden):
            return row, f"a pickled reference to {value.reference}"
        if not isinstance(value, PLAIN_TYPES):
            return row, f"a {type(value).__name__}"
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        kind = str if isinstance(value, str) else bytes if isinstance(value, bytes) else float
        if first_type is None:
            first_type = kind
        elif kind is not first_type:
            return (
                row,
                f"{value!r:.40} (a {type(value).__name__}) after {first_type.__name__} values",
            )
    return len(column), "a mixed column"
