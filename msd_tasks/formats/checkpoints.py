"""The checkpoints as Luigi targets: one class per folder layout, a named accessor per file.

A checkpoint is a folder, complete when its `_SUCCESS` marker is there. It is written through
`temporary()`, the folder-level `temporary_path()`: a checkpoint of the same class on a temporary
folder, renamed into place with the marker written last. Every folder also holds `stats.json`
(the task's counts) and `run.json` (its wall time and peak memory).

Planning a build only asks whether checkpoints exist, so this module is plain Python: the files'
parquet layouts (pyarrow) are in layouts.py, imported when a checkpoint is read or written.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

import luigi

from msd_tasks.formats.atomic import SUCCESS, atomic_folder

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from msd_tasks.stages.join import JoinedPlays, Plays
    from msd_tasks.stages.triplets import Triplets


def layouts():
    """The parquet layouts: imported by the tasks that read or write checkpoints, on first use."""
    from msd_tasks.formats import layouts

    return layouts


class Checkpoint(luigi.Target):
    """A checkpoint folder; `exists()` when it was written whole."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def exists(self) -> bool:
        return (self.path / SUCCESS).is_file()

    @contextlib.contextmanager
    def temporary(self) -> Iterator[Self]:
        """This checkpoint on a temporary folder; on success it replaces this one, marker last."""
        with atomic_folder(self.path) as folder:
            yield type(self)(folder)

    def stats(self) -> dict:
        return _read_json(self.path / "stats.json")

    def write_stats(self, stats: dict) -> None:
        (self.path / "stats.json").write_text(json.dumps(stats, indent=1))

    def run(self) -> dict | None:
        """Wall time and peak memory of the run that wrote it (None for older checkpoints)."""
        path = self.path / "run.json"
        return _read_json(path) if path.is_file() else None

    def write_run(self, run: dict) -> None:
        (self.path / "run.json").write_text(json.dumps(run, indent=1))


class SongsCheckpoint(Checkpoint):
    """CleanSongs: songs.parquet, one row per song_id, text decoded, plus `genre`."""

    def songs(self, columns: list[str] | None = None) -> pa.Table:
        return layouts().read_parquet(self.path / "songs.parquet", columns)

    def write_songs(self, songs: pa.Table) -> None:
        layouts().write_parquet(songs, self.path / "songs.parquet")


class TripletsCheckpoint(Checkpoint):
    """ImportTriplets: plays.parquet (codes per line), user_ids.parquet, song_ids.parquet."""

    def triplets(self) -> Triplets:
        return layouts().read_triplets(self.path)

    def write_triplets(self, triplets: Triplets) -> None:
        layouts().write_triplets(self.path, triplets)


class JoinedCheckpoint(Checkpoint):
    """JoinPlays: users.parquet and songs.parquet (one row per sparse_index), hidden.parquet
    and the visible plays of each user-hash shard, visible/shard-NNNN.parquet (PLAYS_SCHEMA)."""

    def users(self, columns: list[str] | None = None) -> pa.Table:
        return layouts().read_parquet(self.path / "users.parquet", columns)

    def songs(self, columns: list[str] | None = None) -> pa.Table:
        return layouts().read_parquet(self.path / "songs.parquet", columns)

    def user_ids(self) -> pa.Array:
        return self.users(["user_id"]).column("user_id").combine_chunks()

    def song_ids(self) -> pa.Array:
        return self.songs(["song_id"]).column("song_id").combine_chunks()

    def shape(self) -> tuple[int, int]:
        """(songs, users): the shape of the play matrices."""
        return self.songs(["sparse_index"]).num_rows, self.users(["sparse_index"]).num_rows

    def visible(self, shard: int) -> Plays:
        return layouts().read_plays(self._shard_path(shard))

    def hidden(self) -> Plays:
        return layouts().read_plays(self.path / "hidden.parquet")

    def _shard_path(self, shard: int) -> Path:
        return self.path / "visible" / f"shard-{shard:04d}.parquet"

    def write_joined(self, joined: JoinedPlays, shards: np.ndarray, n_shards: int) -> None:
        """Everything at once, on two threads: `shards` is the shard of each user."""
        layouts().write_joined(self.path, self._shard_path, joined, shards, n_shards)


class UserRowsCheckpoint(Checkpoint):
    """PerUserMusic: user_rows.parquet, the user_df rows of one shard (USER_ROWS_SCHEMA)."""

    @property
    def rows_path(self) -> Path:
        return self.path / "user_rows.parquet"

    def rows(self) -> pa.Table:
        return layouts().read_parquet(self.rows_path)


class DeliverablesCheckpoint(Checkpoint):
    """Files to publish, and checksums.json: the bytes and sha256 of each, taken when written.

    It only exists while every file has the size recorded: a file deleted or cut since makes
    the task that wrote it run again, instead of Publish failing on every run.
    """

    def __init__(self, path: Path | str, names: tuple[str, ...]) -> None:
        super().__init__(path)
        self.names = names

    @contextlib.contextmanager
    def temporary(self) -> Iterator[Self]:
        with atomic_folder(self.path) as folder:
            yield type(self)(folder, self.names)

    def file(self, name: str) -> Path:
        if name not in self.names:
            raise KeyError(f"{name} is not one of {self.names}")
        return self.path / name

    def checksums(self) -> dict[str, dict]:
        """Bytes and sha256 of each published file, keyed by its path in the checkpoint."""
        return _read_json(self.path / "checksums.json")

    def write_checksums(self, checksums: dict[str, dict]) -> None:
        (self.path / "checksums.json").write_text(json.dumps(checksums, indent=1))

    def exists(self) -> bool:
        if not super().exists():
            return False
        try:
            recorded = self.checksums()
            covered = {name.split("/", 1)[0] for name in recorded}
            return set(self.names) <= covered and all(
                (self.path / name).stat().st_size == entry["bytes"]
                for name, entry in recorded.items()
            )
        except (OSError, ValueError, KeyError, TypeError):
            return False


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())
