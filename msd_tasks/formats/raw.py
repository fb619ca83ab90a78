"""The raw input files: their layout under `raw_dir`, their sources and their fingerprints.

The triplet files may also be there as downloaded: `train_triplets.txt.zip`, the challenge's
`EvalDataYear1MSDWebsite.zip`, or any triplet file with `.gz` or `.zip` added to its name. They
are read as streams (`RawSource`); fingerprints and digests cover the file on disk, the archive.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from msd_tasks.errors import InputError

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
    "http://millionsongdataset.com/challenge/ (EvalDataYear1MSDWebsite.zip, used as it is)",
    "(any triplet file)": "may also be .gz or .zip, as downloaded",
    "sid_mismatches.txt (optional)": "http://millionsongdataset.com/blog/12-2-12-fixing-matching-errors/",
}


# The challenge's download: visible and hidden are members of it.
CHALLENGE_ARCHIVE = "EvalDataYear1MSDWebsite.zip"
# First bytes of compressed files, to name them when they come under a plain name.
COMPRESSED_MAGIC = {
    b"\x1f\x8b": ("gzip", ".gz"),
    b"PK\x03\x04": ("zip", ".zip"),
    b"BZh": ("bzip2", None),
    b"\xfd7zXZ\x00": ("xz", None),
    b"\x28\xb5\x2f\xfd": ("zstd", None),
}


@dataclass(frozen=True)
class RawSource:
    """Where a raw file's text is: `path` itself, or the member named `member` (found by its
    base name, whatever folder it is in) of the zip archive `path`, or the gzip file `path`."""

    path: Path
    compression: str | None = None  # None, "gzip" or "zip"
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.path} (member {self.member})" if self.member else str(self.path)

    def open(self) -> BinaryIO:
        """The uncompressed bytes, as a stream; a plain file that is compressed is refused."""
        from msd_tasks.formats import streams  # isal: only when an archive is read

        if self.compression == "gzip":
            return streams.open_gzip(self.path)
        if self.compression == "zip":
            with zipfile.ZipFile(self.path) as archive:
                return streams.open_zip_member(self.path, self._member_info(archive))
        refuse_compressed(self.path)
        return open(self.path, "rb")

    def text_bytes(self) -> int:
        """The uncompressed size (for gzip, the size modulo 4 GiB its trailer records)."""
        if self.compression == "gzip":
            with open(self.path, "rb") as file:
                file.seek(-4, os.SEEK_END)
                return int.from_bytes(file.read(4), "little")
        if self.compression == "zip":
            with zipfile.ZipFile(self.path) as archive:
                return self._member_info(archive).file_size
        return self.path.stat().st_size

    def _member_info(self, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
        infos = archive.infolist()
        found = [info for info in infos if info.filename.rsplit("/", 1)[-1] == self.member]
        if len(found) != 1:
            names = ", ".join(info.filename for info in infos) or "none"
            raise InputError(
                self.path,
                "its members",
                f"one member named {self.member}",
                f"{len(found)} among: {names}",
            )
        return found[0]


def raw_source(raw_dir: str | Path, key: str) -> RawSource:
    """The first of a raw file's forms that is there: the file as named in RAW_FILES, then, for
    triplet files, with `.gz` or `.zip` added, then inside EvalDataYear1MSDWebsite.zip. When
    none is there, the plain file (and the error names it)."""
    name = {**RAW_FILES, **OPTIONAL_FILES}[key]
    forms = [RawSource(Path(raw_dir) / name)]
    if key in TRIPLET_KINDS:
        base = name.rsplit("/", 1)[-1]
        forms += [
            RawSource(Path(raw_dir) / f"{name}.gz", "gzip"),
            RawSource(Path(raw_dir) / f"{name}.zip", "zip", base),
        ]
        if key != "train":
            forms.append(RawSource(Path(raw_dir) / CHALLENGE_ARCHIVE, "zip", base))
    return next((form for form in forms if form.path.exists()), forms[0])


def raw_path(raw_dir: str | Path, key: str) -> Path:
    """The file on disk that holds a raw file: itself or its archive."""
    return raw_source(raw_dir, key).path


def raw_name(raw_dir: str | Path, key: str) -> str:
    """That file's name relative to raw_dir, as manifests record it."""
    return raw_path(raw_dir, key).relative_to(raw_dir).as_posix()


def refuse_compressed(path: Path) -> None:
    """Fail on a compressed file under a plain name, saying what it is and what to call it."""
    with open(path, "rb") as file:
        head = file.read(8)
    for magic, (kind, suffix) in COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            rename = f"name it {path.name}{suffix}" if suffix else "decompress it"
            raise InputError(path, "its first bytes", "a plain file", f"{kind} data: {rename}")


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
    raw_dir: Path, checkpoint_dir: Path, identity: dict, stats: dict, inputs: dict[str, dict]
) -> None:
    """After a successful build: the sha256 of each raw file it read (`inputs`, by file name
    under raw_dir), with its size:mtime and identity, for the next build's planned_fingerprints."""
    record_path = Path(checkpoint_dir) / DIGESTS_FILE
    record = _read_record(record_path)
    for key in {**RAW_FILES, **OPTIONAL_FILES}:
        name = raw_name(raw_dir, key)
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
    return [path for path in paths if not path.exists()]
