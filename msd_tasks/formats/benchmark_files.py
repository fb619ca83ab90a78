"""Files of the MSD benchmark split (`msd_tasks.stages.benchmark_split`).

`write_split_csv`: the seven files of RecVAE's preprocessing, byte for byte as it writes them
(what model code reads with `get_data`). `write_split_parquet`: the same split as int32 parquet
tables and users x songs matrices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from msd_tasks.formats.parquet import write_parquet
from msd_tasks.formats.split_layout import ID_FILES
from msd_tasks.stages.benchmark_split import BenchmarkSplit, SplitPart

CSV_HEADER = b"uid,sid\n"  # pandas' to_csv(index=False) header; pyarrow would quote the names
PART_SCHEMA = pa.schema([("uid", pa.int32()), ("sid", pa.int32())])


def write_split_csv(split: BenchmarkSplit, folder: Path) -> None:
    """`unique_sid.txt`, `unique_uid.txt` (one id per line) and `<part>.csv` for the five parts
    (header `uid,sid`, then `uid,sid` lines), '\\n' line ends, as the reference writes them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ID_FILES:
        (folder / f"{name}.txt").write_bytes(id_lines(getattr(split, name)))
    for name, part in split.parts().items():
        _write_csv(part, folder / f"{name}.csv")


def id_lines(ids: pa.Array) -> bytes:
    """Each id followed by '\\n': the reference's `f.write('%s\\n' % sid)` (UTF-8)."""
    if len(ids) == 0:
        return b""
    joined = pc.binary_join_element_wise(ids, "", "\n")  # id, separator, empty string
    _, offsets, data = joined.buffers()
    offset_type = np.int64 if pa.types.is_large_string(joined.type) else np.int32
    bounds = np.frombuffer(offsets, offset_type)[joined.offset : joined.offset + len(joined) + 1]
    return memoryview(data)[int(bounds[0]) : int(bounds[-1])].tobytes()


def _write_csv(part: SplitPart, path: Path) -> None:
    """pyarrow formats the integers: 3 s of CPU for the 27M lines of the MSD split where pandas'
    to_csv takes 29 s. Batches of 64K rows cost a quarter less CPU than the default 1024; two
    threads (one file each) gain nothing, as train.csv is 80% of the lines."""
    options = csv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)
    with open(path, "wb") as file:
        file.write(CSV_HEADER)
        csv.write_csv(_table(part), file, options)


def _table(part: SplitPart) -> pa.Table:
    return pa.table([pa.array(part.uid, pa.int32()), pa.array(part.sid, pa.int32())], PART_SCHEMA)


def write_split_parquet(split: BenchmarkSplit, folder: Path) -> None:
    """`unique_sid.parquet` (song_id) and `unique_uid.parquet` (user_id), position = sid / uid;
    per part `<part>.parquet` (uid, sid int32, rows in the reference's order) and `<part>.npz`,
    a float32 CSR matrix of len(unique_uid) x len(unique_sid) (global indexing) with 1 per line:
    RecVAE's `get_data` sums a (user, song) pair's repeated lines, so such a cell holds 2."""
    from msd_tasks.stages.matrices import save_matrix

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, column in ID_FILES.items():
        write_parquet(pa.table({column: getattr(split, name)}), folder / f"{name}.parquet")
    shape = (len(split.unique_uid), len(split.unique_sid))
    for name, part in split.parts().items():
        write_parquet(_table(part), folder / f"{name}.parquet", compress=True)
        with open(folder / f"{name}.npz", "wb") as file:
            save_matrix(part_matrix(part, shape), file)


def part_matrix(part: SplitPart, shape: tuple[int, int]):
    """Users x songs float32 CSR of one part, repeated lines summed (as `get_data` loads them)."""
    import scipy.sparse as sp

    ones = np.ones(len(part), dtype=np.float32)
    return sp.csr_matrix((ones, (part.uid, part.sid)), shape=shape)
