"""The fixed-width id coder, and the fast way of reading triplet files that uses it: codes that
give back every id, across chunks and table growth; collisions caught, not coded; and files the
fast way cannot read exactly handed to the general way."""

from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pytest

from msd_tasks.errors import InputError
from msd_tasks.formats.raw import RawSource
from msd_tasks.stages import id_codes
from msd_tasks.stages.id_codes import _INITIAL_SLOTS, PARTS, FixedWidthCoder, HashCollision
from msd_tasks.stages.triplets import read_fixed_width, read_triplets
from tests.test_triplets import lines_of, write


def fixed(ids: list[str], width: int) -> pa.Array:
    return pa.array([value.encode() for value in ids], pa.binary(width))


def code_all(coder: FixedWidthCoder, chunks: list[list[str]], width: int) -> list[np.ndarray]:
    return [coder.encode(fixed(chunk, width)) for chunk in chunks]


def decoded(coder: FixedWidthCoder, codes: list[np.ndarray]) -> list[str]:
    ids = coder.ids().cast(pa.string())
    return ids.take(pa.array(np.concatenate(codes))).to_pylist()


@pytest.mark.parametrize(("width", "runs"), [(18, False), (40, True), (8, False), (23, True)])
def test_codes_give_back_every_id_across_chunks_and_growth(width, runs):
    rng = np.random.default_rng(width)
    # More distinct ids than the first table holds, recurring across chunks; with runs, each
    # id in runs of several lines, and the same id again in a later run.
    distinct = [f"{value:0{width}d}" for value in rng.choice(10**8, PARTS * 1024, False)]
    picks = rng.integers(0, len(distinct), 200_000)
    if runs:
        picks = np.repeat(picks, rng.integers(1, 3, len(picks)))
    ids = [distinct[i] for i in picks]
    chunks = [ids[start : start + 40_000] for start in range(0, len(ids), 40_000)]

    coder = FixedWidthCoder(width, runs=runs)
    codes = code_all(coder, chunks, width)

    assert len(coder.slot_codes) > PARTS * _INITIAL_SLOTS  # the table grew on the way
    assert decoded(coder, codes) == ids
    assert coder.n_ids == len(set(ids)) == len(coder.ids())  # one code per distinct id
    assert all(part.dtype == np.int32 for part in codes)
    again = FixedWidthCoder(width, runs=runs)  # deterministic: the same codes again
    assert all(
        np.array_equal(a, b) for a, b in zip(codes, code_all(again, chunks, width), strict=True)
    )


def test_ids_that_differ_in_any_byte_get_their_own_codes():
    # 18 bytes: two words and an overlapping last one; each id differs from the base in one byte.
    base = "SOAAAAAAAAAAAAAAAA"
    ids = [base] + [base[:i] + "B" + base[i + 1 :] for i in range(18)]
    coder = FixedWidthCoder(18)
    codes = coder.encode(fixed(ids, 18))
    assert len(set(codes.tolist())) == 19
    assert decoded(coder, [codes]) == ids


def test_runs_code_a_repeated_id_like_any_other():
    coder = FixedWidthCoder(8, runs=True)
    codes = coder.encode(fixed(["aaaaaaaa", "aaaaaaaa", "bbbbbbbb", "aaaaaaaa", "bbbbbbbb"], 8))
    assert codes.tolist() == [codes[0]] * 2 + [codes[2], codes[0], codes[2]]
    assert codes[0] != codes[2]


def test_two_ids_with_one_hash_are_a_collision_not_one_code():
    coder = FixedWidthCoder(18, hash_bits=1)  # two hash values: three ids must share one
    with pytest.raises(HashCollision):
        coder.encode(fixed(["SO" + str(i) * 16 for i in range(3)], 18))


def test_ids_narrower_than_a_word_are_refused():
    with pytest.raises(ValueError, match="8 or more"):
        FixedWidthCoder(7)


# The fast way of reading triplet files (read_fixed_width) against the general way.


