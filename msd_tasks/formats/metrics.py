"""metrics.prom: what a build did, in Prometheus' text format, for the node exporter's textfile
collector. Written atomically by every build, failed ones too (graph/build.py), so a cron job
is watched by alerting on `msd_build_last_success_timestamp_seconds` growing old.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from msd_tasks.formats.atomic import atomic_file

FILE_NAME = "metrics.prom"  # in output_dir, unless [metrics] path says otherwise
PREFIX = "msd_build"
# Kept from the previous file: each outcome's time lives on until the next of its kind.
LAST_TIMES = ("last_success_timestamp_seconds", "last_failure_timestamp_seconds")


@dataclass(frozen=True)
class TaskMetrics:
    task: str  # Luigi task id
    family: str
    wall_seconds: float
    peak_rss_bytes: int


@dataclass(frozen=True)
class BuildMetrics:
    succeeded: bool
    finished_at: float  # Unix time
    wall_seconds: float | None  # from planning to the end; None when unknown
    tasks: tuple[TaskMetrics, ...] = ()
    funnel: Mapping[str, int] = field(default_factory=dict)  # funnel key -> count
    skipped_lines: Mapping[str, int] = field(default_factory=dict)  # triplet kind -> lines
    warnings: tuple[str, ...] = ()
    failure: str = ""  # the task that failed and why


def write_metrics(path: Path, build: BuildMetrics) -> None:
    times = previous_times(path)
    times[
        "last_success_timestamp_seconds" if build.succeeded else "last_failure_timestamp_seconds"
    ] = build.finished_at
    with atomic_file(path) as temporary:
        temporary.write_text(render(build, times))


def previous_times(path: Path) -> dict[str, float]:
    """The last success and failure times of the file there now (0 for never)."""
    times = dict.fromkeys(LAST_TIMES, 0.0)
    try:
        text = path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return times
    for name in LAST_TIMES:
        found = re.search(rf"^{PREFIX}_{name} (\S+)$", text, re.MULTILINE)
        if found:
            with contextlib.suppress(ValueError):
                times[name] = float(found.group(1))
    return times


def render(build: BuildMetrics, times: Mapping[str, float]) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict, float]]):
        lines.append(f"# HELP {PREFIX}_{name} {help_text}")
        lines.append(f"# TYPE {PREFIX}_{name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
            lines.append(
                f"{PREFIX}_{name}{{{label_text}}} {value!r}"
                if labels
                else f"{PREFIX}_{name} {value!r}"
            )

    metric(
        "last_success_timestamp_seconds",
        "gauge",
        "When the last successful build ended (0: never).",
        [({}, times["last_success_timestamp_seconds"])],
    )
    metric(
        "last_failure_timestamp_seconds",
        "gauge",
        "When the last failed build ended (0: never).",
        [({}, times["last_failure_timestamp_seconds"])],
    )
    metric(
        "succeeded",
        "gauge",
        "1 if the last build succeeded, 0 if it failed.",
        [({}, 1.0 if build.succeeded else 0.0)],
    )
    if build.wall_seconds is not None:
        metric(
            "wall_seconds",
            "gauge",
            "Wall time of the last build, from planning to its end.",
            [({}, round(build.wall_seconds, 3))],
        )
    if build.failure:
        metric(
            "failure_info",
            "gauge",
            "The task that failed the last build, and why.",
            [({"reason": build.failure}, 1.0)],
        )
    task_labels = [{"task": task.task, "family": task.family} for task in build.tasks]
    metric(
        "task_wall_seconds",
        "gauge",
        "Wall time of each task's last run.",
        zip(task_labels, (float(t.wall_seconds) for t in build.tasks), strict=True),
    )
    metric(
        "task_peak_rss_bytes",
        "gauge",
        "Peak resident memory of each task's last run.",
        zip(task_labels, (float(t.peak_rss_bytes) for t in build.tasks), strict=True),
    )
    metric(
        "funnel_count",
        "gauge",
        "Rows, plays, users and songs at each step of the build.",
        [({"step": key}, float(count)) for key, count in build.funnel.items()],
    )
    metric(
        "skipped_lines",
        "gauge",
        "Malformed lines skipped per triplet file (--on-bad-lines skip).",
        [({"file": kind}, float(count)) for kind, count in build.skipped_lines.items()],
    )
    metric(
        "warnings",
        "gauge",
        "Quality-gate warnings of the last build.",
        [({}, float(len(build.warnings)))],
    )
    metric(
        "warning_info",
        "gauge",
        "Each quality-gate warning of the last build.",
        [({"warning": warning}, 1.0) for warning in build.warnings],
    )
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
