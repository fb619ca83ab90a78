"""The build report: one self-contained HTML page with PNG plots, and report.json with its numbers.

Every data-derived number on the page carries a `data-key` and is repeated under that key in JSON.
"""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from msd_tasks.formats.atomic import atomic_folder
from msd_tasks.stages.music import DIMENSIONS
from msd_tasks.stages.users import in_sparse_index_order

REQUIRED_FACTS = ("build", "funnel", "tasks", "fingerprints", "parameters", "warnings")
DATA_FILES = ("user_df.parquet", "song_df.parquet", "train_sparse.npz")
NO_GENRE = "(none)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BINS = 50
DPI = 100
WIDTH = 8.0  # inches
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
SCALING_NOTES = {
    "raw": "audio features used as they are",
    "zscore": "each audio feature z-scored over the songs before the MUSIC mapping",
}
DISTRIBUTIONS = {  # key: (title, x label, y label)
    "plays_per_user": ("Plays per user", "num_songs of user_df", "users"),
    "listeners_per_song": ("Listeners per song", "users with a train play of the song", "songs"),
    "play_counts": ("Play counts", "play_count of a train_sparse entry", "entries"),
}
STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 90%; word-break: break-all; }
.scaling { background: #fff3cd; border: 1px solid #e0c068; padding: 0.5em 1em; }
img { max-width: 100%; display: block; }
"""


Sources = Path | str | list[Path]  # one file, or the files of its parts


class ReportError(ValueError):
    """Facts or deliverables the report cannot be built from."""


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
        return f'<td class="num" data-key="{esc(key)}">{esc(self.shown(key))}</td>'


@dataclass
class Deliverables:
    """What the report reads from the deliverables: plain arrays, nothing downsampled."""

    plays_per_user: np.ndarray
    listeners_per_song: np.ndarray
    play_counts: np.ndarray
    genres: list[tuple[str, int]]  # most songs first
    music: np.ndarray  # users x 5, NaN where a user has no MUSIC score


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


# --- checks and reading --------------------------------------------------------------------


def is_count(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 0


def check_facts(facts: Mapping) -> None:
    """Raise ReportError unless `facts` has every section, each in the expected shape."""
    missing = [name for name in REQUIRED_FACTS if name not in facts]
    if missing:
        raise ReportError(f"facts lack {', '.join(missing)}; expected {', '.join(REQUIRED_FACTS)}")
    if not facts["funnel"]:
        raise ReportError("facts['funnel'] has no stages")
    for stage in facts["funnel"]:
        if not (
            isinstance(stage, Mapping)
            and isinstance(stage.get("key"), str)
            and is_count(stage.get("count"))
        ):
            raise ReportError(f"funnel stage {stage!r}: expected a key, a count >= 0 and a label")
    for task in facts["tasks"]:
        if not (
            isinstance(task, Mapping)
            and isinstance(task.get("wall_seconds"), Real)
            and is_count(task.get("peak_rss_bytes"))
            and "task" in task
        ):
            raise ReportError(f"task {task!r}: expected task, family, wall_seconds, peak_rss_bytes")
    if "music_scaling" not in facts["parameters"]:
        raise ReportError("facts['parameters'] lacks music_scaling")


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


# --- numbers -------------------------------------------------------------------------------


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


def collect_numbers(facts: Mapping, data: Deliverables, correlation: np.ndarray) -> Numbers:
    numbers = Numbers()
    for stage in facts["funnel"]:
        numbers.add(f"funnel.{stage['key']}", stage["count"])
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
    for task in facts["tasks"]:
        numbers.add(f"tasks.{task['task']}.wall_seconds", task["wall_seconds"], 2)
        numbers.add(f"tasks.{task['task']}.peak_mb", task["peak_rss_bytes"] / 1e6)
    numbers.add("run.tasks", len(facts["tasks"]))
    numbers.add("run.total_wall_seconds", sum(t["wall_seconds"] for t in facts["tasks"]), 2)
    numbers.add(
        "run.max_peak_mb", max((t["peak_rss_bytes"] for t in facts["tasks"]), default=0) / 1e6
    )
    return numbers


def report_json(facts: Mapping, numbers: Numbers, figures: list[str]) -> dict:
    """The machine-readable report: the flat `numbers` plus the same numbers by section."""
    values = numbers.values

    def section(prefix: str) -> dict:
        return {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}

    return {
        "build": facts["build"],
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "numbers": values,
        "funnel": [
            {"key": s["key"], "label": s.get("label", s["key"]), "count": s["count"]}
            for s in facts["funnel"]
        ],
        "distributions": {name: section(f"{name}.") for name in DISTRIBUTIONS},
        "genres": section("genre."),
        "music": {
            "scaling": facts["parameters"]["music_scaling"],
            "users_without_music": values["music.users_without_music"],
            "stats": {d: section(f"music.{d}.") for d in DIMENSIONS},
            "correlation": {d: section(f"music_corr.{d}.") for d in DIMENSIONS},
        },
        "run": {
            "tasks": [
                {
                    "task": t["task"],
                    "family": t.get("family", ""),
                    "wall_seconds": values[f"tasks.{t['task']}.wall_seconds"],
                    "peak_mb": values[f"tasks.{t['task']}.peak_mb"],
                }
                for t in facts["tasks"]
            ],
            "total_wall_seconds": values["run.total_wall_seconds"],
            "max_peak_mb": values["run.max_peak_mb"],
        },
        "fingerprints": dict(facts["fingerprints"]),
        "parameters": dict(facts["parameters"]),
        "warnings": [str(w) for w in facts["warnings"]],
        "figures": figures,
    }


# --- figures -------------------------------------------------------------------------------
# Figures are drawn on their own Agg canvas, without pyplot: no global backend switch, no figure
# registry to leak into, safe in any process or thread that runs the task.


def new_figure(
    width: float,
    height: float,
    left: float = 0.8,
    bottom: float = 0.6,
    right: float = 0.25,
    top: float = 0.45,
) -> Figure:
    """A figure with fixed margins in inches: constrained layout tripled the drawing time."""
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=0.15,
    )
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path) -> str:
    """Write `figure` as PNG at `path` (errors propagate) and check that a PNG came out."""
    figure.savefig(path, format="png", dpi=DPI)
    with open(path, "rb") as file:
        if file.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            raise ReportError(f"{path}: matplotlib did not write a PNG")
    return path.name


def short_count(value: float, _position=None) -> str:
    """A tick label for a count: 1, 10, 100, 1k, 10k, 100k, 1M, 10M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def log_scale(axes, which: str) -> None:
    """Log scale with plain labels (1, 10, 1k, 1M) and no minor ticks.

    Matplotlib's default labels (10 to the power n) go through its TeX-like math parser, which
    took a third of the drawing time; minor ticks cost more than the data.
    """
    getattr(axes, f"set_{which}scale")("log")
    axis = getattr(axes, f"{which}axis")
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(short_count))


