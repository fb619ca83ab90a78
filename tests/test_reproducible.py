"""The same raw content gives byte-identical deliverables, whatever the order of the train lines,
the number of shards or workers, and the moment of the build (the report aside: it shows times).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from msd_tasks.graph.build import DELIVERABLES as PUBLISHED
from tests.conftest import Pipeline, copy_raw

DELIVERABLES = sorted(PUBLISHED)  # every published file but the report


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shuffled_copy(raw_dir, target, seed: int):
    """`raw_dir` copied, with the train file's lines in another order."""
    shutil.copytree(raw_dir, target)
    train = target / "train_triplets.txt"
    lines = train.read_bytes().splitlines(keepends=True)
    order = np.random.default_rng(seed).permutation(len(lines))
    train.write_bytes(b"".join(lines[i] for i in order))
    return target


@pytest.mark.graph  # whole builds, though through raw_files, not pipeline_in
@pytest.mark.parametrize("kind", ["handmade", "sample"])
def test_deliverables_are_byte_identical_across_line_order_shards_and_workers(
    raw_files, tmp_path, kind
):
    raw_dir = raw_files(kind, scale=0.001, seed=4)
    builds = [
        (raw_dir, 2, 1),
        (shuffled_copy(raw_dir, tmp_path / "shuffled", seed=1), 5, 2),
    ]
    hashes = []
    for number, (source, n_shards, workers) in enumerate(builds):
        pipeline = Pipeline(source, tmp_path / f"checkpoints-{number}", tmp_path / f"out-{number}")
        pipeline.configure(n_shards)
        pipeline.build_ok(workers=workers)
        files = json.loads((pipeline.output_dir / "manifest.json").read_text())["files"]
        assert {name: files[name]["sha256"] for name in DELIVERABLES} == {
            name: sha256(pipeline.output_dir / name) for name in DELIVERABLES
        }
        hashes.append({name: files[name]["sha256"] for name in DELIVERABLES})
    assert hashes[0] == hashes[1]


def success_markers(checkpoint_dir) -> dict[str, int]:
    return {
        str(marker.parent.relative_to(checkpoint_dir)): marker.stat().st_mtime_ns
        for marker in checkpoint_dir.rglob("_SUCCESS")
    }


def test_touch_reruns_nothing_and_a_content_change_reruns_what_reads_it(
    handmade, pipeline_in, tmp_path
):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok()
    manifest = (pipeline.output_dir / "manifest.json").read_bytes()
    markers = success_markers(pipeline.checkpoint_dir)
    raw_files = [path for path in pipeline.raw_dir.rglob("*") if path.is_file()]
    for path in raw_files:  # `touch`: a new mtime, the same content
        later = path.stat().st_mtime_ns + 5_000_000_000
        os.utime(path, ns=(later, later))

    result = pipeline.build_ok()

    assert "ran successfully" not in result.summary_text, result.summary_text
    assert success_markers(pipeline.checkpoint_dir) == markers
    assert (pipeline.output_dir / "manifest.json").read_bytes() == manifest

    train = pipeline.raw_dir / "train_triplets.txt"
    first_line = train.read_bytes().splitlines(keepends=True)[0]
    train.write_bytes(train.read_bytes() + first_line)  # a repeated line: new content

    result = pipeline.build_ok()

    ran = result.summary_text.split("ran successfully")[1]
    assert "ImportTriplets(kind=train" in ran and "CleanSongs" not in ran, ran
    assert json.loads((pipeline.output_dir / "manifest.json").read_text())["inputs"][
        "train_triplets.txt"
    ] == {"bytes": train.stat().st_size, "sha256": sha256(train)}
