"""One rule for a malformed triplet line, in both modes: a property test over random mutations.

Lines of a good file are mutated at random (spaces, signs, hex prefixes, exponents, digits of
other scripts, lone carriage returns, tabs, empty fields, huge counts). For every file, an
oracle written here from the README's rule says which lines are malformed; `skip` must keep
exactly the others and count these, and `error` must fail on the first of them, by number.
"""

from __future__ import annotations

import random
import re

import pytest

from msd_tasks.errors import InputError
from msd_tasks.stages.triplets import MAX_PLAY_COUNT, read_triplets
from tests.test_triplets import lines_of

WHITESPACE = " \t\n\v\f\r"  # ASCII whitespace: none may surround an id
MUTATIONS = [
    " ",
    "  ",
    "\v",
    "\f",
    "+",
    "-",
    "0x",
    "0X",
    "e3",
    ".5",
    ",",
    "0",
    "00",
    "\t",
    "\r",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: a digit, not an ASCII one
    "\u00a0",  # NO-BREAK SPACE: not ASCII whitespace, so allowed around an id
    "x",
    "\u00e9",
]


def oracle(text: str) -> list[tuple[int, tuple[str, str, int] | None]]:
    """(line number, parsed triplet or None when malformed) for each non-blank line."""
    result = []
    for number, raw_line in enumerate(text.encode().splitlines(), start=1):
        line = raw_line.decode()
        if not line:
            continue
        fields = line.split("\t")
        parsed = None
        if len(fields) == 3:
            user, song, count = fields
            ids_ok = all(value and value == value.strip(WHITESPACE) for value in (user, song))
            if ids_ok and re.fullmatch(r"[0-9]+", count) and 1 <= int(count) <= MAX_PLAY_COUNT:
                parsed = (user, song, int(count))
        result.append((number, parsed))
    return result


def mutate(line: str, rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.15:
        user, song, _ = line.split("\t")
        count = rng.choice(["0", str(MAX_PLAY_COUNT), str(MAX_PLAY_COUNT + 1), "9" * 25, ""])
        return f"{user}\t{song}\t{count}"
    if choice < 0.25:
        position = rng.randrange(len(line))
        return line[:position] + line[position + 1 :]
    position = rng.randrange(len(line) + 1)
    return line[:position] + rng.choice(MUTATIONS) + line[position:]


# Ids as in the tests' hand-made files, and of the MSD's widths (40 and 18 bytes), which the
# fast way reads (read_fixed_width) as long as a mutation does not change a width.
IDS = {
    "short": lambda user, song: (f"u{user}", f"SO{song}"),
    "msd": lambda user, song: (f"{user:040x}", f"SO{song:016X}"),
}


def random_file(rng: random.Random, ids) -> str:
    lines = []
    for _ in range(rng.randrange(1, 25)):
        user, song = ids(rng.randrange(5), rng.randrange(7))
        line = f"{user}\t{song}\t{rng.randrange(1, 40)}"
        if rng.random() < 0.3:
            line = mutate(line, rng)
        lines.append(line)
    return "\n".join(lines) + rng.choice(["\n", "", "\r\n"])


@pytest.mark.parametrize("ids", sorted(IDS))
@pytest.mark.parametrize("seed", range(20))
def test_both_modes_follow_one_rule_line_by_line(seed, ids, tmp_path):
    rng = random.Random(seed)
    path = tmp_path / "triplets.txt"
    checked_bad = 0
    for _ in range(30):
        text = random_file(rng, IDS[ids])
        path.write_bytes(text.encode())
        expected = oracle(text)
        good = [parsed for _, parsed in expected if parsed is not None]
        bad = [number for number, parsed in expected if parsed is None]
        if not expected:
            continue  # only blank lines: both modes refuse the file (tested elsewhere)
        skipped = read_triplets(path, on_bad_lines="skip")
        assert lines_of(skipped) == good, text
        assert skipped.skipped_lines == len(bad), text
        if bad:
            checked_bad += 1
            with pytest.raises(InputError, match=rf": line {bad[0]}: expected"):
                read_triplets(path)
        else:
            assert lines_of(read_triplets(path)) == good, text
    assert checked_bad > 5  # the mutations do reach the rule
