"""Faults around the `luigi` command line (local scheduler): a second copy, kill -9, bad input.

Every build is a real `luigi --module ... BuildAll --local-scheduler` subprocess (tests/luigid.py).
Timing-sensitive moments are made wide by tests/faulty_tasks.py, which makes chosen PerUserMusic
shards sleep inside their temporary checkpoint folder: the test waits until a build is exactly
there, then acts.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
import scipy.sparse

from msd_tasks.formats.metrics import FILE_NAME as METRICS
from tests.deliverable_compare import assert_deliverables_match
from tests.notebook_port import run_notebook

if TYPE_CHECKING:
    from tests.luigid import Run


SIX = ["user_mapping.h5", "song_mapping.h5", "train_sparse.npz", "test_sparse.npz"]
SIX += ["song_df.h5", "user_df.h5"]


@pytest.fixture(scope="module")
def busy_sample(raw_files):
    """Generated raw files (scale 0.01) and the notebook port's deliverables on them."""
    root = raw_files("sample", scale=0.01, seed=7).parent
    run_notebook(root / "raw", root / "notebook", processes=2)
    return root


def is_temporary(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def temporaries(root: Path) -> list[Path]:
    """Temporary files and folders (a leading dot) anywhere under root, outermost only."""
    found = [path for path in root.rglob(".*") if ".tmp-" in path.name]
    return sorted(path for path in found if not is_temporary(path.parent, root))


def scanned_live(scan):
    """scan() of folders that a running build changes: when a temporary folder is renamed into
    place or removed while it is read, the scan starts again."""
    while True:
        try:
            return scan()
        except FileNotFoundError:
            continue


def shard_markers(checkpoint_dir: Path) -> dict[int, int]:
    """shard -> mtime_ns of the `_SUCCESS` of its final (not temporary) PerUserMusic folder."""

    def scan() -> dict[int, int]:
        markers = {}
        for marker in (checkpoint_dir / "PerUserMusic").rglob("_SUCCESS"):
            if not is_temporary(marker, checkpoint_dir):
                shard = re.search(r"(?:^|,)shard=(\d+)(?:,|$)", marker.parent.parent.name)
                markers[int(shard.group(1))] = marker.stat().st_mtime_ns
        return markers

    return scanned_live(scan)


def shards_mid_checkpoint(checkpoint_dir: Path) -> set[Path]:
    """The temporary user_rows.parquet files of PerUserMusic shards inside their checkpoint."""
    return scanned_live(
        lambda: {
            path
            for path in (checkpoint_dir / "PerUserMusic").rglob("user_rows.parquet")
            if is_temporary(path, checkpoint_dir)
        }
    )


def shard_in_checkpoint(checkpoint_dir: Path, shard: int | None = None) -> bool:
    """A PerUserMusic shard (any, or `shard`) has written user_rows.parquet into its temporary
    folder."""
    return any(
        shard is None or f"shard={shard}" in path.parent.parent.name.split(",")
        for path in shards_mid_checkpoint(checkpoint_dir)
    )


def wait_until(run: Run, condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.returncode is None, f"the build ended before {what}: {run.tail()}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.01)


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under roots with its size and mtime_ns (but metrics.prom, which
    every build writes, failed ones too)."""
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for root in roots
        if root.exists()
        for path in [root, *root.rglob("*")]
        if path.name != METRICS
    }


def test_second_copy_exits_already_running_and_touches_nothing(raw_files, builds, tmp_path):
    raw_dir = raw_files("handmade")
    build = builds(
        raw_dir=raw_dir,
        checkpoint_dir=tmp_path / "checkpoints",
        output_dir=tmp_path / "out",
        n_shards=3,
        # the first copy holds still for 10 s inside shard 1's checkpoint (--workers 1: nothing
        # else runs meanwhile); the identical second command line must not wait for it
        module="tests.faulty_tasks",
        env={"MSD_SLOW_SHARDS": "1", "MSD_SLOW_SECONDS": "10"},
    )
    first = build.start(".first")
    wait_until(
        first, lambda: shard_in_checkpoint(tmp_path / "checkpoints", 1), what="shard 1 sleeping"
    )
    before = snapshot(tmp_path / "checkpoints", tmp_path / "out", tmp_path / "locks")

    second = build.run(".second", timeout=60)
    assert second.returncode == 10, second.tail()
    # The first copy still holds still inside shard 1: the second did not wait for it.
    assert first.returncode is None, "the first copy ended before the second did"
    assert shard_in_checkpoint(tmp_path / "checkpoints", 1), "the first copy moved on meanwhile"
    assert f"Pid(s) {{{first.pid}}} already running" in second.stdout_path.read_text()
    assert "running   " not in second.stderr
    assert snapshot(tmp_path / "checkpoints", tmp_path / "out", tmp_path / "locks") == before

    assert first.wait(120) == 0, first.tail()
    assert all((tmp_path / "out" / name).exists() for name in [*SIX, "manifest.json"])


def readable(path: Path) -> None:
    """Load a checkpoint file the way a reader would; raises if it is partial."""
    if path.suffix == ".parquet":
        pq.read_table(path)
    elif path.suffix == ".npz":
        scipy.sparse.load_npz(path)
    elif path.suffix == ".h5":
        pd.read_hdf(path, key="df")
    elif path.suffix == ".json":
        json.loads(path.read_text())


PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """While active, descendants orphaned by a dying parent are reparented to this process
    instead of to PID 1 (Linux), and stay zombies until it reaps them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("needs Linux prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def wait_for_zombies(processes: list[psutil.Process], timeout: float = 10) -> None:
    """Wait until each process has died (psutil's wait_procs would reap our children)."""
    deadline = time.monotonic() + timeout
    for process in processes:
        while True:
            try:
                if process.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            assert time.monotonic() < deadline, f"{process} survived SIGKILL"
            time.sleep(0.01)


def test_kill_9_mid_run_leaves_only_whole_checkpoints(busy_sample, builds, tmp_path):
    raw_dir = busy_sample / "raw"
    checkpoints, out = tmp_path / "checkpoints", tmp_path / "out"
    folders = {"raw_dir": raw_dir, "checkpoint_dir": checkpoints, "output_dir": out}
    # The killed task processes stay unreaped zombies until the end of the test, as they do
    # under an init that reaps late (seconds, as in some sandboxes) or never (a container whose
    # PID 1 is not an init): the rerun sees them exactly as it would there, on any machine.
    with subreaper():
        killed = builds(
            workers=2,
            n_shards=8,
            module="tests.faulty_tasks",
            env={"MSD_SLOW_SHARDS": "all", "MSD_SLOW_SECONDS": "5"},  # wide, even under load
            name="killed",
            **folders,
        ).start()

        # When the first shard finishes, the one that ran beside it may be a moment from
        # finishing too: wait for a shard that entered its 5 s slow window after that.
        wait_until(killed, lambda: shard_markers(checkpoints), what="a finished shard")
        late = shards_mid_checkpoint(checkpoints)

        def a_shard_fresh_in_its_checkpoint() -> bool:
            return bool(shards_mid_checkpoint(checkpoints) - late)

        wait_until(killed, a_shard_fresh_in_its_checkpoint, what="a shard mid-checkpoint")
        assert 0 < len(shard_markers(checkpoints)) < 8
        tasks = psutil.Process(killed.pid).children(recursive=True)
        killed.kill_group()
    try:
        wait_for_zombies(tasks)
        check_after_kill(busy_sample, builds, folders)
    finally:
        for task in tasks:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(task.pid, 0)


def check_after_kill(sample: Path, builds, folders: dict[str, Path]) -> None:
    raw_dir, checkpoints, out = folders["raw_dir"], folders["checkpoint_dir"], folders["output_dir"]
    before = shard_markers(checkpoints)
    assert 0 < len(before) < 8

    # Every final checkpoint is whole: each file outside temporaries (a leading dot) lies in a
    # generation folder holding `_SUCCESS` (or in a subfolder of one), and loads.
    for path in checkpoints.rglob("*"):
        if path.is_file() and not is_temporary(path, checkpoints):
            generation = next(
                (folder for folder in path.parents if (folder / "_SUCCESS").is_file()), None
            )
            assert generation is not None and checkpoints in generation.parents, path
            readable(path)
    leftovers = temporaries(checkpoints)
    assert leftovers, "killed mid-checkpoint, yet no temporary folder is left"
    assert not out.exists() or not [path for path in out.iterdir()], list(out.iterdir())

    rerun = builds(workers=2, n_shards=8, name="rerun", **folders).run()
    assert rerun.returncode == 0, rerun.tail()
    after = shard_markers(checkpoints)
    assert sorted(after) == list(range(8))
    assert {shard: after[shard] for shard in before} == before, "a finished shard was redone"
    redone = sorted(
        int(line.rsplit("shard=", 1)[1].split(")")[0])
        for line in rerun.stderr.splitlines()
        if "running   PerUserMusic(" in line
    )
    assert redone == sorted(set(range(8)) - set(before))
    assert_deliverables_match(sample / "notebook", out, raw_dir)
    # The killed writers' temporaries did not disturb the rerun; its Publish removes them
    # (`remove_orphan_temporaries`: temporaries of writers on this host that no longer run -
    # a killed, not yet reaped writer is a zombie: it no longer runs).
    left = [path for path in leftovers if path.exists()]
    assert not left, f"temporaries of killed writers left after a successful rerun: {left}"
    assert not temporaries(checkpoints)


def test_failed_rebuild_keeps_the_previous_deliverables(raw_files, builds, tmp_path):
    raw_dir = tmp_path / "raw"
    shutil.copytree(raw_files("handmade"), raw_dir)  # the rebuild edits it
    folders = {
        "raw_dir": raw_dir,
        "checkpoint_dir": tmp_path / "checkpoints",
        "output_dir": tmp_path / "out",
        "workers": 2,
        "n_shards": 3,
    }
    first = builds(name="first", **folders).run()
    assert first.returncode == 0, first.tail()
    published = {
        path.name: path.read_bytes() for path in (tmp_path / "out").iterdir() if path.is_file()
    }
    assert {*SIX, "manifest.json"} <= published.keys()

    triplets = raw_dir / "train_triplets.txt"
    text = triplets.read_bytes()
    bad_line = b"b80344d063b5ccb3212f76538f3d9e43d87dca9e\tSOAKIMP12A8C130995\n"  # 2 fields
    triplets.write_bytes(text + (b"" if text.endswith(b"\n") else b"\n") + bad_line)
    lines = len(text.splitlines())
    rebuild = builds(name="rebuild", **folders).run()
    assert rebuild.returncode == 30, rebuild.tail()
    assert str(triplets) in rebuild.stderr, rebuild.tail()
    assert f"line {lines + 1}" in rebuild.stderr, rebuild.tail()
    assert "3 tab-separated fields" in rebuild.stderr, rebuild.tail()

    now = {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir() if path.is_file()}
    assert now.keys() == published.keys()
    # metrics.prom is the one file a failed build writes: it says so.
    assert b"msd_build_succeeded 0.0" in now.pop("metrics.prom")
    changed = [name for name in now if now[name] != published[name]]
    assert not changed, f"the failed rebuild changed {changed}"
