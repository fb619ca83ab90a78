"""`python -m msd_tasks verify`: a published build checked against its manifest.json, run as a
user runs it, on a real build."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_raw

REPO = Path(__file__).resolve().parents[1]


def verify(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "msd_tasks", "verify", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def built(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok()
    return pipeline


def test_a_fresh_build_verifies_with_its_inputs(built):
    done = verify(built.output_dir, "--inputs", "--raw-dir", built.raw_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "match manifest.json" in done.stdout
    inputs = json.loads((built.output_dir / "manifest.json").read_text())["inputs"]
    assert set(inputs) == {
        "full_msd_with_audio_features.h5",
        "msd-MAGD-genreAssignment.cls",
        "train_triplets.txt",
        "EvalDataYear1MSDWebsite/year1_test_triplets_visible.txt",
        "EvalDataYear1MSDWebsite/year1_test_triplets_hidden.txt",
    }
    train = (built.raw_dir / "train_triplets.txt").read_bytes()
    assert inputs["train_triplets.txt"]["bytes"] == len(train)


def test_every_changed_file_is_named(built):
    user_df = built.output_dir / "user_df.h5"
    data = bytearray(user_df.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size, another byte
    user_df.write_bytes(bytes(data))
    song_df = built.output_dir / "song_df.parquet"
    os.truncate(song_df, song_df.stat().st_size - 1)
    (built.output_dir / "test_sparse.npz").unlink()

    done = verify(built.output_dir)

    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout
    assert any(line.startswith(f"{user_df}: sha256 ") for line in lines)
    assert any(line.startswith(f"{song_df}: ") and "bytes" in line for line in lines)
    assert f"{built.output_dir / 'test_sparse.npz'}: missing" in lines


def test_a_set_being_published_does_not_verify(built):
    manifest = built.output_dir / "manifest.json"
    content = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**content, "state": "publishing"}))
    done = verify(built.output_dir)
    assert done.returncode == 1
    assert "state is 'publishing'" in done.stdout


def test_inputs_catch_an_edit_that_kept_size_and_mtime(built):
    train = built.raw_dir / "train_triplets.txt"
    before = train.stat()
    text = bytearray(train.read_bytes())
    position = text.index(b"\t") + 1  # the first song id's first character
    text[position] = ord("X") if text[position] != ord("X") else ord("Y")
    train.write_bytes(bytes(text))
    os.utime(train, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (train.stat().st_size, train.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )

    assert verify(built.output_dir).returncode == 0  # the outputs are as published
    done = verify(built.output_dir, "--inputs", "--raw-dir", built.raw_dir)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{train}: sha256 {hashlib.sha256(train.read_bytes()).hexdigest()}, the manifest says "
        + json.loads((built.output_dir / "manifest.json").read_text())["inputs"][
            "train_triplets.txt"
        ]["sha256"]
    ]


def test_no_manifest_is_an_error(tmp_path):
    done = verify(tmp_path)
    assert done.returncode == 1
    assert "manifest.json: missing" in done.stdout
