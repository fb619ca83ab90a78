"""Bad raw input through the whole graph: the build fails and the published set stays intact.

The messages themselves are checked where they are made (test_triplets, test_songs); here each
case runs a real build over a complete earlier one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

from tests.conftest import copy_raw

TRAIN = "train_triplets.txt"
VISIBLE = "EvalDataYear1MSDWebsite/year1_test_triplets_visible.txt"
HIDDEN = "EvalDataYear1MSDWebsite/year1_test_triplets_hidden.txt"
GENRES = "msd-MAGD-genreAssignment.cls"
MSD = "full_msd_with_audio_features.h5"


def append(relative: str, data: bytes):
    def damage(raw_dir: Path) -> None:
        with open(raw_dir / relative, "ab") as file:
            file.write(data)

    return damage


def replace_with(relative: str, data: bytes):
    return lambda raw_dir: (raw_dir / relative).write_bytes(data)


def rewrite_msd(change):
    def damage(raw_dir: Path) -> None:
        frame = pd.read_hdf(raw_dir / MSD, key="df")
        key, frame = change(frame)
        (raw_dir / MSD).unlink()
        frame.to_hdf(raw_dir / MSD, key=key, mode="w")

    return damage


CASES = {
    "two fields": append(TRAIN, b"fd50c4007b68a3737fe052d5a4f78ce8aa117f3d\tSOX\n"),
    "four fields": append(VISIBLE, b"u\tSOX\t1\t2\n"),
    "non-integer count": append(HIDDEN, b"u\tSOX\tmany\n"),
    "zero count": append(TRAIN, b"u\tSOX\t0\n"),
    "empty user id": append(TRAIN, b"\tSOX\t1\n"),
    "header line": lambda raw: (raw / TRAIN).write_bytes(
        b"user_id\tsong_id\tplay_count\n" + (raw / TRAIN).read_bytes()
    ),
    "empty file": replace_with(HIDDEN, b""),
    "not utf-8": append(VISIBLE, b"u\xe9\tSOX\t1\n"),
    "genre line without tab": append(GENRES, b"TRAAAAA123 Rock\n"),
    "h5 without key df": rewrite_msd(lambda frame: ("songs", frame)),
    "h5 without needed columns": rewrite_msd(lambda frame: ("df", frame.drop(columns=["energy"]))),
}


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_and_keeps_the_previous_deliverables(case, handmade, pipeline_in, tmp_path):
    raw_dir = copy_raw(handmade, tmp_path)
    pipeline = pipeline_in(raw_dir)
    pipeline.build_ok()
    before = digests(pipeline.output_dir)
    assert "manifest.json" in before and "user_df.h5" in before

    CASES[case](raw_dir)
    result = pipeline.build()
    assert result.status == LuigiStatusCode.FAILED, result.summary_text
    assert digests(pipeline.output_dir) == before
