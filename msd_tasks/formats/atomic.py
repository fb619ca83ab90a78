"""Atomic writes of checkpoint files and folders, and the clean-up of what killed writers left.

Nothing is ever written at a final path: files go to a temporary sibling that is renamed into
place when complete, folders get a `_SUCCESS` marker written last and are renamed as a whole.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil

SUCCESS = "_SUCCESS"


def _temporary_sibling(path: Path) -> Path:
    # A leading dot keeps half-written files out of pyarrow datasets and most globs; host and
    # pid let a later run tell a killed writer's leftovers from a live writer's work.
    owner = f"{socket.gethostname()}-{os.getpid()}"
    return path.with_name(f".{path.name}.tmp-{owner}-{uuid.uuid4().hex[:8]}")


def _writes_since(pid: int, modified: float) -> bool:
    """Whether process `pid` runs and is old enough to have written something at `modified`.

    A SIGKILLed writer stays a zombie until reaped, and a pid can be reused by a newer process:
    neither counts as the writer still at work.
    """
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= modified
    except psutil.NoSuchProcess:
        return False


def remove_orphan_temporaries(root: Path) -> list[Path]:
    """Remove temporaries under `root` left by writers on this host that no longer run."""
    pattern = re.compile(rf"^\..*\.tmp-{re.escape(socket.gethostname())}-(\d+)-[0-9a-f]{{8}}$")
    removed = []
    for path in Path(root).rglob(".*.tmp-*"):
        match = pattern.match(path.name)
        if match and not _writes_since(int(match.group(1)), path.stat().st_mtime):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on failure it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: Path, marker: bool = True) -> Iterator[Path]:
    """Yield a temporary folder; on success it gets `_SUCCESS` (unless `marker` is False) and
    replaces `path` as a whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    temporary.mkdir()
    try:
        yield temporary
        if marker:
            (temporary / SUCCESS).write_text("")
        previous = _temporary_sibling(path)
        if path.exists():
            os.rename(path, previous)
        os.rename(temporary, path)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def prune_generations(checkpoint_dir: Path, keep: int, in_use: set[Path]) -> list[Path]:
    """Remove old checkpoint generations; returns what was removed.

    A generation is a folder holding `_SUCCESS`; generations of the same task and parameters
    share a parent. Per parent, the ones in use are kept, plus the newest others up to `keep`.
    """
    by_parent: dict[Path, list[Path]] = {}
    for marker in Path(checkpoint_dir).rglob(SUCCESS):
        by_parent.setdefault(marker.parent.parent, []).append(marker.parent)
    in_use = {Path(path).resolve() for path in in_use}
    removed = []
    for generations in by_parent.values():
        spare = [g for g in generations if g.resolve() not in in_use]
        spare.sort(key=lambda folder: (folder / SUCCESS).stat().st_mtime_ns, reverse=True)
        room = max(keep - (len(generations) - len(spare)), 0)
        for folder in spare[room:]:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
