"""The report's figures, each drawn on its own Agg canvas and saved as a PNG.

No pyplot: no global backend switch, no figure registry to leak into, safe in any process or
thread that runs the task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from msd_tasks.report.numbers import DISTRIBUTIONS, Deliverables, ReportError
from msd_tasks.report.summary import BuildSummary, FunnelStep
from msd_tasks.stages.music import DIMENSIONS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BINS = 50
DPI = 100
WIDTH = 8.0  # inches


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


def funnel_figure(funnel: Sequence[FunnelStep]) -> Figure:
    counts = np.array([step.count for step in funnel], dtype=np.float64)
    figure = new_figure(WIDTH, 0.35 * len(funnel) + 1.2, left=3.0)
    axes = figure.subplots()
    positions = np.arange(len(funnel))
    axes.barh(positions, np.where(counts > 0, counts, np.nan), color="#4878a8")
    log_scale(axes, "x")
    axes.set_xlim(0.5, max(counts.max(initial=1.0), 1.0) * 8)
    for position, count in zip(positions, counts, strict=True):
        axes.text(max(count, 0.6) * 1.1, position, f"{count:,.0f}", va="center", fontsize=8)
    axes.set_yticks(positions, [step.label for step in funnel], parse_math=False)
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
    summary: BuildSummary, data: Deliverables, correlation: np.ndarray, folder: Path
) -> list[str]:
    """Draw and save every figure, one at a time; returns the PNG file names."""
    scaling = str(summary.parameters["music_scaling"])
    figures = [
        ("funnel", funnel_figure, (summary.funnel,)),
        *[
            (name, log_histogram_figure, (getattr(data, name), *labels))
            for name, labels in DISTRIBUTIONS.items()
        ],
        ("genres", genre_figure, (data.genres,)),
        ("music", music_histograms_figure, (data.music, scaling)),
        ("music_corr", correlation_figure, (correlation,)),
    ]
    return [save_figure(draw(*args), folder / f"{name}.png") for name, draw, args in figures]
