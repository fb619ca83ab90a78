"""The report's numbers: what it reads from the deliverables, and every number it shows."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from msd_tasks.report.summary import BuildSummary
from msd_tasks.stages.music import DIMENSIONS
from msd_tasks.stages.users import in_sparse_index_order

DATA_FILES = ("user_df.parquet", "song_df.parquet", "train_sparse.npz")
NO_GENRE = "(none)"
# Shown decimals of each distribution statistic (0: an integer).
DISTRIBUTION_DECIMALS = {
    "count": 0,
    "zeros": 0,
    "min": 0,
    "median": 1,
    "mean": 2,
    "max": 0,
    "total": 0,
}
MUSIC_DECIMALS = {"count": 0, "mean": 3, "std": 3, "min": 3, "median": 3, "max": 3}
CORRELATION_DECIMALS = 3
DISTRIBUTIONS = {  # key: (title, x label, y label)
    "plays_per_user": ("Plays per user", "num_songs of user_df", "users"),
    "listeners_per_song": ("Listeners per song", "users with a train play of the song", "songs"),
    "play_counts": ("Play counts", "play_count of a train_sparse entry", "entries"),
}

Sources = Path | str | list[Path]  # one file, or the files of its parts


class ReportError(ValueError):
    """Deliverables the report cannot be built from."""


@dataclass
class Numbers:
    """The page's data-derived numbers (key -> value) and the decimals each is shown with."""

    values: dict[str, int | float | None] = field(default_factory=dict)
    decimals: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, value: float | None, decimals: int = 0) -> None:
        if key in self.values:
            raise ReportError(f"two numbers of the report have the key {key!r}")
        if value is None or not np.isfinite(value):
            self.values[key] = None
        else:
            self.values[key] = (
                round(float(value)) if decimals == 0 else round(float(value), decimals)
            )
        self.decimals[key] = decimals

    def shown(self, key: str) -> str:
        value = self.values[key]
        return "n/a" if value is None else f"{value:,.{self.decimals[key]}f}"

    def cell(self, key: str) -> str:
        return f'<td class="num" data-key="{html.escape(key)}">{html.escape(self.shown(key))}</td>'


@dataclass
class Deliverables:
    """What the report reads from the deliverables: plain arrays, nothing downsampled."""

    plays_per_user: np.ndarray
    listeners_per_song: np.ndarray
    play_counts: np.ndarray
    genres: list[tuple[str, int]]  # most songs first
    music: np.ndarray  # users x 5, NaN where a user has no MUSIC score


def data_sources(where: Path | Mapping[str, Sources], build: str) -> dict[str, list[Path]]:
    """The data files to report on: a folder of deliverables (whose manifest.json, if there is
    one, must name `build`) or a mapping of file name to path, or to the paths of its parts
    (user_df.parquet as the user rows of the shards). Raises ReportError if one is missing."""
    if isinstance(where, Mapping):
        sources = {name: as_paths(where[name]) for name in DATA_FILES if name in where}
    else:
        folder = Path(where)
        sources = {name: [folder / name] for name in DATA_FILES}
        manifest = folder / "manifest.json"
        if manifest.is_file():
            published = json.loads(manifest.read_text()).get("build")
            if published != build:
                raise ReportError(f"{folder} holds build {published!r}, not {build!r}")
    absent = [name for name in DATA_FILES if not sources.get(name)]
    absent += [
        str(path) for name in DATA_FILES for path in sources.get(name, []) if not path.is_file()
    ]
    if absent:
        raise ReportError(f"{where}: missing deliverables {', '.join(absent)}")
    if len(sources["song_df.parquet"]) != 1 or len(sources["train_sparse.npz"]) != 1:
        raise ReportError("song_df.parquet and train_sparse.npz are single files")
    return sources


def as_paths(source: Sources) -> list[Path]:
    return [Path(source)] if isinstance(source, str | Path) else [Path(path) for path in source]


