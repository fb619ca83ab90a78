"""Triplet parsing: codes that round-trip to the text, and precise errors for every bad line."""

from __future__ import annotations

import numpy as np
import pytest

from msd_tasks.errors import InputError
from msd_tasks.stages.triplets import (
    MAX_BLOCK_SIZE,
    MAX_PLAY_COUNT,
    MIN_BLOCK_SIZE,
    MIN_BLOCKS,
    block_size,
    read_triplets,
)

GOOD = "u1\tSOA\t3\nu2\tSOB\t1\nu1\tSOB\t7\nu1\tSOA\t2\n"


def lines_of(triplets):
    users, songs = triplets.user_ids.to_pylist(), triplets.song_ids.to_pylist()
    return [
        (users[u], songs[s], int(c))
        for u, s, c in zip(triplets.user_code, triplets.song_code, triplets.play_count, strict=True)
    ]


def write(tmp_path, text: str | bytes):
    path = tmp_path / "triplets.txt"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_codes_round_trip_to_the_lines(tmp_path):
    triplets = read_triplets(write(tmp_path, GOOD))
    assert lines_of(triplets) == [
        ("u1", "SOA", 3),
        ("u2", "SOB", 1),
        ("u1", "SOB", 7),
        ("u1", "SOA", 2),
    ]
    assert triplets.user_code.dtype.name == "int32"
    assert triplets.skipped_lines == 0


def test_crlf_line_endings_are_read(tmp_path):
    triplets = read_triplets(write(tmp_path, GOOD.replace("\n", "\r\n")))
    assert lines_of(triplets)[0] == ("u1", "SOA", 3)


