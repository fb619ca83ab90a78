"""The same raw content gives byte-identical deliverables, whatever the order of the train lines,
the number of shards or workers, and the moment of the build (the report aside: it shows times).
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from tests.conftest import Pipeline

DELIVERABLES = [
    "user_mapping.h5",
    "song_mapping.h5",
    "train_sparse.npz",
    "test_sparse.npz",
    "song_df.h5",
    "user_df.h5",
    "song_df.parquet",
    "user_df.parquet",
]


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
