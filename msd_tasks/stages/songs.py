"""Song metadata: decode the MSD text columns, attach Allmusic (MAGD) genres, keep one row per song.

Run by the CleanSongs task; the result is the song catalogue every later stage joins against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from msd_tasks.errors import InputError
from msd_tasks.formats.deliverables import HDF_KEY  # the notebook's key, in the file it reads too
from msd_tasks.stages.arrays import first_positions
from msd_tasks.stages.hdf_frame import read_frame
from msd_tasks.stages.music import FEATURES
from msd_tasks.stages.text import BYTE_LITERAL_COLUMNS, decode_byte_literals

# What the pipeline reads from the metadata file; every other column is carried through as is.
ID_COLUMNS = ("song_id", "track_id")
REQUIRED_COLUMNS = (*ID_COLUMNS, *FEATURES)


def read_msd(path: Path) -> pd.DataFrame:
    """The MSD metadata frame, checked for the key, the columns the pipeline needs and their types.

    Read without unpickling anything the file holds (msd_tasks/hdf_frame.py).
    """
    frame = read_frame(path, HDF_KEY)
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise InputError(
            path,
            f"key '{HDF_KEY}' columns",
            f"columns {', '.join(REQUIRED_COLUMNS)}",
            f"none named {', '.join(missing)}",
        )
    for column in ID_COLUMNS:
        _check_text_ids(path, column, frame[column])
    for column in FEATURES:
        frame[column] = _numeric(path, column, frame[column])
    return frame


def _check_text_ids(path: Path, column: str, values: pd.Series) -> None:
    """Ids are text; a missing or non-text id names its row (counted from 1)."""
    if pd.api.types.infer_dtype(values, skipna=True) == "string" and not values.isna().any():
        return
    row = next(
        (row for row, value in enumerate(values, start=1) if not isinstance(value, str)),
        len(values),
    )
    found = repr(values.iloc[row - 1]) if len(values) else "no rows"
    raise InputError(path, f"key '{HDF_KEY}', column '{column}', row {row}", "an id as text", found)


def _numeric(path: Path, column: str, values: pd.Series) -> pd.Series:
    """An audio feature column as numbers; None, NaN and infinities count as missing later.

    An object column of Python numbers (and None) is converted; anything else names its first
    row that is not a number, counted from 1.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "empty"):
        return pd.to_numeric(values).astype(np.float64)
    row = next(
        (
            row
            for row, value in enumerate(values, start=1)
            if value is not None
            and (isinstance(value, bool) or not isinstance(value, int | float | np.number))
        ),
        1,
    )
    found = repr(values.iloc[row - 1])
    raise InputError(path, f"key '{HDF_KEY}', column '{column}', row {row}", "a number", found)


def read_genres(path: Path) -> pa.Table:
    """`track_id<TAB>genre` lines, no header; a line without exactly one tab is an error."""
    try:
        table = csv.read_csv(
            path,
            read_options=csv.ReadOptions(column_names=["track_id", "genre"]),
            parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=csv.ConvertOptions(
                column_types={"track_id": pa.string(), "genre": pa.string()},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        raise _first_bad_genre_line(path) or InputError(
            path, "a line", "track_id<TAB>genre", str(error)
        ) from None
    return table


def _first_bad_genre_line(path: Path) -> InputError | None:
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as error:
                found = f"byte 0x{line[error.start]:02x}"
                return InputError(path, f"line {number}", "UTF-8 text", found)
            if text.rstrip("\r\n").count("\t") != 1:
                return InputError(path, f"line {number}", "track_id<TAB>genre", repr(text.rstrip()))
    return None


def first_rows(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Positions of the first occurrence of each distinct key, in file order."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    codes = pc.dictionary_encode(keys).indices.to_numpy(zero_copy_only=False)
    return np.sort(first_positions(codes))


def clean_songs(msd: pd.DataFrame, genres: pa.Table) -> pa.Table:
    """One row per song_id (its first row in file order), text decoded, plus a `genre` column.

    The notebook left-joins genres on track_id, then keeps each song's first row; with a track
    listed twice in the genre file that picks the track's first genre line, as here. Labels are
    stripped of surrounding whitespace, and one left empty is a missing genre.
    """
    table = pa.Table.from_pandas(msd, preserve_index=False)
    for column in BYTE_LITERAL_COLUMNS:
        if column in table.column_names:
            index = table.column_names.index(column)
            table = table.set_column(index, column, decode_byte_literals(table.column(column)))
    table = table.take(pa.array(first_rows(table.column("song_id"))))
    genre_rows = first_rows(genres.column("track_id"))
    genre_tracks = genres.column("track_id").take(pa.array(genre_rows))
    genre_labels = pc.utf8_trim_whitespace(genres.column("genre").take(pa.array(genre_rows)))
    # An empty label is a missing genre, not a genre "".
    genre_labels = pc.if_else(pc.equal(genre_labels, ""), None, genre_labels)
    position = pc.index_in(table.column("track_id"), value_set=genre_tracks)
    return table.append_column("genre", genre_labels.take(position))
