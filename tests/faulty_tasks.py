"""A test-only Luigi module: the real msd_tasks graph, with faults injected from the environment.

`luigi --module tests.faulty_tasks BuildAll ...` (PYTHONPATH = the repo root) schedules exactly
the tasks of `luigi --module msd_tasks BuildAll ...` (same families, parameters and checkpoint
paths); only what happens inside PerUserMusic changes, as the environment says:

- MSD_FAIL_SHARD=K: PerUserMusic(shard=K) raises RuntimeError("injected failure in shard K")
  from inside `user_rows`, midway through its run (after its first status messages).
- MSD_MEET_DIR=D: every PerUserMusic shard, before it starts, leaves a file named by its process
  id in D and waits until files of two processes are there (at most 120 s): two `luigi`
  processes on one luigid then both run shards, whatever the timing of their start.
- MSD_SLOW_SHARDS=K,L,... (or "all") with MSD_SLOW_SECONDS=S: those shards sleep S seconds right
  after writing user_rows.parquet into their temporary checkpoint folder, before the folder gets
  `_SUCCESS` and is renamed into place - a wide window for a kill to land mid-checkpoint.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

import msd_tasks

__all__ = ["msd_tasks"]

# The module defining PerUserMusic, and the modules its build() imports `user_rows` and
# `write_parquet` from, when it runs: patched there, they are the ones it calls.
tasks = sys.modules[msd_tasks.PerUserMusic.__module__]
users = importlib.import_module("msd_tasks.stages.users")
parquet = importlib.import_module("msd_tasks.formats.parquet")

# The shard of the PerUserMusic running in this process (each task runs in its own process with
# --workers > 1, and in the luigi process itself, one after the other, with --workers 1).
_running: dict[str, int | None] = {"shard": None}

_original_run = tasks.PerUserMusic.run
_original_user_rows = users.user_rows
_original_write_parquet = parquet.write_parquet


def _meet_the_other_process() -> None:
    folder = Path(os.environ["MSD_MEET_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # polling for the other process's file: the event waited for


def _run(self):
    if os.environ.get("MSD_MEET_DIR"):
        _meet_the_other_process()
    _running["shard"] = self.shard
    try:
        return _original_run(self)
    finally:
        _running["shard"] = None


def _user_rows(*args, **kwargs):
    fail = os.environ.get("MSD_FAIL_SHARD", "")
    if fail and _running["shard"] == int(fail):
        raise RuntimeError(f"injected failure in shard {fail}")
    return _original_user_rows(*args, **kwargs)


def _slow(shard: int | None) -> bool:
    shards = os.environ.get("MSD_SLOW_SHARDS", "")
    if shard is None or not shards:
        return False
    return shards == "all" or shard in {int(part) for part in shards.split(",")}


def _write_parquet(table, path, *args, **kwargs):
    _original_write_parquet(table, path, *args, **kwargs)
    if Path(path).name == "user_rows.parquet" and _slow(_running["shard"]):
        time.sleep(float(os.environ.get("MSD_SLOW_SECONDS", "1")))


tasks.PerUserMusic.run = _run
users.user_rows = _user_rows
parquet.write_parquet = _write_parquet
