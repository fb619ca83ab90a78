"""The graph against a real central scheduler: `luigid` on loopback, `luigi` as users run it.

Every test starts its own luigid (tests/luigid.py) and runs `luigi --module ... BuildAll` as a
subprocess with `--scheduler-host/--scheduler-port`, then asks luigid's HTTP API what it saw.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse

from msd_tasks.formats.parquet import parquet_metadata
from tests.conftest import copy_raw
from tests.deliverable_compare import assert_deliverables_match

if TYPE_CHECKING:
    from tests.luigid import Luigid


# Every family of the graph (BuildAll may add more downstream, e.g. a report).
FAMILIES = {
    "RawFile": 5,
    "CleanSongs": 1,
    "ImportTriplets": 3,
    "JoinPlays": 1,
    "RawDigests": 1,
    "IndexMappings": 1,
    "PlayMatrices": 1,
    "SongTable": 1,
    "UserTable": 1,
    "Publish": 1,
    "BuildAll": 1,
}
SIX = ["user_mapping.h5", "song_mapping.h5", "train_sparse.npz", "test_sparse.npz"]
SIX += ["song_df.h5", "user_df.h5"]
# An idle worker asks again every 0.1-0.2 s, and gives up after 60 s without anything to run.
KEEP_ALIVE = (
    *("--worker-keep-alive", "--worker-wait-interval", "0.1", "--worker-wait-jitter", "0.1"),
    *("--worker-max-keep-alive-idle-duration", "60 seconds"),
)
RUNNING = re.compile(r"running   (\w+)\((.*)\)$", re.MULTILINE)


def tasks_by_status(server: Luigid, status: str) -> dict[str, dict]:
    tasks = server.api("task_list", status=status, upstream_status="")
    assert "num_tasks" not in tasks, f"luigid only counted the {status} tasks: {tasks}"
    return tasks


def shard_of(task: dict) -> int:
    return int(task["params"]["shard"])


def ran(stderr: str) -> list[tuple[str, str]]:
    """(family, parameters) of every task this luigi process logged as `running`."""
    return RUNNING.findall(stderr)


def ran_families(stderr: str) -> set[str]:
    return {family for family, _ in ran(stderr)}


def summary(stderr: str) -> str:
    start = stderr.find("===== Luigi Execution Summary =====")
    assert start >= 0, f"no execution summary in:\n{stderr[-3000:]}"
    return stderr[start:]


def assert_all_done(server: Luigid, n_shards: int) -> dict[str, dict]:
    """Every task luigid knows is DONE, and they are the whole graph."""
    everything = tasks_by_status(server, "")
    not_done = {task["display_name"]: task["status"] for task in everything.values()}
    not_done = {name: status for name, status in not_done.items() if status != "DONE"}
    assert not not_done, f"tasks not DONE in luigid: {not_done}"
    done = tasks_by_status(server, "DONE")
    assert done.keys() == everything.keys()
    families = Counter(task["name"] for task in done.values())
    missing = {family: count for family, count in FAMILIES.items() if families.get(family) != count}
    assert not missing, f"expected {missing} DONE, luigid has {dict(families)}"
    shards = sorted(shard_of(task) for task in done.values() if task["name"] == "PerUserMusic")
    assert shards == list(range(n_shards))
    return done


def test_build_against_luigid_marks_every_task_done(sample, luigid, builds, tmp_path):
    raw_dir = copy_raw(sample, tmp_path)
    build = builds(
        raw_dir=raw_dir,
        checkpoint_dir=tmp_path / "checkpoints",
        output_dir=tmp_path / "out",
        workers=2,
        n_shards=3,
        scheduler=luigid,
    ).run()
    assert build.returncode == 0, build.tail()

    done = assert_all_done(luigid, n_shards=3)
    scheduled = int(re.search(r"Scheduled (\d+) tasks", build.stderr).group(1))
    assert len(done) == scheduled, "luigid does not hold every task the worker scheduled"
    for task in done.values():
        if task["name"] == "PerUserMusic":
            assert task["progress_percentage"] == 100, task
            assert task["status_message"], task
            assert task["status_message"].startswith("done:"), task
    # What the UI shows of a task is what identifies it: no fingerprints, no foreign parameters.
    shown = {task["name"]: set(task["params"]) for task in done.values()}
    join = {"on_bad_lines", "drop_mismatches", "n_shards"}
    assert shown["CleanSongs"] == set()
    assert shown["ImportTriplets"] == {"kind", "on_bad_lines"}
    assert shown["PlayMatrices"] == shown["JoinPlays"] == join
    assert shown["PerUserMusic"] == {*join, "music_scaling", "shard"}
    assert_deliverables_match(sample / "notebook", tmp_path / "out", raw_dir)


def expected_exit_code(stderr: str) -> int:
    """Luigi's own rule (luigi/retcodes.py) applied to one process's execution summary."""
    text = summary(stderr)
    codes = [0]
    if "were being run by another worker" in text:
        codes.append(10)  # already_running
    if "not granted run permission by the scheduler" in text:
        codes.append(25)  # not_run
    if max(codes) == 0 and "BuildAll" not in ran_families(stderr):
        codes.append(25)  # the root task was neither run by this process nor complete
    return max(codes)


def read_six(folder: Path) -> dict[str, object]:
    return {
        name: scipy.sparse.load_npz(folder / name)
        if name.endswith(".npz")
        else pd.read_hdf(folder / name, key="df")
        for name in SIX
    }


def same_cells(a: pd.Series, b: pd.Series) -> bool:
    """Equal columns; list cells compared as arrays, NaN equal to NaN (`.equals` says NaN != NaN
    inside a list)."""
    if a.dtype != object:
        return a.equals(b)
    return len(a) == len(b) and all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
        if isinstance(x, list | np.ndarray)
        else x == y or (pd.isna(x) and pd.isna(y))
        for x, y in zip(a, b, strict=True)
    )


def assert_same_six(expected: Path, actual: Path) -> None:
    """Matrices equal exactly (shape, dtype, stored entries); frames equal cell by cell."""
    left, right = read_six(expected), read_six(actual)
    for name in SIX:
        a, b = left[name], right[name]
        if name.endswith(".npz"):
            assert a.shape == b.shape and a.dtype == b.dtype and a.format == b.format, name
            for part in ("indptr", "indices", "data"):
                assert np.array_equal(getattr(a, part), getattr(b, part)), (name, part)
        else:
            assert a.index.equals(b.index) and list(a.columns) == list(b.columns), name
            assert list(a.dtypes) == list(b.dtypes), name
            differ = [column for column in a.columns if not same_cells(a[column], b[column])]
            assert not differ, f"{name}: columns {differ} differ"


def test_two_processes_share_one_luigid(raw_files, luigid, builds, tmp_path):
    """Two `luigi` processes (two machines) on one luigid and one shared checkpoint folder."""
    raw_dir = raw_files("sample", scale=0.002, seed=5)
    shared = {
        "raw_dir": raw_dir,
        "checkpoint_dir": tmp_path / "checkpoints",
        "output_dir": tmp_path / "out",
        "n_shards": 6,
        "scheduler": luigid,
        # keep asking for work while the other process runs what everything waits for
        "extra": KEEP_ALIVE,
        # the first shard of each process waits for a shard of the other (tests/faulty_tasks.py):
        # both processes get shards however the two start up
        "module": "tests.faulty_tasks",
        "env": {"MSD_MEET_DIR": str(tmp_path / "meet")},
    }
    # Each "machine" has its own working directory (luigi.cfg, pid-lock folder, logs).
    first = builds(cwd=tmp_path / "a", name="a", **shared).start()
    second = builds(cwd=tmp_path / "b", name="b", **shared).start()
    codes = {"a": first.wait(240), "b": second.wait(240)}
    runs = {"a": first, "b": second}
    seen = {name: (run.pid, codes[name], ran(run.stderr)) for name, run in runs.items()}

    # Exit codes follow luigi's rule (retcodes.py, highest wins): 10 (already_running) if some of
    # its tasks were being run by the other process when it stopped, 25 (not_run) if it was
    # denied one or did not run BuildAll itself, else 0. The process that runs BuildAll may exit
    # 0; the other one cannot. Seen on a successful build: (25, 25) most often, (25, 10), and
    # (0, 10) or (0, 25) now and then - the codes do not tell whether the build succeeded.
    for name, run in runs.items():
        assert codes[name] in {0, 10, 25}, run.tail()
        assert codes[name] == expected_exit_code(run.stderr), (codes, run.tail())
    ran_root = [name for name, run in runs.items() if "BuildAll" in ran_families(run.stderr)]
    assert len(ran_root) == 1, seen
    other = "b" if ran_root == ["a"] else "a"
    assert codes[other] in {10, 25}, seen

    # Every task of the graph ran exactly once, in one of the two processes.
    counts = Counter(family for run in runs.values() for family, _ in ran(run.stderr))
    expected = {family: n for family, n in FAMILIES.items() if family != "RawFile"}
    assert {family: counts[family] for family in expected} == expected, counts
    by_shard = Counter(
        int(re.search(r"shard=(\d+)", params).group(1))
        for run in runs.values()
        for family, params in ran(run.stderr)
        if family == "PerUserMusic"
    )
    assert by_shard == dict.fromkeys(range(6), 1), by_shard
    assert_all_done(luigid, n_shards=6)

    # Each shard's parquet names the process that ran it (--workers 1: the luigi process).
    ran_by = {
        int(re.search(r"shard=(\d+)", params).group(1)): run.pid
        for run in runs.values()
        for family, params in ran(run.stderr)
        if family == "PerUserMusic"
    }
    writers = {}
    for path in sorted((tmp_path / "checkpoints" / "PerUserMusic").rglob("user_rows.parquet")):
        assert not any(part.startswith(".") for part in path.parts), f"temporary left: {path}"
        shard = int(re.search(r"shard=(\d+)", str(path)).group(1))
        writers[shard] = parquet_metadata(path)["written_by"]["pid"]
    assert writers == ran_by, (writers, ran_by)
    assert set(writers.values()) == {first.pid, second.pid}, f"one process got every shard: {seen}"

    # The deliverables equal a single process's.
    alone = builds(
        cwd=tmp_path / "alone",
        raw_dir=raw_dir,
        checkpoint_dir=tmp_path / "alone" / "checkpoints",
        output_dir=tmp_path / "alone" / "out",
        n_shards=6,
    ).run()
    assert alone.returncode == 0, alone.tail()
    assert_same_six(tmp_path / "alone" / "out", tmp_path / "out")


def test_failing_shard_fails_the_build_and_a_rerun_repairs_it(sample, luigid, builds, tmp_path):
    raw_dir = copy_raw(sample, tmp_path)
    folders = {
        "raw_dir": raw_dir,
        "checkpoint_dir": tmp_path / "checkpoints",
        "output_dir": tmp_path / "out",
        "workers": 2,
        "n_shards": 3,
        "scheduler": luigid,
    }
    failing = builds(
        module="tests.faulty_tasks", env={"MSD_FAIL_SHARD": "1"}, name="failing", **folders
    ).run()
    assert failing.returncode == 30, failing.tail()

    done = tasks_by_status(luigid, "DONE")
    assert sorted(shard_of(t) for t in done.values() if t["name"] == "PerUserMusic") == [0, 2]
    failed = tasks_by_status(luigid, "FAILED")
    assert [(t["name"], shard_of(t)) for t in failed.values()] == [("PerUserMusic", 1)], failed
    (task_id,) = failed
    error = luigid.api("fetch_error", task_id=task_id)["error"]
    assert "Traceback" in error and "injected failure in shard 1" in error, error
    not_done = {t["name"] for t in tasks_by_status(luigid, "PENDING").values()}
    assert {"UserTable", "Publish", "BuildAll"} <= not_done
    out = tmp_path / "out"
    assert not (out / "manifest.json").exists()
    assert not any((out / name).exists() for name in SIX)

    rerun = builds(name="rerun", **folders).run()
    assert rerun.returncode == 0, rerun.tail()
    shards = [params for family, params in ran(rerun.stderr) if family == "PerUserMusic"]
    assert len(shards) == 1 and shards[0].endswith("shard=1"), shards
    assert_all_done(luigid, n_shards=3)
    assert_deliverables_match(sample / "notebook", out, raw_dir)
