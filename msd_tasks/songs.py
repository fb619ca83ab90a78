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
from msd_tasks.music import FEATURES
from msd_tasks.text import BYTE_LITERAL_COLUMNS, decode_byte_literals

HDF_KEY = "df"
# What the pipeline reads from the metadata file; every other column is carried through as is.
REQUIRED_COLUMNS = ("song_id", "track_id", *FEATURES)


def read_msd(path: Path) -> pd.DataFrame:
    """The MSD metadata frame, checked for the key and the columns the pipeline needs."""
    with pd.HDFStore(path, mode="r") as store:
        keys = [key.lstrip("/") for key in store.keys()]  # noqa: SIM118
        if HDF_KEY not in keys:
            raise InputError(path, "HDF5 keys", f"a frame under key '{HDF_KEY}'", f"keys {keys}")
        # select() reads fixed-format object columns with C pickle; store[key] uses a slow shim.
        frame = store.select(HDF_KEY)
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise InputError(
            path,
            f"key '{HDF_KEY}' columns",
            f"columns {', '.join(REQUIRED_COLUMNS)}",
            f"none named {', '.join(missing)}",
        )
    return frame


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
    _, first = np.unique(codes, return_index=True)
    return np.sort(first)


def clean_songs(msd: pd.DataFrame, genres: pa.Table) -> pa.Table:
    """One row per song_id (its first row in file order), text decoded, plus a `genre` column.

    The notebook left-joins genres on track_id, then keeps each song's first row; with a track
    listed twice in the genre file that picks the track's first genre line, as here.
    """
    table = pa.Table.from_pandas(msd, preserve_index=False)
    for column in BYTE_LITERAL_COLUMNS:
        if column in table.column_names:
            index = table.column_names.index(column)
            table = table.set_column(index, column, decode_byte_literals(table.column(column)))
    song_ids = table.column("song_id")
    if song_ids.null_count:
        row = int(np.flatnonzero(pc.is_null(song_ids).to_numpy(zero_copy_only=False))[0])
        raise InputError("song metadata", f"row {row}, column song_id", "a song id", "nothing")
    table = table.take(pa.array(first_rows(song_ids)))
    genre_rows = first_rows(genres.column("track_id"))
    genre_tracks = genres.column("track_id").take(pa.array(genre_rows))
    genre_labels = pc.utf8_trim_whitespace(genres.column("genre").take(pa.array(genre_rows)))
    position = pc.index_in(table.column("track_id"), value_set=genre_tracks)
    return table.append_column("genre", genre_labels.take(position))
