"""The six deliverables in the formats the recommender code reads, plus parquet copies.

`pd.read_hdf(path, key='df')` for user_mapping, song_mapping, song_df and user_df;
`scipy.sparse.load_npz` for train_sparse and test_sparse.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tables

from msd_tasks.stages.music import DIMENSIONS

HDF_KEY = "df"


def mapping_frame(ids: pa.Array, id_column: str) -> pd.DataFrame:
    """`sparse_index, <id_column>`, one row per index in index order (the index equals it too)."""
    return pd.DataFrame(
        {"sparse_index": np.arange(len(ids), dtype=np.int64), id_column: ids.to_pandas()}
    )


def song_table(catalog: pa.Table, song_ids: pa.Array, catalog_rows: np.ndarray) -> pa.Table:
    """One row per song sparse_index: `sparse_index`, `song_id`, then the catalogue's columns.

    The notebook's column order: the mapping's song_id first, the metadata's other columns in
    file order, genre last.
    """
    rows = catalog.take(pa.array(catalog_rows))
    others = [name for name in rows.column_names if name != "song_id"]
    index = pa.array(np.arange(len(song_ids), dtype=np.int32))
    return pa.Table.from_arrays(
        [index, song_ids, *[rows.column(name) for name in others]],
        names=["sparse_index", "song_id", *others],
    )


def song_frame(songs: pa.Table) -> pd.DataFrame:
    frame = songs.to_pandas()
    frame["sparse_index"] = frame["sparse_index"].astype(np.int64)
    return frame.set_index("sparse_index")


def user_frame(user_rows: pa.Table, user_ids: pa.Array) -> pd.DataFrame:
    """The notebook's user_df: `MUSIC` a list of 5 floats, `song_sparse_indices` a list of ints.

    Lists are what its consumers index into. They are built from one shared Python int per song
    index (an object-array `take`), not one object per play: 48M plays would otherwise cost
    about 1.4 GB of int objects.
    """
    music = np.column_stack([user_rows.column(name).to_numpy() for name in DIMENSIONS])
    songs = user_rows.column("song_sparse_indices").combine_chunks()
    offsets = songs.offsets.to_numpy()
    shared_ints = np.array(range(int(pc.max(songs.values).as_py() or 0) + 1), dtype=object)
    song_objects = shared_ints[songs.values.to_numpy()]
    index = pd.Index(
        user_rows.column("sparse_index").to_numpy().astype(np.int64), name="sparse_index"
    )
    with gc_paused():  # 2.2M lists at full size, none of them garbage
        song_lists = [song_objects[a:b].tolist() for a, b in itertools.pairwise(offsets)]
        return pd.DataFrame(
            {
                "user_id": user_ids.to_pandas().to_numpy(),
                "MUSIC": music.tolist(),
                "num_songs": user_rows.column("num_songs").to_numpy().astype(np.int64),
                "is_test": user_rows.column("is_test").to_numpy(zero_copy_only=False),
                "song_sparse_indices": song_lists,
            },
            index=index,
        )


def user_table(user_rows: pa.Table, user_ids: pa.Array) -> pa.Table:
    """The parquet user_df: the shard rows with `user_id` after `sparse_index`."""
    table = user_rows.add_column(1, pa.field("user_id", pa.string(), nullable=False), user_ids)
    return table.replace_schema_metadata(None)  # the shards' writer records are theirs, not ours


def write_hdf(frame: pd.DataFrame, path: Path) -> None:
    """Fixed-format HDF5 under key 'df', as the notebook wrote; list columns are pickled."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="\\s*your performance may suffer")
        frame.to_hdf(path, key=HDF_KEY, mode="w")
    # PyTables ignores the errors of H5Fflush/H5Fclose, which write what HDF5 buffered: on a
    # full disk to_hdf can return normally and leave a cut file. Opening it again checks it
    # (HDF5 compares the file's size with the end of file its superblock records).
    try:
        with tables.open_file(path, mode="r") as written:
            written.get_node(f"/{HDF_KEY}")
    except (tables.HDF5ExtError, tables.NoSuchNodeError) as error:
        raise OSError(f"{path} is incomplete after writing it (disk full?)") from error


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block; the collector's state is restored after.

    The collector runs every few hundred new container objects and, now and then, walks all of
    them: building the 1.1M lists of user_df.h5 is 4x faster without it (benchmarks/RESULTS.md,
    "Design measurements"). Only for blocks that make objects which live on (or die by
    reference counting), not cycles.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
