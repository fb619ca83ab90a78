"""The raw input files: their layout under `raw_dir`, their sources and their fingerprints."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
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
    """The file's name under raw_dir's layout is the caller's; here its bytes and sha256."""
    with open(path, "rb") as file:
        sha256 = hashlib.file_digest(file, "sha256").hexdigest()
    return {"bytes": path.stat().st_size, "sha256": sha256}


def digests_meanwhile(paths: dict[str, Path]) -> Future:
    """The file_digest of each path, taken on a thread of its own while the caller reads the
    files (hashlib releases the GIL): a Future of {key: digest}."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raw digests")
    future = pool.submit(lambda: {key: file_digest(path) for key, path in paths.items()})
    pool.shutdown(wait=False)
    return future


def digest(*parts: object) -> str:
    """A short stable digest of values, for checkpoint paths."""
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def missing_files(raw_dir: str | Path) -> list[Path]:
    paths = [raw_path(raw_dir, key) for key in RAW_FILES]
    return [path for path in paths if not os.path.exists(path)]
