"""Parsing of Taste Profile triplet files (`user_id<TAB>song_id<TAB>play_count`, no header).

The fast path is pyarrow's multithreaded CSV reader with dictionary-encoded ids, so 48M lines
become three int32 columns plus two small dictionaries and never 48M Python strings. When
pyarrow rejects a file, a line-by-line scan finds the first bad line to report it precisely.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from msd_tasks.errors import InputError

# Above 2**24 a float32 matrix cell can no longer hold the count exactly.
MAX_PLAY_COUNT = 2**24
EXPECTED_LINE = "user_id<TAB>song_id<TAB>play_count"
COLUMNS = ["user_id", "song_id", "play_count"]
_ID_TYPE = pa.dictionary(pa.int32(), pa.string())
# pyarrow parses one block per thread. Files of 16 MiB to 1 GiB are cut into 16 blocks, so both
# cores stay busy to the end; larger files get 64 MiB blocks, as every block's dictionaries must
# be unified, and smaller ones 1 MiB blocks.
MIN_BLOCKS = 16
MIN_BLOCK_SIZE, MAX_BLOCK_SIZE = 1 << 20, 64 << 20


@dataclass(frozen=True)
class Triplets:
    """One triplet file as codes: line i is (user_ids[user_code[i]], song_ids[song_code[i]])."""

    user_code: np.ndarray  # int32
    song_code: np.ndarray  # int32
    play_count: np.ndarray  # int32
    user_ids: pa.Array  # string, distinct
    song_ids: pa.Array  # string, distinct
    skipped_lines: int = 0

    def __len__(self) -> int:
        return len(self.play_count)


def read_triplets(path: Path, on_bad_lines: str = "error") -> Triplets:
    """Read a triplet file; `on_bad_lines='skip'` drops malformed lines and counts them."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise InputError(path, "line 1", f"{EXPECTED_LINE} lines", "an empty file")
    skipped = 0

    def skip_row(_row) -> str:
        nonlocal skipped
        skipped += 1
        return "skip"

    skipping = on_bad_lines == "skip"
    try:
        table = _read(path, skip_row if skipping else None)
    except pa.ArrowInvalid as error:
        found = str(error)
        first = first_bad_line(path, encoding_only=skipping)
        raise first or InputError(path, "a line", EXPECTED_LINE, found) from None
    if table.num_rows == 0:
        raise InputError(path, "line 1", f"{EXPECTED_LINE} lines", "no line with any text")
    users, songs, counts = _columns(table)
    keep = _good_rows(users, songs, counts) if skipping else _check_rows(path, users, songs, counts)
    if keep is not None:
        skipped += int(len(keep) - keep.sum())
    return Triplets(
        user_code=_codes(users, keep),
        song_code=_codes(songs, keep),
        play_count=(counts if keep is None else counts[keep]).astype(np.int32),
        user_ids=users.dictionary,
        song_ids=songs.dictionary,
        skipped_lines=skipped,
    )


def _read(path: Path, invalid_row_handler=None) -> pa.Table:
    """Parse with pyarrow; play counts are read as text only when bad lines are to be skipped."""
    count_type = pa.string() if invalid_row_handler else pa.int32()
    return csv.read_csv(
        path,
        read_options=csv.ReadOptions(column_names=COLUMNS, block_size=block_size(path)),
        parse_options=csv.ParseOptions(
            delimiter="\t", quote_char=False, invalid_row_handler=invalid_row_handler
        ),
        convert_options=csv.ConvertOptions(
            column_types={"user_id": _ID_TYPE, "song_id": _ID_TYPE, "play_count": count_type},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def block_size(path: Path) -> int:
    return min(max(path.stat().st_size // MIN_BLOCKS, MIN_BLOCK_SIZE), MAX_BLOCK_SIZE)


def _columns(table: pa.Table) -> tuple[pa.DictionaryArray, pa.DictionaryArray, np.ndarray]:
    table = table.unify_dictionaries()
    counts = table.column("play_count")
    if counts.type == pa.string():
        # pyarrow's integer parser accepts surrounding spaces in strict mode: so does skip mode.
        counts = pc.utf8_trim_whitespace(counts)
        digits = pc.match_substring_regex(counts, r"^[0-9]{1,9}$")
        counts = pc.cast(pc.if_else(digits, counts, "0"), pa.int64())
    return (
        table.column("user_id").combine_chunks(),
        table.column("song_id").combine_chunks(),
        counts.to_numpy(),
    )


def _codes(ids: pa.DictionaryArray, keep: np.ndarray | None) -> np.ndarray:
    codes = ids.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return codes if keep is None else codes[keep]


def _empty_id_rows(ids: pa.DictionaryArray) -> np.ndarray:
    empty_codes = np.flatnonzero(pc.utf8_length(ids.dictionary).to_numpy() == 0)
    if len(empty_codes) == 0:
        return np.zeros(len(ids), dtype=bool)
    return np.isin(ids.indices.to_numpy(zero_copy_only=False), empty_codes)


def _bad_count_rows(counts: np.ndarray) -> np.ndarray:
    return (counts <= 0) | (counts > MAX_PLAY_COUNT)


def _good_rows(users, songs, counts) -> np.ndarray:
    return ~(_empty_id_rows(users) | _empty_id_rows(songs) | _bad_count_rows(counts))


def _check_rows(path: Path, users, songs, counts) -> None:
    """The checks pyarrow's parser cannot make: empty ids and play counts out of range.

    On a failure the file is scanned once more to name the first bad line (pyarrow skips blank
    lines, so row numbers are not line numbers).
    """
    bad = _empty_id_rows(users) | _empty_id_rows(songs) | _bad_count_rows(counts)
    if bad.any():
        row = int(np.argmax(bad))
        raise first_bad_line(path) or InputError(
            path, f"data row {row + 1}", EXPECTED_LINE, "an empty id or a play count out of range"
        )


def describe_bad_line(line: bytes) -> tuple[str, str] | None:
    """What is wrong with one raw line, as (expected, found), or None when it is a good line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        return "UTF-8 text", f"byte 0x{line[error.start]:02x} at column {error.start + 1}"
    if not text.strip("\r\n"):
        return None  # blank lines are ignored, as pyarrow's reader ignores them
    fields = text.rstrip("\r\n").split("\t")
    if len(fields) != 3:
        return f"3 tab-separated fields ({EXPECTED_LINE})", f"{len(fields)}: {text.rstrip()!r}"
    user_id, song_id, count = fields
    count = count.strip()
    if not user_id:
        return "a non-empty user_id in column 1", "''"
    if not song_id:
        return "a non-empty song_id in column 2", "''"
    if not (count.isascii() and count.isdigit()) or not 0 < int(count) <= MAX_PLAY_COUNT:
        return f"an integer play count from 1 to {MAX_PLAY_COUNT} in column 3", repr(count)
    return None


def first_bad_line(path: Path, encoding_only: bool = False) -> InputError | None:
    """Scan a file line by line (slow, only after the fast reader failed) for its first bad line.

    With `encoding_only`, only bytes that are not UTF-8 count (the other faults can be skipped).
    """
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            problem = describe_bad_line(line)
            if problem and not (encoding_only and problem[0] != "UTF-8 text"):
                return InputError(path, f"line {number}", *problem)
    return None