def set_title(axes, title: str) -> None:
    """A title at a fixed height: an automatic one measures every tick label to place itself."""
    axes.set_title(title, y=1.0, pad=6.0)


def funnel_figure(funnel: list[Mapping]) -> Figure:
    counts = np.array([stage["count"] for stage in funnel], dtype=np.float64)
    figure = new_figure(WIDTH, 0.35 * len(funnel) + 1.2, left=3.0)
    axes = figure.subplots()
    positions = np.arange(len(funnel))
    axes.barh(positions, np.where(counts > 0, counts, np.nan), color="#4878a8")
    log_scale(axes, "x")
    axes.set_xlim(0.5, max(counts.max(initial=1.0), 1.0) * 8)
    for position, count in zip(positions, counts, strict=True):
        axes.text(max(count, 0.6) * 1.1, position, f"{count:,.0f}", va="center", fontsize=8)
    axes.set_yticks(
        positions, [stage.get("label", stage["key"]) for stage in funnel], parse_math=False
    )
    axes.invert_yaxis()
    axes.set_xlabel("count (log scale)")
    set_title(axes, "Funnel: from the raw files to the matrices")
    return figure


def log_histogram_figure(values: np.ndarray, title: str, xlabel: str, ylabel: str) -> Figure:
    """Histogram of the positive values on log-log axes, bins at half-integers (counts are ints)."""
    figure = new_figure(WIDTH, 3.2)
    axes = figure.subplots()
    positive = values[values > 0]
    if positive.size:
        top = float(positive.max())
        edges = np.unique(np.round(np.geomspace(1.0, top + 1.0, BINS + 1))) - 0.5
        if float(positive.min()) < 0.5:  # not integer counts: widen the first bin
            edges[0] = float(positive.min())
        counts, edges = np.histogram(positive, bins=edges)
        axes.stairs(counts, edges, fill=True, color="#4878a8")
        log_scale(axes, "x")
        log_scale(axes, "y")
    zeros = values.size - positive.size
    note = f" ({zeros:,} zeros not shown)" if zeros else ""
    set_title(axes, f"{title}: {values.size:,} values{note}")
    axes.set_xlabel(f"{xlabel} (log scale)")
    axes.set_ylabel(f"{ylabel} (log scale)")
    return figure


