"""Checking a published build against its manifest.json: `python -m msd_tasks verify`.

Every file the manifest lists must be there with its recorded size and sha256, and the manifest
must say the set is complete. With `inputs`, the raw files are hashed again and compared with
the digests the build recorded as it read them: this catches an edit that kept a file's size
and mtime, which the rebuild check (size and mtime first) does not see.
"""

from __future__ import annotations

import json
from pathlib import Path

from msd_tasks.formats.publish import sha256


def problems(output_dir: Path, raw_dir: Path | None = None) -> list[str]:
    """What does not match the manifest in `output_dir` (and, given `raw_dir`, in the raw
    files); empty when everything does."""
    manifest_path = Path(output_dir) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        return [f"{manifest_path}: missing; nothing was published here"]
    except ValueError as error:
        return [f"{manifest_path}: not JSON ({error})"]
    found = []
    if manifest.get("state") != "complete":
        found.append(
            f"{manifest_path}: state is {manifest.get('state')!r}, not 'complete' "
            "(a publish was interrupted; the next build finishes it)"
        )
    files = manifest.get("files", {})
    if not files:
        found.append(f"{manifest_path}: lists no files")
    for name, recorded in sorted(files.items()):
        found += _mismatch(Path(output_dir) / name, recorded)
    if raw_dir is not None:
        inputs = manifest.get("inputs", {})
        if not inputs:
            found.append(f"{manifest_path}: records no input digests (built before they were)")
        for name, recorded in sorted(inputs.items()):
            found += _mismatch(Path(raw_dir) / name, recorded)
    return found


def _mismatch(path: Path, recorded: dict) -> list[str]:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [f"{path}: missing"]
    if size != recorded["bytes"]:
        return [f"{path}: {size} bytes, the manifest says {recorded['bytes']}"]
    digest = sha256(path)
    if digest != recorded["sha256"]:
        return [f"{path}: sha256 {digest}, the manifest says {recorded['sha256']}"]
    return []
