"""Parsing of Taste Profile triplet files (`user_id<TAB>song_id<TAB>play_count`, no header).

48M lines become three int32 columns plus two small dictionaries, never 48M Python strings.
Files of the MSD's shape are streamed with fixed-width ids and coded by stages/id_codes.py;
others go through pyarrow's multithreaded CSV reader with dictionary-encoded ids. When pyarrow
rejects a file, a line-by-line scan finds the first bad line to report it precisely.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from msd_tasks.errors import InputError
from msd_tasks.formats.ahead import Ahead
from msd_tasks.formats.raw import RawSource, refuse_compressed
from msd_tasks.stages.matrices import MAX_EXACT_FLOAT32

# Above it a float32 matrix cell can no longer hold the count exactly.
MAX_PLAY_COUNT = MAX_EXACT_FLOAT32
MAX_COUNT_DIGITS = len(str(MAX_PLAY_COUNT))
# What surrounds no id: pyarrow's ascii_trim_whitespace and bytes.strip agree on these.
ASCII_WHITESPACE = " \t\n\v\f\r"
# What describe_bad_line expects of bytes that are not UTF-8: a fault skip mode does not skip.
NOT_UTF8 = "UTF-8 text"
UTF8_BOM = b"\xef\xbb\xbf"
EXPECTED_LINE = "user_id<TAB>song_id<TAB>play_count"
COLUMNS = ["user_id", "song_id", "play_count"]
_ID_TYPE = pa.dictionary(pa.int32(), pa.string())
# pyarrow parses one block per thread. Files of 16 MiB to 2 GiB are cut into 16 blocks, so both
# cores stay busy to the end; larger files get 128 MiB blocks, as every block's dictionaries must
# be unified (fewer, larger blocks: less to unify; RESULTS.md, "Design measurements"), and
# smaller ones 1 MiB blocks.
MIN_BLOCKS = 16
MIN_BLOCK_SIZE, MAX_BLOCK_SIZE = 1 << 20, 128 << 20
# The fast way (`read_fixed_width`) parses blocks of this size, one after another.
STREAM_BLOCK_SIZE = 16 << 20


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


def read_triplets(path: RawSource | Path, on_bad_lines: str = "error") -> Triplets:
    """Read a triplet file (or one in a .gz or .zip archive, as a stream); `on_bad_lines='skip'`
    drops malformed lines and counts them.

    One rule in both modes (`describe_bad_line`): `error` fails on the first malformed line,
    `skip` skips exactly the lines `error` would fail on. Text that is not UTF-8 and a line
    longer than pyarrow's parse block is read in larger blocks.

    Files of the MSD's shape (each id column of one width) are read the fast way
    (`read_fixed_width`); any other file, or one the fast way cannot read exactly, the general
    way: the whole file at once, ids dictionary-encoded by pyarrow's reader.
    """
    path = as_source(path)
    if path.compression is None:
        refuse_compressed(path.path)
    if path.text_bytes() == 0:
        raise InputError(path, "line 1", f"{EXPECTED_LINE} lines", "an empty file")
    skipped = 0

    def skip_row(_row) -> str:
        nonlocal skipped
        skipped += 1
        return "skip"

    skipping = on_bad_lines == "skip"
    fixed = read_fixed_width(path, skip_row if skipping else None)
    if fixed is not None:
        users, songs, counts = fixed
        return _checked(path, users, songs, counts, skipped, skipping)
    skipped = 0
    try:
        table = _read(path, skip_row if skipping else None)
    except pa.ArrowInvalid as error:
        first = first_bad_line(path, fatal_only=skipping)
        if first:
            raise first from None
        # No bad line: a line longer than pyarrow's block. Read again in blocks that hold it.
        skipped = 0
        try:
            table = _read(path, skip_row if skipping else None, 2 * longest_line(path) + 2)
        except pa.ArrowInvalid:
            raise InputError(path, "a line", EXPECTED_LINE, str(error)) from None
    table = table.unify_dictionaries()
    users = table.column("user_id").combine_chunks()
    songs = table.column("song_id").combine_chunks()
    counts = _play_count_values(table.column("play_count"))
    return _checked(path, users, songs, counts, skipped, skipping)


def _checked(
    path: RawSource,
    users: pa.DictionaryArray,
    songs: pa.DictionaryArray,
    counts: np.ndarray,
    skipped: int,
    skipping: bool,
) -> Triplets:
    """The lines as Triplets, after the checks pyarrow's parser does not make: ids without
    surrounding whitespace, play counts of decimal digits in range."""
    if len(counts) == 0 and not skipped:
        raise InputError(path, "line 1", f"{EXPECTED_LINE} lines", "no line with any text")
    bad = (counts < 1) | (counts > MAX_PLAY_COUNT)
    bad |= _bad_id_rows(users) | _bad_id_rows(songs)
    keep = None
    if bad.any():
        if not skipping:
            row = int(np.argmax(bad))
            raise first_bad_line(path) or InputError(
                path, f"data row {row + 1}", EXPECTED_LINE, "a malformed line"
            )
        keep = ~bad
        skipped += int(bad.sum())
    return Triplets(
        user_code=_codes(users, keep),
        song_code=_codes(songs, keep),
        play_count=(counts if keep is None else counts[keep]).astype(np.int32),
        user_ids=users.dictionary,
        song_ids=songs.dictionary,
        skipped_lines=skipped,
    )


def read_fixed_width(source: RawSource, invalid_row_handler=None) -> tuple | None:
    """The fast way for files whose user ids all have one width and song ids another, of at
    least 8 bytes (the MSD's: 40 and 18): (users, songs, counts), or None when the file is not
    such a file or is not read cleanly (the general way then reads it, and names any bad line).

    Arrow's streaming reader parses fixed-width ids 4x faster than it dictionary-encodes them,
    and holds one block at a time, not the file; the ids are coded block by block
    (stages/id_codes.py).
    """
    from msd_tasks.stages.id_codes import FixedWidthCoder, HashCollision

    widths = _id_widths(source)
    if widths is None:
        return None
    coders = [FixedWidthCoder(widths[0], runs=True), FixedWidthCoder(widths[1])]
    codes: tuple[list, list, list] = ([], [], [])
    types = {"user_id": pa.binary(widths[0]), "song_id": pa.binary(widths[1])}
    try:
        with contextlib.ExitStack() as stack:
            stream = (
                source.path if source.compression is None else stack.enter_context(source.open())
            )
            reader = csv.open_csv(
                stream,
                read_options=csv.ReadOptions(column_names=COLUMNS, block_size=STREAM_BLOCK_SIZE),
                parse_options=csv.ParseOptions(
                    delimiter="\t", quote_char=False, invalid_row_handler=invalid_row_handler
                ),
                convert_options=csv.ConvertOptions(
                    column_types={**types, "play_count": pa.string()},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            # Three threads beside the parser's: users, songs, play counts, block by block.
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=2))
            for batch in stack.enter_context(Ahead(reader, 2)):
                users = pool.submit(coders[0].encode, batch.column(0))
                songs = pool.submit(coders[1].encode, batch.column(1))
                # int32 is enough: a count above MAX_PLAY_COUNT only has to stay above it.
                count = _parse_count_chunk(batch.column(2))
                codes[2].append(np.minimum(count, MAX_PLAY_COUNT + 1).astype(np.int32))
                codes[0].append(users.result())
                codes[1].append(songs.result())
        ids = [coder.ids().cast(pa.string()) for coder in coders]  # UTF-8 is checked here
    except (pa.ArrowInvalid, HashCollision):
        return None
    users, songs, counts = (_concatenated(part) for part in codes)
    return (
        pa.DictionaryArray.from_arrays(users, ids[0]),
        pa.DictionaryArray.from_arrays(songs, ids[1]),
        counts,
    )


def _concatenated(parts: list[np.ndarray]) -> np.ndarray:
    """One array of the parts, the list emptied (its memory freed as soon as it can be)."""
    whole = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    parts.clear()
    return whole


def _id_widths(source: RawSource) -> tuple[int, int] | None:
    """The byte widths of the first line's user id and song id, when both are 8 or more."""
    with source.open() as stream:
        line = stream.readline(1 << 16).removeprefix(UTF8_BOM).rstrip(b"\r\n")
    fields = line.split(b"\t")
    if len(fields) != 3 or min(len(fields[0]), len(fields[1])) < 8:
        return None
    return len(fields[0]), len(fields[1])


def as_source(path: RawSource | Path) -> RawSource:
    return path if isinstance(path, RawSource) else RawSource(Path(path))


def _read(source: RawSource, invalid_row_handler=None, block: int | None = None) -> pa.Table:
    """Parse with pyarrow: ids dictionary-encoded, play counts as text (`_play_count_values`)."""
    if source.compression is None:  # pyarrow's own reader
        return _parse(str(source.path), invalid_row_handler, block or block_size(source))
    with source.open() as stream:
        return _parse(stream, invalid_row_handler, block or block_size(source))


def _parse(stream, invalid_row_handler, block: int) -> pa.Table:
    return csv.read_csv(
        stream,
        read_options=csv.ReadOptions(column_names=COLUMNS, block_size=block),
        parse_options=csv.ParseOptions(
            delimiter="\t", quote_char=False, invalid_row_handler=invalid_row_handler
        ),
        convert_options=csv.ConvertOptions(
            column_types={"user_id": _ID_TYPE, "song_id": _ID_TYPE, "play_count": pa.string()},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def block_size(path: RawSource | Path) -> int:
    text_bytes = as_source(path).text_bytes()
    return min(max(text_bytes // MIN_BLOCKS, MIN_BLOCK_SIZE), MAX_BLOCK_SIZE)


def _play_count_values(texts: pa.ChunkedArray) -> np.ndarray:
    """Play counts as int64, 0 where malformed (`_parse_count_chunk`); chunks are converted on
    two threads (pyarrow's kernels release the GIL)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        parsed = list(pool.map(_parse_count_chunk, texts.chunks))
    return np.concatenate(parsed) if parsed else np.zeros(0, np.int64)


def _parse_count_chunk(texts: pa.Array) -> np.ndarray:
    """pyarrow's integer parser takes `0x10` and surrounding spaces, so the text is checked
    here: ASCII digits only, value from 1 to MAX_PLAY_COUNT (leading zeros allowed)."""
    digits = pc.ascii_is_decimal(texts)
    if pc.all(digits).as_py():
        with contextlib.suppress(pa.ArrowInvalid):  # more digits than int64 holds
            return pc.cast(texts, pa.int64()).to_numpy()
    # Leading zeros aside, a count in range has at most 8 digits: longer ones become 0 (bad).
    short = pc.less_equal(pc.utf8_length(pc.utf8_ltrim(texts, "0")), MAX_COUNT_DIGITS)
    usable = pc.and_(digits, short)
    return pc.cast(pc.if_else(usable, texts, "0"), pa.int64()).to_numpy()


def _codes(ids: pa.DictionaryArray, keep: np.ndarray | None) -> np.ndarray:
    codes = ids.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return codes if keep is None else codes[keep]


def _bad_id_rows(ids: pa.DictionaryArray) -> np.ndarray:
    """Rows whose id is empty or has surrounding ASCII whitespace (checked once per id)."""
    values = ids.dictionary
    bad_codes = np.flatnonzero(
        pc.or_(
            pc.equal(pc.binary_length(values), 0),
            pc.not_equal(pc.ascii_trim_whitespace(values), values),
        ).to_numpy(zero_copy_only=False)
    )
    if len(bad_codes) == 0:
        return np.zeros(len(ids), dtype=bool)
    return np.isin(ids.indices.to_numpy(zero_copy_only=False), bad_codes)


def describe_bad_line(line: bytes) -> tuple[str, str] | None:
    """What is wrong with one raw line (without its line break), as (expected, found), or None
    when it is a good or a blank line. The rule of both modes."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        return NOT_UTF8, f"byte 0x{line[error.start]:02x} at column {error.start + 1}"
    if not text:
        return None  # blank lines are ignored, as pyarrow's reader ignores them
    fields = text.split("\t")
    if len(fields) != 3:
        return f"3 tab-separated fields ({EXPECTED_LINE})", f"{len(fields)}: {text!r}"
    for column, (name, value) in enumerate(
        zip(("user_id", "song_id"), fields[:2], strict=True), start=1
    ):
        if not value or value != value.strip(ASCII_WHITESPACE):
            return f"a non-empty {name} without surrounding whitespace in column {column}", repr(
                value
            )
    count = fields[2]
    if not (count.isascii() and count.isdigit()) or not 0 < int(count) <= MAX_PLAY_COUNT:
        return f"a play count of decimal digits from 1 to {MAX_PLAY_COUNT} in column 3", repr(count)
    return None


def raw_lines(path: RawSource | Path) -> Iterator[bytes]:
    """The lines of a file as pyarrow's CSV reader splits them: at \\n, \\r\\n or a lone \\r."""
    with as_source(path).open() as file:
        first = file.readline().removeprefix(UTF8_BOM)  # pyarrow skips a BOM too
        for line in itertools.chain([first], file):  # each up to and including \n
            yield from line.splitlines()


def first_bad_line(path: RawSource | Path, fatal_only: bool = False) -> InputError | None:
    """Scan a file line by line (slow, only after the fast reader failed) for its first bad line.

    With `fatal_only`, only bytes that are not UTF-8 count (skip mode skips the other faults).
    """
    for number, line in enumerate(raw_lines(path), start=1):
        problem = describe_bad_line(line)
        if problem and not (fatal_only and problem[0] != NOT_UTF8):
            return InputError(path, f"line {number}", *problem)
    return None


def longest_line(path: RawSource | Path) -> int:
    return max((len(line) for line in raw_lines(path)), default=0)
