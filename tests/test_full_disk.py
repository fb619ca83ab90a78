"""A build whose checkpoint disk fills up fails and leaves nothing behind (issue 10, point 7).

The full disk is simulated without root: the `luigi --module msd_tasks BuildAll` subprocess runs
with RLIMIT_FSIZE lowered and SIGXFSZ ignored, so that a write past the limit fails with EFBIG
("File too large"), as a write to a full disk fails with ENOSPC. The limit is per file and holds
for every file the build writes, not only the checkpoints: also its stdout and stderr files
(opened here, written by the build) and its pid lock. Each limit below is chosen under the size
of the checkpoint files that must fail and above the logs, which the test checks, so that no
log write fails.

Every failed build must leave the checkpoint folder holding complete checkpoints (generation
folders with `_SUCCESS`) and nothing else: no temporaries, so that retries do not take more and
more space; the output folder stays as it was. Once the limit is lifted, the build succeeds.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse

from msd_tasks.formats.metrics import FILE_NAME as METRICS
from msd_tasks.formats.raw import DIGESTS_FILE

if TYPE_CHECKING:
    from tests.luigid import Build, Run


KIB = 1024
TASK_FAILED = 30  # [retcode] task_failed in tests/luigid.py's luigi.cfg
FAILED_TASK = re.compile(r" failed +(\w+)\(")


@dataclass(frozen=True)
class FullDisk:
    limit: int  # RLIMIT_FSIZE of the build, in bytes
    failing: frozenset[str]  # the task families whose checkpoint writes hit it
    evidence: str  # a regex the failed build's stderr matches: the write failed on the limit


# Sizes at scale 0.002, seed 3 (the largest log, stderr, is about 25 KiB):
# - 128 KiB: the first writes fail, the train import's plays.parquet (~300 KB) and CleanSongs'
#   songs.parquet (~220 KB); the visible and hidden imports (< 15 KB a file) complete.
# - 1 MiB: every parquet and npz file fits; the HDF5 files do not (song_df.h5 ~8.5 MB,
#   user_df.h5 ~2.4 MB, the mappings ~1.1 MB each), written at the end of the graph.
IMPORTS = FullDisk(128 * KIB, frozenset({"ImportTriplets", "CleanSongs"}), "File too large")
# HDF5 writes most of a file when it is closed: a check of the file, reopened, may be what
# notices (HDF5: "truncated file: eof = ..., stored_eof = ...").
HDF5 = FullDisk(
    1024 * KIB,
    frozenset({"SongTable", "IndexMappings", "UserTable"}),
    "File too large|truncated file",
)


@pytest.fixture(scope="module")
def raw_dir(raw_files) -> Path:
    """Generated raw files (scale 0.002, about 7 MB), read by every build of this module."""
    return raw_files("sample", scale=0.002, seed=3)


# A python that ignores SIGXFSZ (so that a write past the limit fails with EFBIG instead of
# killing the process) and lowers RLIMIT_FSIZE, then execs the command: both survive exec and
# fork, so they hold for the luigi process and the task processes it forks. (Python ignores
# SIGXFSZ at start-up too, but Popen first restores it to its default.)
LIMITED = """\
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
os.execv(sys.argv[2], sys.argv[2:])
"""


def run_with_file_size_limit(build: Build, limit: int, attempt: str, timeout: float = 300) -> Run:
    """`build.run(attempt)` with every file the build writes limited to `limit` bytes."""
    run = build.start(attempt, prefix=(sys.executable, "-c", LIMITED, str(limit)))
    run.wait(timeout)
    return run


def temporaries(root: Path) -> list[Path]:
    """Anything under root named like a temporary (`_temporary_sibling`) or hidden."""
    return sorted(
        path for path in root.rglob("*") if path.name.startswith(".") or ".tmp-" in path.name
    )


def not_complete_or_nothing(checkpoints: Path) -> list[Path]:
    """Paths under `checkpoints` that are neither part of a complete checkpoint nor empty.

    A complete checkpoint is a generation folder holding `_SUCCESS`; it, everything in it and
    the folders above it (task family, own parameters) are fine. So are folders holding no file
    at all, such as the task and parameter folders `atomic_folder` makes before a write that
    then fails: the same few folders on every retry, without content. The record of the raw
    files' digests is fine when it is whole JSON (it is replaced atomically).
    """
    generations = {marker.parent for marker in checkpoints.rglob("_SUCCESS")}
    wrong = []
    for path in sorted(checkpoints.rglob("*")):
        if path == checkpoints / DIGESTS_FILE:
            try:
                json.loads(path.read_text())
            except ValueError:
                wrong.append(path)
            continue
        in_generation = any(g == path or g in path.parents for g in generations)
        above_generation = any(path in g.parents for g in generations)
        empty_folder = path.is_dir() and not any(p.is_file() for p in path.rglob("*"))
        if not (in_generation or above_generation or empty_folder):
            wrong.append(path)
    return wrong


def unreadable(checkpoints: Path) -> list[str]:
    """The files of complete checkpoints that do not load, each with the error."""
    failures = []
    for marker in checkpoints.rglob("_SUCCESS"):
        for path in sorted(marker.parent.rglob("*")):
            try:
                if path.suffix == ".parquet":
                    pq.read_table(path)
                elif path.suffix == ".h5":
                    pd.read_hdf(path, key="df")
                elif path.suffix == ".npz":
                    scipy.sparse.load_npz(path)
                elif path.suffix == ".json":
                    json.loads(path.read_text())
            except Exception as error:  # any reason: reported with the path
                failures.append(f"{path}: {type(error).__name__}: {str(error)[:200]}")
    return failures


def disk_usage(root: Path) -> int:
    """Bytes allocated to root and everything under it, as `du` counts them."""
    return sum(path.lstat().st_blocks * 512 for path in [root, *root.rglob("*")])


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under root with its size and mtime_ns, but metrics.prom, which
    every build writes, failed ones too, and root's mtime, which writing it changes."""
    return {
        str(path.relative_to(root)): (
            path.stat().st_size,
            None if path == root else path.stat().st_mtime_ns,
        )
        for path in [root, *root.rglob("*")]
        if path.name != METRICS
    }