def msd_lines(rng: np.random.Generator, n: int) -> list[tuple[str, str, int]]:
    users = [f"{u:040x}" for u in rng.integers(0, 2**62, 300)]
    songs = [f"SO{s:016X}" for s in rng.integers(0, 2**62, 900)]
    user_of_line = np.repeat(rng.integers(0, 300, n // 5), 5)  # users in runs, as in the file
    return [
        (users[u], songs[s], int(c))
        for u, s, c in zip(
            user_of_line, rng.integers(0, 900, n), rng.integers(1, 500, n), strict=True
        )
    ]


def text_of(lines) -> str:
    return "".join(f"{u}\t{s}\t{c}\n" for u, s, c in lines)


def test_msd_shaped_files_are_read_the_fast_way_line_for_line(tmp_path):
    lines = msd_lines(np.random.default_rng(1), 400_000)  # 26 MB: two stream blocks
    path = write(tmp_path, "\ufeff" + text_of(lines).replace("\n", "\r\n"))

    assert read_fixed_width(RawSource(path)) is not None  # the fast way takes it
    triplets = read_triplets(path)

    assert lines_of(triplets) == lines
    assert len(triplets.user_ids) == len({u for u, _, _ in lines})
    assert len(triplets.song_ids) == len({s for _, s, _ in lines})


def test_the_fast_way_skips_exactly_the_bad_lines_of_the_right_widths(tmp_path):
    lines = msd_lines(np.random.default_rng(2), 50_000)
    user, song = lines[0][0], lines[0][1]
    bad = [
        f"{user}\t{song}\t0",
        f"{user}\t{song}\t0x10",
        f"{user}\t{song}",
        f"{user}\t{song}\t1\t2",
    ]
    text = "".join(
        f"{u}\t{s}\t{c}\n" + (bad[i // 1000 % 4] + "\n" if i % 1000 == 7 else "")
        for i, (u, s, c) in enumerate(lines)
    )
    path = write(tmp_path, text)
    assert read_fixed_width(RawSource(path), lambda row: "skip") is not None

    triplets = read_triplets(path, on_bad_lines="skip")

    assert lines_of(triplets) == lines
    assert triplets.skipped_lines == 50
    with pytest.raises(InputError, match=r"line 9: expected a play count"):
        read_triplets(path)


@pytest.mark.parametrize(
    "odd_line",
    [
        "{user}x\t{song}\t3",  # a wider user id
        "{user}\tSO1\t3",  # a narrower song id
        "{user}\t{song_not_utf8}\t3",  # bytes that are not UTF-8
    ],
)
def test_files_the_fast_way_cannot_read_go_the_general_way(tmp_path, odd_line):
    lines = msd_lines(np.random.default_rng(3), 5_000)
    user, song = lines[0][0], lines[0][1]
    line = odd_line.format(user=user, song=song, song_not_utf8="SO\udcff" + song[3:])
    text = text_of(lines[:4000]) + line + "\n" + text_of(lines[4000:])
    path = write(tmp_path, text.encode("utf-8", "surrogateescape"))

    assert read_fixed_width(RawSource(path)) is None
    if "not_utf8" in odd_line:
        with pytest.raises(InputError, match=r"line 4001: expected UTF-8 text, found byte 0xff"):
            read_triplets(path)
    else:
        parsed = line.split("\t")
        assert lines_of(read_triplets(path)) == [
            *lines[:4000],
            (parsed[0], parsed[1], 3),
            *lines[4000:],
        ]


def test_a_hash_collision_hands_the_file_to_the_general_way(tmp_path, monkeypatch):
    lines = msd_lines(np.random.default_rng(4), 10_000)
    path = write(tmp_path, text_of(lines))
    monkeypatch.setattr(id_codes, "FixedWidthCoder", partial(FixedWidthCoder, hash_bits=1))

    assert read_fixed_width(RawSource(path)) is None
    assert lines_of(read_triplets(path)) == lines
