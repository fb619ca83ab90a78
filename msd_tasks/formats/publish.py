"""Put a finished build's deliverables into the output folder, then write manifest.json last.

Every file (and the report folder) is first linked or copied into a staging folder beside the
outputs, so that the switch is a handful of renames; the manifest, written after them, names the
build they belong to. A failed or killed build never gets that far: the previous set stays.
SIGINT and SIGTERM wait while the set is switched (msd_tasks/interrupts.py): an interrupted
build leaves the previous set, or the new one complete.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from pathlib import Path

from msd_tasks.formats.atomic import atomic_file
from msd_tasks.graph import interrupts


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path, names: list[str] | tuple[str, ...]) -> dict[str, dict]:
    """Bytes and sha256 of every file under `folder/<name>`, keyed by the path in `folder`."""
    files = {}
    for name in names:
        top = folder / name
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            if path.is_file():
                entry = {"bytes": path.stat().st_size, "sha256": sha256(path)}
                files[path.relative_to(folder).as_posix()] = entry
    return files


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


def _check_sizes(staging: Path, known: dict[str, dict]) -> None:
    staged = {
        path.relative_to(staging).as_posix(): path.stat().st_size
        for path in staging.rglob("*")
        if path.is_file()
    }
    expected = {name: entry["bytes"] for name, entry in known.items()}
    if staged != expected:
        changed = sorted(set(staged.items()) ^ set(expected.items()))
        raise ValueError(
            f"the files to publish differ from those checksummed when they were written "
            f"(name, bytes): {changed[:5]}; a checkpoint was modified, so rebuild it"
        )


def _write_manifest(output_dir: Path, manifest: dict) -> None:
    with atomic_file(output_dir / "manifest.json") as temporary:
        temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _sweep_leftovers(output_dir: Path) -> None:
    """Staging and replaced folders of earlier publishes that were killed half-way."""
    for leftover in [*output_dir.glob(".staging-*"), *output_dir.glob(".*.old")]:
        shutil.rmtree(leftover, ignore_errors=True)


def is_published(output_dir: Path, build: str) -> bool:
    """Whether `output_dir`'s manifest.json names `build`, says complete, and every file it
    lists is there."""
    try:
        manifest = json.loads((Path(output_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        manifest.get("build") == build
        and manifest.get("state") == "complete"
        and all((Path(output_dir) / name).is_file() for name in manifest.get("files", {}))
    )


def publish(
    sources: dict[str, Path],
    output_dir: Path,
    build: str,
    details: dict,
    known_checksums: dict[str, dict] | None = None,
) -> dict:
    """Replace `output_dir/<name>` by each source file or folder, then write the manifest.

    Everything slow (linking or copying, and checksums unless they are known) happens in the
    staging folder. Only the renames touch the published set; just before them the manifest
    says `"state": "publishing"`, so a consumer (or the next run, which finishes the job) can
    tell a set that is being switched from a complete one. `known_checksums` (from
    `checksums()` when the files were written) spares hashing them again; the staged files must
    match their names and sizes.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(output_dir)
    staging = output_dir / f".staging-{build}"
    manifest = {"build": build, **details}
    try:
        staging.mkdir()
        for name, source in sources.items():
            _link_or_copy(source, staging / name)
        if known_checksums is None:
            manifest["files"] = checksums(staging, list(sources))
        else:
            _check_sizes(staging, known_checksums)
            manifest["files"] = dict(sorted(known_checksums.items()))
        interrupts.check()  # an interrupted build publishes nothing
        # An interrupt waits for the end of the switch, and is raised then: the set is complete.
        with interrupts.deferred():
            _write_manifest(output_dir, {**manifest, "state": "publishing"})
            for name in sources:
                _replace(staging / name, output_dir / name)
            shutil.rmtree(staging, ignore_errors=True)  # emptied by the renames
            manifest["state"] = "complete"
            finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            manifest["finished_at"] = finished
            _write_manifest(output_dir, manifest)
    finally:
        # Luigi terminates its task processes on an interrupt: a second signal would leave this
        # half done.
        with interrupts.deferred():
            shutil.rmtree(staging, ignore_errors=True)
    return manifest