def read_user_rows(paths: list[Path]) -> pa.Table:
    """num_songs and MUSIC per user, in sparse_index order whether read whole or in parts."""
    columns = ["sparse_index", "num_songs", *DIMENSIONS]
    # The same order as user_df, so that float sums come out the same.
    return in_sparse_index_order([pq.read_table(path, columns=columns) for path in paths])


def read_deliverables(sources: Mapping[str, list[Path]]) -> Deliverables:
    users = read_user_rows(sources["user_df.parquet"])
    genres = pq.read_table(sources["song_df.parquet"][0], columns=["genre"]).column("genre")
    counted = pc.value_counts(genres.fill_null(NO_GENRE)).to_pylist()
    with np.load(sources["train_sparse.npz"][0]) as train:  # only the arrays needed
        if train["format"].item() != b"csr":
            raise ReportError(f"{sources['train_sparse.npz'][0]}: expected a CSR matrix")
        listeners = np.diff(train["indptr"])
        play_counts = train["data"]
    return Deliverables(
        plays_per_user=users.column("num_songs").to_numpy(),
        listeners_per_song=listeners,
        play_counts=play_counts,
        genres=sorted(((g["values"], g["counts"]) for g in counted), key=lambda g: (-g[1], g[0])),
        music=np.column_stack(
            [users.column(name).to_numpy(zero_copy_only=False) for name in DIMENSIONS]
        ).astype(np.float64),
    )


def distribution_stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"count": 0, "zeros": 0} | dict.fromkeys(("min", "median", "mean", "max", "total"))
    return {
        "count": values.size,
        "zeros": values.size - int(np.count_nonzero(values)),
        "min": float(values.min()),
        "median": float(np.median(values)),
        "mean": float(values.mean(dtype=np.float64)),
        "max": float(values.max()),
        "total": float(values.sum(dtype=np.float64)),
    }


def music_stats(column: np.ndarray) -> dict[str, float | None]:
    known = column[np.isfinite(column)]
    if known.size == 0:
        return {"count": 0} | dict.fromkeys(("mean", "std", "min", "median", "max"))
    return {
        "count": known.size,
        "mean": float(known.mean()),
        "std": float(known.std()),
        "min": float(known.min()),
        "median": float(np.median(known)),
        "max": float(known.max()),
    }


def music_correlation(music: np.ndarray) -> np.ndarray:
    """5x5 Pearson correlations over the users with all five scores (NaN where undefined)."""
    complete = music[~np.isnan(music).any(axis=1)]
    if len(complete) < 2:
        return np.full((len(DIMENSIONS), len(DIMENSIONS)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.corrcoef(complete, rowvar=False)


def collect_numbers(summary: BuildSummary, data: Deliverables, correlation: np.ndarray) -> Numbers:
    numbers = Numbers()
    for step in summary.funnel:
        numbers.add(f"funnel.{step.key}", step.count)
    for name in DISTRIBUTIONS:
        for stat, value in distribution_stats(getattr(data, name)).items():
            numbers.add(f"{name}.{stat}", value, DISTRIBUTION_DECIMALS[stat])
    for genre, count in data.genres:
        numbers.add(f"genre.{genre}", count)
    numbers.add("music.users_without_music", int(np.isnan(data.music).any(axis=1).sum()))
    for index, dimension in enumerate(DIMENSIONS):
        for stat, value in music_stats(data.music[:, index]).items():
            numbers.add(f"music.{dimension}.{stat}", value, MUSIC_DECIMALS[stat])
        for other, value in zip(DIMENSIONS, correlation[index], strict=True):
            numbers.add(f"music_corr.{dimension}.{other}", value, CORRELATION_DECIMALS)
    for run in summary.runs:
        numbers.add(f"tasks.{run.task}.wall_seconds", run.wall_seconds, 2)
        numbers.add(f"tasks.{run.task}.peak_mb", run.peak_rss_bytes / 1e6)
    numbers.add("run.tasks", len(summary.runs))
    numbers.add("run.total_wall_seconds", sum(run.wall_seconds for run in summary.runs), 2)
    numbers.add(
        "run.max_peak_mb", max((run.peak_rss_bytes for run in summary.runs), default=0) / 1e6
    )
    return numbers