def failed_families(run: Run) -> set[str]:
    return set(FAILED_TASK.findall(run.stderr))


@pytest.mark.parametrize(
    "full_disk",
    [
        pytest.param(IMPORTS, id="imports"),
        pytest.param(HDF5, id="hdf5"),  # PyTables ignores H5Fclose errors: write_hdf checks
    ],
)
def test_failed_build_on_a_full_disk_leaves_nothing_behind(
    full_disk: FullDisk, raw_dir, builds, tmp_path
):
    checkpoints, out = tmp_path / "checkpoints", tmp_path / "out"
    folders = {"raw_dir": raw_dir, "checkpoint_dir": checkpoints, "output_dir": out}
    # A previously published set: a failed build must leave it as it is.
    out.mkdir()
    (out / "user_df.h5").write_bytes(b"the previous build's user_df.h5")
    (out / "manifest.json").write_text(json.dumps({"build": "previous", "state": "complete"}))
    published = snapshot(out)

    build = builds(workers=2, name="full", **folders)
    usage, contents = [], []
    for attempt in range(1, 4):
        run = run_with_file_size_limit(build, full_disk.limit, f".{attempt}")
        assert run.returncode == TASK_FAILED, run.tail()
        assert re.search(full_disk.evidence, run.stderr), run.tail()
        assert failed_families(run) == full_disk.failing, run.tail()
        for log in (run.stdout_path, run.stderr_path):
            size = log.stat().st_size
            assert size < full_disk.limit // 2, f"{log} ({size} bytes) near the file size limit"

        assert not temporaries(checkpoints), f"attempt {attempt}: {temporaries(checkpoints)}"
        wrong = not_complete_or_nothing(checkpoints)
        assert not wrong, f"attempt {attempt} left files outside complete checkpoints: {wrong}"
        broken = unreadable(checkpoints)
        assert not broken, f"attempt {attempt} left broken checkpoints: {broken}"
        assert snapshot(out) == published, f"attempt {attempt} changed the output folder"
        assert "msd_build_succeeded 0.0" in (out / METRICS).read_text()
        usage.append(disk_usage(checkpoints))
        contents.append(snapshot(checkpoints))

    assert usage[2] <= usage[1], f"the checkpoint folder grew between retries: {usage} bytes"
    added = sorted(contents[2].keys() - contents[1].keys())
    assert not added, f"the third attempt added {added}"

    rerun = builds(workers=2, name="unlimited", **folders).run()
    assert rerun.returncode == 0, rerun.tail()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["state"] == "complete"
    assert manifest["build"] != "previous"
    assert not temporaries(checkpoints)
    assert not not_complete_or_nothing(checkpoints)
    assert not unreadable(checkpoints)
    assert not list(out.glob(".*")), list(out.glob(".*"))
