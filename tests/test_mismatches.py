"""Known song-to-track mismatches: parsing, and dropping their plays equals removing their lines."""

from __future__ import annotations

import json
import shutil

import pytest

from msd_tasks.errors import InputError
from msd_tasks.formats.raw import RAW_FILES, TRIPLET_KINDS
from msd_tasks.stages.mismatches import read_mismatched_songs
from tests.deliverable_compare import assert_deliverables_match
from tests.notebook_port import run_notebook


def test_parses_song_ids_in_order(tmp_path):
    path = tmp_path / "sid_mismatches.txt"
    path.write_text(
        "ERROR: <SOB TR1> A  -  T  !=  B  -  U\n"
        "ERROR: <SOA TR2> Beyoncé  -  x  !=  y  -  z\n"
        "\n"
        "ERROR: <SOB TR3> again\n"
    )
    assert read_mismatched_songs(path).to_pylist() == ["SOB", "SOA"]


def test_a_line_of_another_shape_is_named(tmp_path):
    path = tmp_path / "sid_mismatches.txt"
    path.write_text("ERROR: <SOB TR1> A\nSOB TR2\n")
    with pytest.raises(InputError, match=r"line 2: expected 'ERROR: <song_id track_id> \.\.\.'"):
        read_mismatched_songs(path)


def test_dropping_mismatches_equals_the_notebook_without_their_lines(
    raw_files, tmp_path, pipeline_in
):
    raw_dir = raw_files("sample", scale=0.0005, seed=5)
    dropped = set(read_mismatched_songs(raw_dir / "sid_mismatches.txt").to_pylist())

    filtered = tmp_path / "filtered"
    shutil.copytree(raw_dir, filtered)
    removed = 0
    for kind in TRIPLET_KINDS:
        path = filtered / RAW_FILES[kind]
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if line.split("\t")[1] not in dropped]
        removed += len(lines) - len(kept)
        path.write_text("".join(kept))
    assert removed > 0
    run_notebook(filtered, tmp_path / "notebook", processes=1)

    pipeline = pipeline_in(raw_dir)
    pipeline.build_ok(drop_mismatches=True)
    assert_deliverables_match(tmp_path / "notebook", pipeline.output_dir, raw_dir)
    manifest = json.loads((pipeline.output_dir / "manifest.json").read_text())
    assert manifest["counts"]["mismatched_plays_dropped"] == removed
    assert manifest["parameters"]["drop_mismatches"] is True
