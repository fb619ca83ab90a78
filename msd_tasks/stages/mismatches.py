"""The MSD's list of wrong song-to-track matches (`sid_mismatches.txt`), used to drop their plays.

Lines look like `ERROR: <SOUMNSI12AB0182807 TRMMGKQ128F9325E10> Artist  -  Title  !=  ...`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from msd_tasks.errors import InputError

_LINE = re.compile(r"^ERROR: <(\S+) (\S+)>")


def read_mismatched_songs(path: Path) -> pa.Array:
    """The distinct song ids named by the file, in order of first mention."""
    songs: dict[str, None] = {}
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            match = _LINE.match(line)
            if match is None:
                raise InputError(
                    path, f"line {number}", "'ERROR: <song_id track_id> ...'", repr(line[:60])
                )
            songs[match.group(1)] = None
    return pa.array(list(songs), pa.string())
