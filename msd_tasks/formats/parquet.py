"""Parquet files of the checkpoints: written cast to a schema, read memory-mapped."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet(
    table: pa.Table,
    path: Path,
    schema: pa.Schema | None = None,
    *,
    compress: bool = False,
    **metadata,
) -> None:
    """Write `table` cast to `schema`, with string `metadata` in the file's key-value metadata.

    `compress` (LZ4) is for the play tables: sorted by user, they shrink 2.7x. Ids, MUSIC floats
    and song metadata shrink by 2% to 30%, for more time than the smaller file saves.
    """
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    if metadata:
        extra = {key: json.dumps(value) for key, value in metadata.items()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
    # Dictionary pages pay off for repeated text, not for tens of millions of int codes
    # (benchmarks/RESULTS.md, "Design measurements").
    text_columns = [
        field.name
        for field in table.schema
        if pa.types.is_string(field.type) or pa.types.is_dictionary(field.type)
    ]
    pq.write_table(
        table,
        path,
        compression="lz4" if compress else "none",
        use_dictionary=text_columns,
        write_statistics=False,
    )


def run_concurrently(calls: list[Callable[[], object]], threads: int = 2) -> None:
    """Run `calls` on a few threads: pyarrow encodes and writes files without holding the GIL.

    At most `threads` calls run at once. After a failure (or an interrupt) the calls not yet
    started are skipped and the running ones finish; then the first error is raised, with the
    others in its notes.
    """
    failed = threading.Event()

    def unless_failed(call: Callable[[], object]) -> None:
        if failed.is_set():
            return
        try:
            call()
        except BaseException:
            failed.set()
            raise

    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        futures = [pool.submit(unless_failed, call) for call in calls]
        wait(futures)
    except BaseException:
        failed.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    if errors:
        for other in errors[1:]:
            errors[0].add_note(f"another write failed too: {other!r}")
        raise errors[0]


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns, memory_map=True)


def column_array(table: pa.Table, name: str) -> np.ndarray:
    """A column as one numpy array; much faster than ChunkedArray.to_numpy over many chunks."""
    chunks = table.column(name).chunks
    if not chunks:
        return table.column(name).to_numpy()
    return np.concatenate([chunk.to_numpy(zero_copy_only=False) for chunk in chunks])


def parquet_metadata(path: Path) -> dict[str, object]:
    """The key-value metadata written by `write_parquet`, decoded."""
    raw = pq.read_schema(path).metadata or {}
    decoded = {}
    for key, value in raw.items():
        with contextlib.suppress(ValueError):
            decoded[key.decode()] = json.loads(value)
    return decoded
