"""The checkpoints as Luigi targets: one class per folder layout, a named accessor per file.

A checkpoint is a folder, complete when its `_SUCCESS` marker is there. It is written through
`temporary()`, the folder-level `temporary_path()`: a checkpoint of the same class on a temporary
folder, renamed into place with the marker written last. Every folder also holds `stats.json`
(the task's counts) and `run.json` (its wall time and peak memory).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Self

import luigi
import numpy as np
import pyarrow as pa

from msd_tasks.formats.atomic import SUCCESS, atomic_folder
from msd_tasks.formats.parquet import column_array, read_parquet, run_concurrently, write_parquet
from msd_tasks.stages.join import JoinedPlays, Plays
from msd_tasks.stages.triplets import Triplets

# ImportTriplets: one row per line of the file, ids as codes into the two id files.
TRIPLET_CODES_SCHEMA = pa.schema(
    [
        pa.field("user_code", pa.int32(), nullable=False),  # row of user_ids.parquet
        pa.field("song_code", pa.int32(), nullable=False),  # row of song_ids.parquet
        pa.field("play_count", pa.int32(), nullable=False),
    ]
)
# JoinPlays plays: one row per surviving play (a line of a triplet file).
PLAYS_SCHEMA = pa.schema(
    [
        pa.field("user_index", pa.int32(), nullable=False),  # user sparse_index
        pa.field("song_index", pa.int32(), nullable=False),  # song sparse_index
        pa.field("play_count", pa.int32(), nullable=False),
        pa.field("is_train", pa.bool_(), nullable=False),  # from train_triplets.txt
    ]
)
# JoinPlays users: one row per user sparse_index.
USERS_SCHEMA = pa.schema(
    [
        pa.field("sparse_index", pa.int32(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
    ]
)
# JoinPlays songs: one row per song sparse_index.
SONGS_SCHEMA = pa.schema(
    [
        pa.field("sparse_index", pa.int32(), nullable=False),
        pa.field("song_id", pa.string(), nullable=False),
        pa.field("catalog_row", pa.int32(), nullable=False),  # row in CleanSongs' songs.parquet
    ]
)


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
        return read_parquet(self.path / "songs.parquet", columns)

    def write_songs(self, songs: pa.Table) -> None:
        write_parquet(songs, self.path / "songs.parquet")


class TripletsCheckpoint(Checkpoint):
    """ImportTriplets: plays.parquet (codes per line), user_ids.parquet, song_ids.parquet."""

    def triplets(self) -> Triplets:
        codes = read_parquet(self.path / "plays.parquet")
        return Triplets(
            user_code=column_array(codes, "user_code"),
            song_code=column_array(codes, "song_code"),
            play_count=column_array(codes, "play_count"),
            user_ids=self._ids("user_ids.parquet", "user_id"),
            song_ids=self._ids("song_ids.parquet", "song_id"),
        )

    def _ids(self, name: str, column: str) -> pa.Array:
        return read_parquet(self.path / name).column(column).combine_chunks()

    def write_triplets(self, triplets: Triplets) -> None:
        codes = pa.table(
            {
                "user_code": triplets.user_code,
                "song_code": triplets.song_code,
                "play_count": triplets.play_count,
            }
        )
        write_parquet(
            codes,
            self.path / "plays.parquet",
            TRIPLET_CODES_SCHEMA,
            compress=True,
            lines=len(triplets),
        )
        write_parquet(pa.table({"user_id": triplets.user_ids}), self.path / "user_ids.parquet")
        write_parquet(pa.table({"song_id": triplets.song_ids}), self.path / "song_ids.parquet")


class JoinedCheckpoint(Checkpoint):
    """JoinPlays: users.parquet and songs.parquet (one row per sparse_index), hidden.parquet
    and the visible plays of each user-hash shard, visible/shard-NNNN.parquet (PLAYS_SCHEMA)."""

    def users(self, columns: list[str] | None = None) -> pa.Table:
        return read_parquet(self.path / "users.parquet", columns)

    def songs(self, columns: list[str] | None = None) -> pa.Table:
        return read_parquet(self.path / "songs.parquet", columns)

    def user_ids(self) -> pa.Array:
        return self.users(["user_id"]).column("user_id").combine_chunks()

    def song_ids(self) -> pa.Array:
        return self.songs(["song_id"]).column("song_id").combine_chunks()

    def shape(self) -> tuple[int, int]:
        """(songs, users): the shape of the play matrices."""
        return self.songs(["sparse_index"]).num_rows, self.users(["sparse_index"]).num_rows

    def visible(self, shard: int) -> Plays:
        return _read_plays(self._shard_path(shard))

    def hidden(self) -> Plays:
        return _read_plays(self.path / "hidden.parquet")

    def _shard_path(self, shard: int) -> Path:
        return self.path / "visible" / f"shard-{shard:04d}.parquet"

    def write_joined(self, joined: JoinedPlays, shards: np.ndarray, n_shards: int) -> None:
        """Everything at once, on two threads: `shards` is the shard of each user."""
        users = pa.table(
            {
                "sparse_index": np.arange(len(joined.user_ids), dtype=np.int32),
                "user_id": joined.user_ids,
            }
        )
        songs = pa.table(
            {
                "sparse_index": np.arange(len(joined.song_ids), dtype=np.int32),
                "song_id": joined.song_ids,
                "catalog_row": joined.song_catalog_rows,
            }
        )
        (self.path / "visible").mkdir()
        play_shards = shards[joined.visible.user_index]
        by_shard = np.argsort(play_shards, kind="stable")  # a radix sort; plays keep their order
        plays_per_shard = np.bincount(play_shards, minlength=n_shards)
        ends = np.cumsum(plays_per_shard)
        starts = ends - plays_per_shard

        def write_shard(shard: int) -> None:
            rows = by_shard[starts[shard] : ends[shard]]
            table = _plays_table(joined.visible.subset(rows))
            write_parquet(table, self._shard_path(shard), PLAYS_SCHEMA, compress=True)

        hidden = _plays_table(joined.hidden)
        run_concurrently(
            [
                partial(write_parquet, users, self.path / "users.parquet", USERS_SCHEMA),
                partial(write_parquet, songs, self.path / "songs.parquet", SONGS_SCHEMA),
                partial(
                    write_parquet, hidden, self.path / "hidden.parquet", PLAYS_SCHEMA, compress=True
                ),
                *[partial(write_shard, shard) for shard in range(n_shards)],
            ]
        )


class UserRowsCheckpoint(Checkpoint):
    """PerUserMusic: user_rows.parquet, the user_df rows of one shard (USER_ROWS_SCHEMA)."""

    @property
    def rows_path(self) -> Path:
        return self.path / "user_rows.parquet"

    def rows(self) -> pa.Table:
        return read_parquet(self.rows_path)


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


def _plays_table(plays: Plays) -> pa.Table:
    return pa.table(
        {
            "user_index": plays.user_index,
            "song_index": plays.song_index,
            "play_count": plays.play_count,
            "is_train": plays.is_train,
        }
    )


def _read_plays(path: Path) -> Plays:
    table = read_parquet(path)
    return Plays(
        user_index=column_array(table, "user_index"),
        song_index=column_array(table, "song_index"),
        play_count=column_array(table, "play_count"),
        is_train=column_array(table, "is_train"),
    )


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())