@pytest.mark.parametrize(
    ("text", "where", "expected_words"),
    [
        ("u1\tSOA\t3\nu2\tSOB\n", "line 2", "3 tab-separated fields"),
        ("u1\tSOA\t3\nu2\tSOB\t1\textra\n", "line 2", "3 tab-separated fields"),
        ("u1\tSOA\t3\nu2\tSOB\tmany\n", "line 2", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t1.5\n", "line 2", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t0\n", "line 2", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t-4\n", "line 2", "play count of decimal digits"),
        (f"u1\tSOA\t{MAX_PLAY_COUNT + 1}\n", "line 1", "play count of decimal digits"),
        ("u1\tSOA\t3\n\tSOB\t1\n", "line 2", "non-empty user_id"),
        ("u1\tSOA\t3\nu2\t\t1\n", "line 2", "non-empty song_id"),
        ("user_id\tsong_id\tplay_count\nu1\tSOA\t3\n", "line 1", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t0x10\n", "line 2", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t 5\n", "line 2", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t5 \n", "line 2", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t+5\n", "line 2", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t1e3\n", "line 2", "play count of decimal digits"),
        ("u1\tSOA\t3\nu2\tSOB\t99999999999999999999999\n", "line 2", "play count of decimal"),
        ("u1\tSOA \t3\n", "line 1", "song_id without surrounding whitespace"),
        (" u1\tSOA\t3\n", "line 1", "user_id without surrounding whitespace"),
        ("", "line 1", "empty file"),
    ],
)
def test_bad_lines_are_named(tmp_path, text, where, expected_words):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as error:
        read_triplets(path)
    assert str(path) in str(error.value)
    assert where in str(error.value)
    assert expected_words in str(error.value)


def test_non_utf8_names_line_and_byte(tmp_path):
    path = write(tmp_path, b"u1\tSOA\t3\nu\xff2\tSOB\t1\n")
    with pytest.raises(InputError, match=r"line 2: expected UTF-8 text, found byte 0xff"):
        read_triplets(path)


def test_skip_mode_drops_and_counts_bad_lines(tmp_path):
    text = "u1\tSOA\t3\nu2\tSOB\nu3\tSOC\tx\nu4\tSOD\t0\n\tSOE\t1\nu5\tSOF\t2\n"
    triplets = read_triplets(write(tmp_path, text), on_bad_lines="skip")
    assert lines_of(triplets) == [("u1", "SOA", 3), ("u5", "SOF", 2)]
    assert triplets.skipped_lines == 4


def test_a_file_of_blank_lines_is_empty(tmp_path):
    with pytest.raises(InputError, match="no line with any text"):
        read_triplets(write(tmp_path, "\n\n\n"))


def test_blank_lines_do_not_shift_the_line_named(tmp_path):
    path = write(tmp_path, "u1\tSOA\t1\n\nu2\tSOB\t0\n")
    with pytest.raises(InputError, match=r"line 3: expected a play count of decimal digits"):
        read_triplets(path)


def test_spaces_around_a_count_are_malformed_in_both_modes(tmp_path):
    path = write(tmp_path, "u1\tSOA\t 5\nu2\tSOB\t7 \nu3\tSOC\t0000000002\n")
    with pytest.raises(InputError, match=r"line 1: expected a play count"):
        read_triplets(path)
    skipping = read_triplets(path, on_bad_lines="skip")
    assert lines_of(skipping) == [("u3", "SOC", 2)]  # leading zeros are decimal digits
    assert skipping.skipped_lines == 2


def test_a_line_longer_than_the_parse_block_is_accepted(tmp_path):
    # pyarrow takes a line somewhat longer than its block; one three blocks long it cannot.
    good = "u1\tSOA\t3\n" * 200_000
    long_id = "u" * (3 * MIN_BLOCK_SIZE)
    path = write(tmp_path, f"{good}{long_id}\tSOB\t1\n{good}u2\tSOC\t0x1\n")
    with pytest.raises(InputError, match=r"line 400002: expected a play count"):
        read_triplets(path)
    skipping = read_triplets(path, on_bad_lines="skip")
    assert len(skipping) == 400_001 and skipping.skipped_lines == 1
    assert lines_of(skipping)[200_000] == (long_id, "SOB", 1)


def test_a_byte_order_mark_is_not_part_of_the_first_id(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfu1\tSOA\t3\nu2\tSOB\t0\n")
    with pytest.raises(InputError, match=r"line 2: expected a play count"):
        read_triplets(path)
    assert lines_of(read_triplets(path, on_bad_lines="skip")) == [("u1", "SOA", 3)]


def test_a_lone_carriage_return_ends_a_line_as_in_pyarrow(tmp_path):
    path = write(tmp_path, "u1\tSOA\t3\ru2\tSOB\t1\r\nu3\tSOC\tx\n")
    assert lines_of(read_triplets(path, on_bad_lines="skip")) == [
        ("u1", "SOA", 3),
        ("u2", "SOB", 1),
    ]
    with pytest.raises(InputError, match=r"line 3: expected a play count"):
        read_triplets(path)


def test_skip_mode_names_the_undecodable_line_not_a_skippable_one(tmp_path):
    path = write(tmp_path, b"u1\tSOA\t3\nu2\tSOB\nu3\xff\tSOC\t1\n")
    with pytest.raises(InputError, match=r"line 3: expected UTF-8 text"):
        read_triplets(path, on_bad_lines="skip")


def test_block_size_follows_the_file_size(tmp_path):
    small, medium = write(tmp_path, GOOD), tmp_path / "medium.txt"
    medium.write_bytes(b"x" * (40 << 20))
    assert block_size(small) == 1 << 20  # the floor
    assert block_size(medium) == (40 << 20) // MIN_BLOCKS  # enough blocks for every core
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as file:  # sparse: the size without the bytes
        file.truncate(MIN_BLOCKS * MAX_BLOCK_SIZE * 2)
    assert block_size(huge) == MAX_BLOCK_SIZE


def test_a_file_of_many_blocks_reads_like_its_lines(tmp_path):
    """Ids recur across pyarrow's blocks, whose dictionaries are unified into one numbering."""
    rng = np.random.default_rng(5)
    n = 250_000  # about 6 MB: several 1 MB blocks
    users = [f"user{u:06d}" for u in rng.integers(0, 3_000, n)]
    songs = [f"SO{s:016d}" for s in rng.integers(0, 900, n)]
    counts = rng.integers(1, 50, n)
    text = "".join(f"{u}\t{s}\t{c}\n" for u, s, c in zip(users, songs, counts, strict=True))
    path = write(tmp_path, text)
    assert path.stat().st_size // block_size(path) >= 4

    triplets = read_triplets(path)

    assert lines_of(triplets) == list(zip(users, songs, counts.tolist(), strict=True))
    assert len(triplets.user_ids) == len(set(users)) and len(triplets.song_ids) == len(set(songs))


def test_skip_mode_over_many_blocks_drops_exactly_the_bad_lines(tmp_path):
    """pyarrow calls the bad-line handler from its parsing threads, one block each."""
    rng = np.random.default_rng(8)
    good = [
        (f"user{u:05d}", f"SO{s:016d}", int(c))
        for u, s, c in zip(
            rng.integers(0, 2_000, 200_000),
            rng.integers(0, 700, 200_000),
            rng.integers(1, 40, 200_000),
            strict=True,
        )
    ]
    lines = [f"{u}\t{s}\t{c}\n" for u, s, c in good]
    bad = {
        int(i): line
        for i, line in zip(
            rng.choice(len(lines), 300, replace=False),
            ["only\ttwo\n", "a\tb\tc\td\n", "u\tSOX\tmany\n", "u\tSOX\t0\n", "\tSOX\t3\n"] * 60,
            strict=True,
        )
    }
    text = "".join(bad.get(i, "") + line for i, line in enumerate(lines))
    path = write(tmp_path, text)
    assert path.stat().st_size // block_size(path) >= 4

    triplets = read_triplets(path, on_bad_lines="skip")

    assert triplets.skipped_lines == len(bad)
    assert lines_of(triplets) == good


def test_skip_mode_fails_on_bytes_that_are_not_utf8_whatever_the_fields(tmp_path):
    path = write(tmp_path, b"u1\tSO1\t3\nu\xff\tSO1\nu2\tSO2\t4\n")
    with pytest.raises(InputError, match=r"line 2: expected UTF-8 text, found byte 0xff"):
        read_triplets(path, on_bad_lines="skip")
