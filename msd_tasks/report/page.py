"""The build report: one self-contained HTML page with PNG plots, and report.json with its numbers.

Every data-derived number on the page carries a `data-key` and is repeated under that key in JSON.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
from collections.abc import Mapping
from pathlib import Path

from msd_tasks.formats.atomic import atomic_folder
from msd_tasks.report.figures import draw_figures
from msd_tasks.report.numbers import (
    DISTRIBUTION_DECIMALS,
    DISTRIBUTIONS,
    MUSIC_DECIMALS,
    Deliverables,
    Numbers,
    Sources,
    collect_numbers,
    data_sources,
    music_correlation,
    read_deliverables,
)
from msd_tasks.report.summary import BuildSummary
from msd_tasks.stages.music import DIMENSIONS

SCALING_NOTES = {
    "raw": "audio features used as they are",
    "zscore": "each audio feature z-scored over the songs before the MUSIC mapping",
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


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def report_json(summary: BuildSummary, numbers: Numbers, figures: list[str]) -> dict:
    """The machine-readable report: the flat `numbers` plus the same numbers by section."""
    values = numbers.values

    def section(prefix: str) -> dict:
        return {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}

    return {
        "build": summary.build,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "numbers": values,
        "funnel": [dataclasses.asdict(step) for step in summary.funnel],
        "distributions": {name: section(f"{name}.") for name in DISTRIBUTIONS},
        "genres": section("genre."),
        "music": {
            "scaling": summary.parameters["music_scaling"],
            "users_without_music": values["music.users_without_music"],
            "stats": {d: section(f"music.{d}.") for d in DIMENSIONS},
            "correlation": {d: section(f"music_corr.{d}.") for d in DIMENSIONS},
        },
        "run": {
            "tasks": [
                {
                    "task": run.task,
                    "family": run.family,
                    "wall_seconds": values[f"tasks.{run.task}.wall_seconds"],
                    "peak_mb": values[f"tasks.{run.task}.peak_mb"],
                }
                for run in summary.runs
            ],
            "total_wall_seconds": values["run.total_wall_seconds"],
            "max_peak_mb": values["run.max_peak_mb"],
        },
        "fingerprints": summary.fingerprints,
        "parameters": summary.parameters,
        "warnings": list(summary.warnings),
        "figures": figures,
    }


def table(headers: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(f"<tr>{row}</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>\n"


def image(name: str, alt: str) -> str:
    return f'<img src="{esc(name)}" alt="{esc(alt)}">\n'


def funnel_section(summary: BuildSummary, numbers: Numbers) -> str:
    rows = [
        f"<td>{esc(step.label)}</td><td><code>{esc(step.key)}</code></td>"
        + numbers.cell(f"funnel.{step.key}")
        for step in summary.funnel
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


def run_section(summary: BuildSummary, numbers: Numbers) -> str:
    tasks = [
        f"<td><code>{esc(run.task)}</code></td><td>{esc(run.family)}</td>"
        + numbers.cell(f"tasks.{run.task}.wall_seconds")
        + numbers.cell(f"tasks.{run.task}.peak_mb")
        for run in summary.runs
    ]
    tasks.append(
        f'<th colspan="2">the <span data-key="run.tasks">{esc(numbers.shown("run.tasks"))}</span>'
        " tasks before the report: wall seconds summed, peak memory the largest</th>"
        + numbers.cell("run.total_wall_seconds")
        + numbers.cell("run.max_peak_mb")
    )
    pairs = {
        name: [f"<td>{esc(k)}</td><td><code>{esc(v)}</code></td>" for k, v in values.items()]
        for name, values in (
            ("fingerprints", summary.fingerprints),
            ("parameters", summary.parameters),
        )
    }
    warnings = "".join(f"<li>{esc(w)}</li>\n" for w in summary.warnings)
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


def page(summary: BuildSummary, report: dict, data: Deliverables, numbers: Numbers) -> str:
    scaling = str(summary.parameters["music_scaling"])
    note = SCALING_NOTES.get(scaling, "")
    title = f"MSD build {summary.build}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n"
        f"<p>Report generated {esc(report['generated_at'])}; <code>manifest.json</code> beside "
        f"the deliverables names the same build.</p>\n"
        f'<p class="scaling">MUSIC scaling: <strong>{esc(scaling)}</strong>'
        f"{esc(f' ({note})' if note else '')}</p>\n"
        + funnel_section(summary, numbers)
        + distributions_section(numbers)
        + genre_section(data, numbers)
        + music_section(scaling, numbers)
        + run_section(summary, numbers)
        + "</body>\n</html>\n"
    )


def render_report(
    summary: BuildSummary, data: Path | Mapping[str, Sources], report_dir: Path
) -> dict:
    """Write report_dir/index.html, its PNGs and report.json from `summary` and the deliverables.

    Raises ReportError for missing deliverables; any failure leaves report_dir as it was.
    Returns the report.json content.
    """
    report_dir = Path(report_dir)
    sources = data_sources(data, summary.build)
    deliverables = read_deliverables(sources)
    correlation = music_correlation(deliverables.music)
    numbers = collect_numbers(summary, deliverables, correlation)
    with atomic_folder(report_dir, marker=False) as staging:
        figures = draw_figures(summary, deliverables, correlation, staging)
        report = report_json(summary, numbers, figures)
        (staging / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        (staging / "index.html").write_text(
            page(summary, report, deliverables, numbers), encoding="utf-8"
        )
    return report