def genre_figure(genres: list[tuple[str, int]]) -> Figure:
    figure = new_figure(WIDTH, 0.3 * len(genres) + 1.2, left=1.5)
    axes = figure.subplots()
    positions = np.arange(len(genres))
    axes.barh(positions, [count for _, count in genres], color="#4878a8")
    axes.set_yticks(positions, [genre for genre, _ in genres], parse_math=False)
    axes.invert_yaxis()
    axes.set_xlabel("songs")
    set_title(axes, "Songs per genre (song_df)")
    return figure


def music_histograms_figure(music: np.ndarray, scaling: str) -> Figure:
    """The five score histograms as outlines over shared bins, on one pair of axes.

    Five panels drew ten axes, which cost more than everything else in the report.
    """
    figure = new_figure(WIDTH + 1.0, 3.4, right=1.9)
    axes = figure.subplots()
    known = music[~np.isnan(music)]
    edges = np.histogram_bin_edges(known, bins=BINS) if known.size else np.linspace(0, 1, 2)
    for index, dimension in enumerate(DIMENSIONS):
        column = music[:, index]
        counts, _ = np.histogram(column[~np.isnan(column)], bins=edges)
        axes.stairs(counts, edges, label=dimension, linewidth=1.5, color=f"C{index}")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    axes.set_xlabel("MUSIC score")
    axes.set_ylabel("users")
    set_title(axes, f"MUSIC scores per user (music_scaling = {scaling}, NaN left out)")
    return figure


