"""Put a finished build's deliverables into the output folder, then write manifest.json last.

Every file (and the report folder) is first linked or copied into a staging folder beside the
outputs, so that the switch is a handful of renames; the manifest, written after them, names the
build they belong to. A failed or killed build never gets that far: the previous set stays.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from pathlib import Path

from msd_tasks.checkpoints import atomic_file


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _link_or_copy(source: Path | str, target: Path | str) -> None:
    source = Path(source)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_or_copy)
        return
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(source, target)


def _replace(staged: Path, target: Path) -> None:
    """Move `staged` to `target`; a folder replaces the old one whole (two renames)."""
    if staged.is_dir() and target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
        os.rename(staged, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, target)


def publish(sources: dict[str, Path], output_dir: Path, build: str, details: dict) -> dict:
    """Replace `output_dir/<name>` by each source file or folder, then write the manifest."""
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = output_dir / f".staging-{build}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for name, source in sources.items():
            _link_or_copy(source, staging / name)
        files = {
            str(path.relative_to(staging)): {"bytes": path.stat().st_size, "sha256": sha256(path)}
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        for name in sources:
            _replace(staging / name, output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = {
        "build": build,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "files": files,
        **details,
    }
    with atomic_file(output_dir / "manifest.json") as temporary:
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
