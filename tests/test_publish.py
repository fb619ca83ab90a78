"""Publishing: staged links, renames, a manifest that describes exactly what is there."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import scipy.sparse as sp

from msd_tasks.formats.publish import checksums, publish
from msd_tasks.stages.matrices import MAX_EXACT_FLOAT32, PlayCountOverflow, play_matrix


def sources(tmp_path, text: str) -> dict:
    build = tmp_path / f"build-{text}"
    (build / "report").mkdir(parents=True)
    (build / "a.h5").write_text(f"a {text}")
    (build / "report" / "index.html").write_text(f"<p>{text}</p>")
    return {"a.h5": build / "a.h5", "report": build / "report"}


def test_manifest_lists_every_published_file_with_its_checksum(tmp_path):
    out = tmp_path / "out"
    publish(sources(tmp_path, "one"), out, build="b1", details={"counts": {"users": 1}})
    (out / ".staging-dead").mkdir()  # left by a publish that was killed
    (out / ".report.old").mkdir()
    manifest = publish(sources(tmp_path, "two"), out, build="b2", details={})
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["build"] == "b2" and manifest["state"] == "complete"
    assert sorted(manifest["files"]) == ["a.h5", "report/index.html"]
    for name, entry in manifest["files"].items():
        content = (out / name).read_bytes()
        assert entry == {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert (out / "report" / "index.html").read_text() == "<p>two</p>"
    assert sorted(path.name for path in out.iterdir()) == ["a.h5", "manifest.json", "report"]


def test_checksums_taken_when_written_are_used_and_names_and_sizes_must_match(tmp_path):
    out = tmp_path / "out"
    first = sources(tmp_path, "one")
    known = checksums(first["a.h5"].parent, ["a.h5", "report"])
    manifest = publish(first, out, build="b1", details={}, known_checksums=known)
    assert manifest["files"] == known
    for name, entry in known.items():
        content = (out / name).read_bytes()
        assert entry == {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}

    second = sources(tmp_path, "two")
    stale = checksums(second["a.h5"].parent, ["a.h5", "report"])
    second["a.h5"].write_text("a two, changed after its checksum was taken")
    published = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    with pytest.raises(ValueError, match="differ from those checksummed"):
        publish(second, out, build="b2", details={}, known_checksums=stale)
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == published
    assert sorted(path.name for path in out.iterdir()) == ["a.h5", "manifest.json", "report"]


def test_repeated_lines_summing_past_float32_precision_are_refused():
    song, user = np.zeros(2, np.int32), np.zeros(2, np.int32)
    ok = play_matrix(song, user, np.array([MAX_EXACT_FLOAT32 // 2] * 2, np.int32), (1, 1))
    assert isinstance(ok, sp.csr_matrix) and ok[0, 0] == MAX_EXACT_FLOAT32
    song, user = np.array([0, 1, 1], np.int32), np.array([2, 0, 0], np.int32)
    counts = np.array([1, MAX_EXACT_FLOAT32 // 2 + 1, MAX_EXACT_FLOAT32 // 2 + 1], np.int32)
    with pytest.raises(PlayCountOverflow) as overflow:
        play_matrix(song, user, counts, (2, 3))
    assert (overflow.value.song_index, overflow.value.user_index) == (1, 0)
    assert overflow.value.total == MAX_EXACT_FLOAT32 + 2
    # 2^24 + 1 rounds to 2^24 in float32: the sum is checked exactly
    with pytest.raises(PlayCountOverflow):
        play_matrix(
            np.zeros(2, np.int32), np.zeros(2, np.int32), np.array([MAX_EXACT_FLOAT32, 1]), (1, 1)
        )
