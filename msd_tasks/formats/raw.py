"""The raw input files: their layout under `raw_dir`, their sources and their fingerprints."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

RAW_FILES = {
    "msd": "full_msd_with_audio_features.h5",
    "genres": "msd-MAGD-genreAssignment.cls",
    "train": "train_triplets.txt",
    "visible": "EvalDataYear1MSDWebsite/year1_test_triplets_visible.txt",
    "hidden": "EvalDataYear1MSDWebsite/year1_test_triplets_hidden.txt",
}
TRIPLET_KINDS = ("train", "visible", "hidden")
# Read only when present and asked for (BuildAll --drop-mismatches).
OPTIONAL_FILES = {"mismatches": "sid_mismatches.txt"}

SOURCES = {
    "full_msd_with_audio_features.h5": "MSD metadata joined with Spotify audio features "
    "(the recommender project's own extract of http://millionsongdataset.com)",
    "msd-MAGD-genreAssignment.cls": "http://www.ifs.tuwien.ac.at/mir/msd/partitions/"
    "msd-MAGD-genreAssignment.cls",
    "train_triplets.txt": "Echo Nest Taste Profile subset, http://millionsongdataset.com/tasteprofile/",
    "EvalDataYear1MSDWebsite/": "MSD Challenge year-1 test split, "
    "http://millionsongdataset.com/challenge/ (EvalDataYear1MSDWebsite.zip)",
    "sid_mismatches.txt (optional)": "http://millionsongdataset.com/blog/12-2-12-fixing-matching-errors/",
}


def raw_path(raw_dir: str | Path, key: str) -> Path:
    return Path(raw_dir) / {**RAW_FILES, **OPTIONAL_FILES}[key]


def file_fingerprint(path: Path) -> str:
    """Size and mtime: cheap enough for every run, and they change whenever a file is rewritten."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def fingerprints(raw_dir: str | Path) -> dict[str, str]:
    return {
        key: file_fingerprint(raw_path(raw_dir, key)) for key in {**RAW_FILES, **OPTIONAL_FILES}
    }


def file_digest(path: Path) -> dict[str, object]:
    """The file's size in bytes and the sha256 of its content."""
    with open(path, "rb") as file:
        sha256 = hashlib.file_digest(file, "sha256").hexdigest()
    return {"bytes": path.stat().st_size, "sha256": sha256}


# In checkpoint_dir: per raw file, the size:mtime last seen, the sha256 of its content, and the
# fingerprint ("identity") the checkpoints built from that content carry.
DIGESTS_FILE = "raw_digests.json"


def planned_fingerprints(raw_dir: Path, checkpoint_dir: Path) -> tuple[dict, dict]:
    """(identity, stats) of the raw files for a build: `stats` their size:mtime now; `identity`
    what the checkpoints digest, which follows content, not timestamps.

    A file whose size:mtime is the one last recorded keeps its recorded identity. One whose
    size or mtime changed is hashed: the same sha256 as recorded (a `touch`, a copy) keeps the
    identity, and the record takes the new size:mtime; new content gets its size:mtime as its
    identity, recorded with its sha256 by the next successful build. A file never recorded
    (a first build) is not hashed here: its size:mtime is its identity.
    """
    stats = fingerprints(raw_dir)
    record_path = Path(checkpoint_dir) / DIGESTS_FILE
    record = _read_record(record_path)
    identity, touched = {}, False
    for key, stat in stats.items():
        entry = record.get(key)
        if entry is None or stat == "missing":
            identity[key] = stat
        elif entry["stat"] == stat:
            identity[key] = entry["identity"]
        elif file_digest(raw_path(raw_dir, key))["sha256"] == entry["sha256"]:
            identity[key] = entry["identity"]
            record[key] = {**entry, "stat": stat}
            touched = True
        else:
            identity[key] = stat
    if touched:
        _write_record(record_path, record)
    return identity, stats


def record_digests(
    checkpoint_dir: Path, identity: dict, stats: dict, inputs: dict[str, dict]
) -> None:
    """After a successful build: the sha256 of each raw file it read (`inputs`, by file name),
    with its size:mtime and identity, for the next build's planned_fingerprints."""
    record_path = Path(checkpoint_dir) / DIGESTS_FILE
    record = _read_record(record_path)
    names = {**RAW_FILES, **OPTIONAL_FILES}
    for key, name in names.items():
        if name in inputs and stats.get(key, "missing") != "missing":
            entry = {
                "stat": stats[key],
                "identity": identity[key],
                "sha256": inputs[name]["sha256"],
            }
            record[key] = entry
    _write_record(record_path, record)


def _read_record(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write_record(path: Path, record: dict) -> None:
    """Replace the record; a failure (a full disk) only costs a hash next time, so it is
    logged, not raised: it must not fail a build whose deliverables are published."""
    from msd_tasks.formats.atomic import atomic_file  # atomic imports nothing of ours

    try:
        with atomic_file(path) as temporary:
            temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
    except OSError as error:
        logging.getLogger("luigi-interface").warning("Could not record raw digests: %s", error)


def digest(*parts: object) -> str:
    """A short stable digest of values, for checkpoint paths."""
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def missing_files(raw_dir: str | Path) -> list[Path]:
    paths = [raw_path(raw_dir, key) for key in RAW_FILES]
    return [path for path in paths if not os.path.exists(path)]
