"""The six deliverables in the formats the recommender code reads, plus parquet copies.

`pd.read_hdf(path, key='df')` for user_mapping, song_mapping, song_df and user_df;
`scipy.sparse.load_npz` for train_sparse and test_sparse.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import tables

from msd_tasks.formats.hdf_times import clear_modification_times
from msd_tasks.formats.list_pickle import list_columns_pickle, portable_pickle
from msd_tasks.stages.long_plays import SPLITS, LongPlays
from msd_tasks.stages.music import DIMENSIONS

HDF_KEY = "df"
LIST_COLUMNS = ("MUSIC", "song_sparse_indices")  # user_df's columns of lists


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


def write_user_hdf(user_rows: pa.Table, user_ids: pa.Array, path: Path) -> None:
    """user_df.h5: the notebook's user_df, `MUSIC` a list of 5 floats and `song_sparse_indices`
    a list of ints per user, the lists consumers index into.

    pandas writes the frame with those two columns empty (None); their block, which pandas
    stores as one pickle of the (users, 2) object array, is then replaced by that same pickle
    encoded from the arrays (msd_tasks/formats/list_pickle.py): no Python list is built.
    """
    index = pd.Index(
        user_rows.column("sparse_index").to_numpy().astype(np.int64), name="sparse_index"
    )
    frame = pd.DataFrame(
        {
            "user_id": user_ids.to_pandas().to_numpy(),
            LIST_COLUMNS[0]: np.full(len(index), None, dtype=object),
            "num_songs": user_rows.column("num_songs").to_numpy().astype(np.int64),
            "is_test": user_rows.column("is_test").to_numpy(zero_copy_only=False),
            LIST_COLUMNS[1]: np.full(len(index), None, dtype=object),
        },
        index=index,
    )
    _to_hdf(frame, path)
    music = np.column_stack([user_rows.column(name).to_numpy() for name in DIMENSIONS])
    songs = user_rows.column(LIST_COLUMNS[1]).combine_chunks()
    pickled = list_columns_pickle(music, songs.offsets.to_numpy(), songs.values.to_numpy())
    with tables.open_file(path, mode="a") as h5:
        _replace_object_block(h5.get_node(f"/{HDF_KEY}"), pickled)
    clear_modification_times(path)
    _check_written(path)


class _PickledBytes(tables.ObjectAtom):
    """An object atom whose value is given already pickled."""

    def _tobuffer(self, object_: bytes) -> bytes:
        return object_


def _replace_object_block(group: tables.Group, pickled: bytes) -> None:
    """Put `pickled` in place of the values of the frame's block of the LIST_COLUMNS."""
    for block in range(int(group._v_attrs.nblocks)):
        items = [item.decode() for item in group[f"block{block}_items"].read()]
        if items == list(LIST_COLUMNS):
            break
    else:
        raise RuntimeError(f"{group._v_file.filename}: no block holds {LIST_COLUMNS}")
    old = group[f"block{block}_values"]
    attributes = {name: old._v_attrs[name] for name in old._v_attrs._f_list("user")}
    filters = old.filters
    old._f_remove()
    values = group._v_file.create_vlarray(
        group, f"block{block}_values", atom=_PickledBytes(), filters=filters
    )
    values.append(pickled)
    for name, value in attributes.items():
        values._v_attrs[name] = value


def user_table(user_rows: pa.Table, user_ids: pa.Array) -> pa.Table:
    """The parquet user_df: the shard rows with `user_id` after `sparse_index`."""
    table = user_rows.add_column(1, pa.field("user_id", pa.string(), nullable=False), user_ids)
    return table.replace_schema_metadata(None)  # the shards' writer records are theirs, not ours


def write_hdf(frame: pd.DataFrame, path: Path) -> None:
    """Fixed-format HDF5 under key 'df', as the notebook wrote, without write times."""
    _to_hdf(frame, path)
    clear_modification_times(path)
    _check_written(path)


def _to_hdf(frame: pd.DataFrame, path: Path) -> None:
    with warnings.catch_warnings(), _portable_object_pickles():
        warnings.filterwarnings("ignore", message="\\s*your performance may suffer")
        frame.to_hdf(path, key=HDF_KEY, mode="w")


@contextmanager
def _portable_object_pickles() -> Iterator[None]:
    """While pandas writes, PyTables pickles each object block as `portable_pickle` does
    (protocol 4, `numpy.core.multiarray`) instead of with pickle.HIGHEST_PROTOCOL and numpy 2's
    `numpy._core`, which readers on Python < 3.8 or numpy < 1.26.1 cannot load. PyTables has no
    option for it: its ObjectAtom pickles in `_tobuffer`, the hook _PickledBytes overrides too."""
    original = tables.ObjectAtom._tobuffer
    tables.ObjectAtom._tobuffer = lambda _atom, object_: portable_pickle(object_)
    try:
        yield
    finally:
        tables.ObjectAtom._tobuffer = original


def _check_written(path: Path) -> None:
    # PyTables ignores the errors of H5Fflush/H5Fclose, which write what HDF5 buffered: on a
    # full disk to_hdf can return normally and leave a cut file. Opening it again checks it
    # (HDF5 compares the file's size with the end of file its superblock records).
    try:
        with tables.open_file(path, mode="r") as written:
            written.get_node(f"/{HDF_KEY}")
    except (tables.HDF5ExtError, tables.NoSuchNodeError) as error:
        raise OSError(f"{path} is incomplete after writing it (disk full?)") from error


# plays.parquet: one row per surviving play, sorted by user, song, split, play count. Each
# column's description is in its field metadata, and the table's in the file's metadata.
PLAYS_COLUMNS = {
    "user_index": (pa.int32(), "the user's sparse_index: a column of the matrices"),
    "song_index": (pa.int32(), "the song's sparse_index: a row of the matrices"),
    "play_count": (pa.int32(), "the line's play count"),
    "split": (
        pa.dictionary(pa.int8(), pa.string()),
        "train (train_triplets.txt) and visible (the visible test file) sum to "
        "train_sparse.npz; hidden (the hidden test file) sums to test_sparse.npz",
    ),
}
PLAYS_DESCRIPTION = (
    "One row per play that survives the join, a line of a triplet file; rows sorted by "
    "user_index, song_index, split, play_count. Summed by (song_index, user_index) they give "
    "the play matrices."
)


def plays_table(plays: LongPlays) -> pa.Table:
    split = pa.DictionaryArray.from_arrays(pa.array(plays.split), pa.array(list(SPLITS)))
    schema = pa.schema(
        [
            pa.field(name, kind, nullable=False, metadata={"description": description})
            for name, (kind, description) in PLAYS_COLUMNS.items()
        ],
        metadata={"description": PLAYS_DESCRIPTION},
    )
    columns = [plays.user_index, plays.song_index, plays.play_count, split]
    return pa.Table.from_arrays(columns, schema=schema)