def correlation_figure(correlation: np.ndarray) -> Figure:
    figure = new_figure(5.0, 4.5, left=1.3, bottom=1.2, right=0.2)
    axes = figure.subplots()
    axes.imshow(correlation, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    ticks = np.arange(len(DIMENSIONS))
    axes.set_xticks(ticks, DIMENSIONS, rotation=45, ha="right")
    axes.set_yticks(ticks, DIMENSIONS)
    for (row, column), value in np.ndenumerate(correlation):
        label = "n/a" if np.isnan(value) else f"{value:.3f}"
        color = "white" if abs(value) > 0.6 else "black"  # NaN compares False: black
        axes.text(column, row, label, ha="center", va="center", fontsize=8, color=color)
    # Every cell is labelled, so the colours need no colour bar (another axis to draw).
    set_title(axes, "MUSIC correlations (blue -1 to red +1)")
    return figure


def draw_figures(
    facts: Mapping, data: Deliverables, correlation: np.ndarray, folder: Path
) -> list[str]:
    """Draw and save every figure, one at a time; returns the PNG file names."""
    scaling = str(facts["parameters"]["music_scaling"])
    figures = [
        ("funnel", funnel_figure, (facts["funnel"],)),
        *[
            (name, log_histogram_figure, (getattr(data, name), *labels))
            for name, labels in DISTRIBUTIONS.items()
        ],
        ("genres", genre_figure, (data.genres,)),
        ("music", music_histograms_figure, (data.music, scaling)),
        ("music_corr", correlation_figure, (correlation,)),
    ]
    return [save_figure(draw(*args), folder / f"{name}.png") for name, draw, args in figures]


# --- the page ------------------------------------------------------------------------------


def table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(f"<tr>{row}</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>\n"


def image(name: str, alt: str) -> str:
    return f'<img src="{esc(name)}" alt="{esc(alt)}">\n'


def funnel_section(facts: Mapping, numbers: Numbers) -> str:
    rows = [
        f"<td>{esc(s.get('label', s['key']))}</td><td><code>{esc(s['key'])}</code></td>"
        + numbers.cell(f"funnel.{s['key']}")
        for s in facts["funnel"]
    ]
    return (
        "<h2>Funnel</h2>\n"
        + table(["stage", "key", "count"], rows)
        + image("funnel.png", "funnel, log scale")
    )


def distributions_section(numbers: Numbers) -> str:
    parts = ["<h2>Distributions</h2>\n"]
    for name, (title, xlabel, _) in DISTRIBUTIONS.items():
        cells = "".join(numbers.cell(f"{name}.{stat}") for stat in DISTRIBUTION_DECIMALS)
        parts += [
            f"<h3>{esc(title)}</h3>\n<p>{esc(xlabel)}</p>\n",
            table(list(DISTRIBUTION_DECIMALS), [cells]),
            image(f"{name}.png", f"{title}, log-log histogram"),
        ]
    return "".join(parts)


def genre_section(data: Deliverables, numbers: Numbers) -> str:
    rows = [f"<td>{esc(genre)}</td>" + numbers.cell(f"genre.{genre}") for genre, _ in data.genres]
    return (
        "<h2>Genres</h2>\n"
        + table(["genre", "songs"], rows)
        + image("genres.png", "songs per genre")
    )


def music_section(scaling: str, numbers: Numbers) -> str:
    stats = [
        f"<td>{esc(d)}</td>" + "".join(numbers.cell(f"music.{d}.{s}") for s in MUSIC_DECIMALS)
        for d in DIMENSIONS
    ]
    correlations = [
        f"<th>{esc(d)}</th>" + "".join(numbers.cell(f"music_corr.{d}.{o}") for o in DIMENSIONS)
        for d in DIMENSIONS
    ]
    return (
        f"<h2>MUSIC scores (music_scaling = {esc(scaling)})</h2>\n"
        "<p>Users without a MUSIC score (NaN, left out below): "
        f'<span data-key="music.users_without_music">'
        f"{esc(numbers.shown('music.users_without_music'))}</span></p>\n"
        + table(["dimension", *MUSIC_DECIMALS], stats)
        + image("music.png", "histograms of the five MUSIC scores")
        + "<h3>Correlations (users with all five scores)</h3>\n"
        + table(["", *DIMENSIONS], correlations)
        + image("music_corr.png", "correlation matrix of the MUSIC scores")
    )


def run_section(facts: Mapping, numbers: Numbers) -> str:
    tasks = [
        f"<td><code>{esc(t['task'])}</code></td><td>{esc(t.get('family', ''))}</td>"
        + numbers.cell(f"tasks.{t['task']}.wall_seconds")
        + numbers.cell(f"tasks.{t['task']}.peak_mb")
        for t in facts["tasks"]
    ]
    tasks.append(
        f'<th colspan="2">the <span data-key="run.tasks">{esc(numbers.shown("run.tasks"))}</span>'
        " tasks before the report: wall seconds summed, peak memory the largest</th>"
        + numbers.cell("run.total_wall_seconds")
        + numbers.cell("run.max_peak_mb")
    )
    pairs = {
        name: [f"<td>{esc(k)}</td><td><code>{esc(v)}</code></td>" for k, v in facts[name].items()]
        for name in ("fingerprints", "parameters")
    }
    warnings = "".join(f"<li>{esc(w)}</li>\n" for w in facts["warnings"])
    return (
        "<h2>The run</h2>\n"
        + table(["task", "family", "wall seconds", "peak MB (10^6 bytes)"], tasks)
        + "<h3>Parameters</h3>\n"
        + table(["parameter", "value"], pairs["parameters"])
        + "<h3>Input fingerprints (size:mtime)</h3>\n"
        + table(["input", "fingerprint"], pairs["fingerprints"])
        + "<h3>Warnings</h3>\n"
        + (f"<ul>\n{warnings}</ul>\n" if warnings else "<p>none</p>\n")
    )


def page(facts: Mapping, report: dict, data: Deliverables, numbers: Numbers) -> str:
    scaling = str(facts["parameters"]["music_scaling"])
    note = SCALING_NOTES.get(scaling, "")
    title = f"MSD build {facts['build']}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n"
        f"<p>Report generated {esc(report['generated_at'])}; <code>manifest.json</code> beside "
        f"the deliverables names the same build.</p>\n"
        f'<p class="scaling">MUSIC scaling: <strong>{esc(scaling)}</strong>'
        f"{esc(f' ({note})' if note else '')}</p>\n"
        + funnel_section(facts, numbers)
        + distributions_section(numbers)
        + genre_section(data, numbers)
        + music_section(scaling, numbers)
        + run_section(facts, numbers)
        + "</body>\n</html>\n"
    )


def render_report(facts: dict, data: Path | Mapping[str, Sources], report_dir: Path) -> dict:
    """Write report_dir/index.html, its PNGs and report.json from `facts` and the deliverables.

    Raises ReportError for incomplete facts or deliverables; any failure leaves report_dir as it
    was. Returns the report.json content.
    """
    report_dir = Path(report_dir)
    check_facts(facts)
    sources = data_sources(data, facts["build"])
    deliverables = read_deliverables(sources)
    correlation = music_correlation(deliverables.music)
    numbers = collect_numbers(facts, deliverables, correlation)
    with atomic_folder(report_dir, marker=False) as staging:
        figures = draw_figures(facts, deliverables, correlation, staging)
        report = report_json(facts, numbers, figures)
        (staging / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        (staging / "index.html").write_text(
            page(facts, report, deliverables, numbers), encoding="utf-8"
        )
    return report
