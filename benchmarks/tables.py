"""Targets and tables for `benchmarks.bench` results, as plain text or markdown.

Used by `python -m benchmarks.bench`; every number shown comes from the `Results` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from benchmarks.measure import SAMPLE_SECONDS

if TYPE_CHECKING:
    from benchmarks.bench import Results, Run, ScaleResult

FULL_SCALE = 1.0
COLD_SECONDS = 60.0
PEAK_BYTES = 4e9  # 4 GB
TARGET_WORKERS = 2
WARM_SECONDS = 5.0
NOTEBOOK_SCALE = 0.1
NOTEBOOK_SPEEDUP = 25.0
NOTEBOOK_MEMORY = 5.0
PEER_RATIO = 0.75  # BuildAll's best cold wall / the DuckDB script's best, at full scale
PEER_PEAK_BYTES = 3e9
LINEAR_SLACK = 1.2  # per-triplet cost may grow by this factor from one scale to the next

Table = tuple[str, list[str], list[list[str]]]  # title, headers, rows


@dataclass
class Target:
    name: str
    measured: str
    status: str  # "met", "not met" or "not assessed"


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def megabytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:,.0f}"


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def per_million(value: float, result: ScaleResult) -> float:
    return value / (result.triplets / 1e6)


def cold_peak(result: ScaleResult) -> int:
    """The largest peak of all the cold runs (memory targets take the worst run)."""
    return max(result.cold_peaks)


def notebook_peak(result: ScaleResult) -> int:
    """The largest peak of all the notebook port's runs, compared with `cold_peak`."""
    return max(result.notebook_peaks)


def notebook_ratios(result: ScaleResult) -> tuple[float, float] | None:
    """(median notebook wall / median BuildAll cold wall, largest peak / largest peak)."""
    if result.notebook is None:
        return None
    return (
        ratio(result.notebook.wall_seconds, result.cold.wall_seconds),
        ratio(notebook_peak(result), cold_peak(result)),
    )


def peer_ratio(result: ScaleResult) -> float | None:
    """Best cold BuildAll wall / best DuckDB script wall (None without the peer)."""
    if not result.peer_walls:
        return None
    return ratio(min(result.cold_walls), min(result.peer_walls))


def data_name(result: ScaleResult) -> str:
    share = "" if result.join_share is None else f", join share {result.join_share}"
    return f"scale {result.scale}{share}"


def status(ok: bool) -> str:
    return "met" if ok else "not met"


def at_scale(results: Results, scale: float) -> ScaleResult | None:
    return next((result for result in results.scales if result.scale == scale), None)


def full_scale_targets(results: Results) -> list[Target]:
    """Cold BuildAll time and peak, and the sample generator's peak, at scale 1.0."""
    limit = f"{PEAK_BYTES / 1e9:.0f} GB"
    cold_name = f"cold BuildAll at scale {FULL_SCALE}, --workers {TARGET_WORKERS}"
    wall_name = f"{cold_name}: wall <= {COLD_SECONDS:.0f} s"
    peak_name = f"{cold_name}: peak <= {limit}"
    generator_name = f"sample generator at scale {FULL_SCALE}: peak <= {limit}"
    full = at_scale(results, FULL_SCALE)
    if full is None:
        why = f"scale {FULL_SCALE} not run"
        return [
            Target(name, why, "not assessed") for name in (wall_name, peak_name, generator_name)
        ]
    if results.workers != TARGET_WORKERS:
        why = f"run with --workers {results.workers}"
        cold = [Target(name, why, "not assessed") for name in (wall_name, peak_name)]
    else:
        wall, peak = full.cold.wall_seconds, cold_peak(full)
        cold = [
            Target(wall_name, f"{seconds(wall)} s", status(wall <= COLD_SECONDS)),
            Target(peak_name, f"{megabytes(peak)} MB", status(peak <= PEAK_BYTES)),
        ]
    generation = full.generation
    if generation is None:
        generator = Target(generator_name, f"data {full.raw_source}: not measured", "not assessed")
    else:
        peak = generation.peak_bytes
        generator = Target(generator_name, f"{megabytes(peak)} MB", status(peak <= PEAK_BYTES))
    return [*cold, generator]


def warm_targets(results: Results) -> list[Target]:
    targets = []
    for result in results.scales:
        ran = ", ".join(result.warm_ran) or "no task"
        ok = result.warm.wall_seconds <= WARM_SECONDS and not result.warm_ran
        name = f"warm BuildAll at scale {result.scale}: <= {WARM_SECONDS:.0f} s, runs no task"
        targets.append(
            Target(name, f"{seconds(result.warm.wall_seconds)} s, ran {ran}", status(ok))
        )
    return targets


def notebook_targets(results: Results) -> list[Target]:
    names = [
        f"notebook / BuildAll wall at scale {NOTEBOOK_SCALE}: >= {NOTEBOOK_SPEEDUP:.0f}x",
        f"notebook / BuildAll peak at scale {NOTEBOOK_SCALE}: >= {NOTEBOOK_MEMORY:.0f}x",
    ]
    result = at_scale(results, NOTEBOOK_SCALE)
    ratios = notebook_ratios(result) if result else None
    if ratios is None:
        why = f"notebook not run at scale {NOTEBOOK_SCALE}"
        return [Target(name, why, "not assessed") for name in names]
    speedup, memory = ratios
    return [
        Target(names[0], f"{speedup:.1f}x", status(speedup >= NOTEBOOK_SPEEDUP)),
        Target(names[1], f"{memory:.1f}x", status(memory >= NOTEBOOK_MEMORY)),
    ]


def peer_targets(results: Results) -> list[Target]:
    """At full scale, on every kind of data run: BuildAll at most PEER_RATIO x the DuckDB script
    (best of the interleaved runs), with a peak of at most PEER_PEAK_BYTES, and the same
    deliverables."""
    targets = []
    for result in results.scales:
        if result.scale != FULL_SCALE or not result.peer_walls:
            continue
        name = (
            f"cold BuildAll at {data_name(result)}: wall <= {PEER_RATIO}x the DuckDB script's "
            f"(best of {len(result.peer_walls)}, interleaved), peak <= {PEER_PEAK_BYTES / 1e9:.0f} "
            "GB, same deliverables"
        )
        value = peer_ratio(result)
        peak = cold_peak(result)
        same = "same deliverables" if not result.peer_differences else "DIFFERENT deliverables"
        measured = (
            f"{seconds(min(result.cold_walls))} s / {seconds(min(result.peer_walls))} s = "
            f"{value:.2f}x; peak {megabytes(peak)} MB; {same}"
        )
        ok = value <= PEER_RATIO and peak <= PEER_PEAK_BYTES and not result.peer_differences
        targets.append(Target(name, measured, status(ok)))
    if not targets:
        name = f"cold BuildAll at scale {FULL_SCALE}: wall <= {PEER_RATIO}x the DuckDB script's"
        targets.append(Target(name, "--vs-peer not run at full scale", "not assessed"))
    return targets


def linear_targets(results: Results) -> list[Target]:
    """Cost per million triplets must not grow (beyond LINEAR_SLACK) from one scale to the next."""
    measures = {
        "cold wall s": lambda result: result.cold.wall_seconds,
        "cold peak MB": lambda result: cold_peak(result) / 1e6,
    }
    targets = []
    for label, value in measures.items():
        name = (
            f"linear growth: {label} per million triplets at most {LINEAR_SLACK}x "
            "that of the next smaller scale"
        )
        costs = [per_million(value(result), result) for result in results.scales]
        if len(costs) < 2:
            targets.append(Target(name, "needs two scales", "not assessed"))
            continue
        ok = all(later <= LINEAR_SLACK * earlier for earlier, later in pairwise(costs))
        measured = ", ".join(
            f"{cost:.2f} at {result.scale}"
            for cost, result in zip(costs, results.scales, strict=True)
        )
        targets.append(Target(name, measured, status(ok)))
    return targets


def targets(results: Results) -> list[Target]:
    return [
        *full_scale_targets(results),
        *warm_targets(results),
        *notebook_targets(results),
        *peer_targets(results),
        *linear_targets(results),
    ]


def run_row(name: str, run: Run | None, note: str) -> list[str]:
    if run is None:
        return [name, "n/a", "n/a", note]
    return [name, seconds(run.wall_seconds), megabytes(run.peak_bytes), note]


def repeated_rows(
    name: str,
    median: Run | None,
    walls: list[float],
    peaks: list[int],
    note: str,
    median_note: str = "the median",
) -> list[list[str]]:
    """One row per run of a repeated command, the median one marked."""
    rows = []
    for number, (wall, peak) in enumerate(zip(walls, peaks, strict=True), start=1):
        marked = median_note if median and wall == median.wall_seconds else ""
        cells = [f"{name}, run {number}", seconds(wall), megabytes(peak)]
        rows.append([*cells, "; ".join(part for part in (note, marked) if part)])
    return rows


def cold_rows(result: ScaleResult) -> list[list[str]]:
    """One row per cold run; the median one is the run whose tasks are tabled."""
    return repeated_rows(
        "BuildAll cold", result.cold, result.cold_walls, result.cold_peaks,
        f"{result.triplets:,} triplets", "the median: its tasks below",
    )  # fmt: skip


def scale_tables(result: ScaleResult) -> list[Table]:
    scale = data_name(result).capitalize()
    warm_note = "ran " + (", ".join(result.warm_ran) or "no task")
    runs = [
        run_row("sample data", result.generation, result.raw_source),
        *cold_rows(result),
        run_row("BuildAll warm", result.warm, warm_note),
        *(
            repeated_rows(
                "notebook port", result.notebook, result.notebook_walls, result.notebook_peaks, ""
            )
            or [run_row("notebook port", None, result.notebook_note)]
        ),
        *repeated_rows(
            "DuckDB script",
            None,
            result.peer_walls,
            result.peer_peaks,
            "; ".join(result.peer_differences) or "same deliverables as BuildAll",
        ),
    ]
    tasks = [
        [
            row.name,
            str(row.count),
            seconds(row.start_seconds),
            seconds(row.wall_seconds),
            seconds(row.max_wall_seconds),
            megabytes(row.peak_bytes),
        ]
        for row in result.tasks
    ]
    scheduler = megabytes(result.scheduler_peak_bytes)
    tasks.append(["(luigi scheduler process)", "1", "", "", "", scheduler])
    out = result.outputs
    outputs = [
        ["users", f"{out.users:,}"],
        ["songs", f"{out.songs:,}"],
        ["visible plays", f"{out.visible_plays:,}"],
        ["hidden plays", f"{out.hidden_plays:,}"],
        ["hidden-only users removed", f"{out.hidden_only_users:,}"],
        ["train_sparse.npz shape", " x ".join(f"{n:,}" for n in out.train_shape)],
        ["train_sparse.npz nonzeros", f"{out.train_nnz:,}"],
        ["test_sparse.npz shape", " x ".join(f"{n:,}" for n in out.test_shape)],
        ["test_sparse.npz nonzeros", f"{out.test_nnz:,}"],
    ]
    tables: list[Table] = [
        (f"{scale}: runs", ["run", "wall s", "peak MB", "note"], runs),
        (
            f"{scale}: cold BuildAll per task",
            ["task", "n", "start s", "wall s (sum)", "max wall s", "peak MB (max)"],
            tasks,
        ),
        (f"{scale}: outputs", ["quantity", "value"], outputs),
    ]
    if ratios := notebook_ratios(result):
        rows = [
            ["wall: notebook / BuildAll cold", f"{ratios[0]:.1f}x"],
            ["peak: notebook / BuildAll cold", f"{ratios[1]:.1f}x"],
        ]
        tables.append((f"{scale}: notebook port vs BuildAll", ["ratio", "value"], rows))
    if (value := peer_ratio(result)) is not None:
        rows = [["wall: BuildAll cold / DuckDB script, best of each", f"{value:.2f}x"]]
        title = f"{data_name(result).capitalize()}: BuildAll vs the DuckDB script"
        tables.append((title, ["ratio", "value"], rows))
    return tables


def summary_table(results: Results) -> Table:
    headers = [
        "scale", "triplets", "cold s", "cold peak MB", "warm s", "cold s / M triplets",
        "peak MB / M triplets", "notebook s", "notebook peak MB", "wall ratio", "peak ratio",
    ]  # fmt: skip
    rows = []
    for result in results.scales:
        notebook = result.notebook
        ratios = notebook_ratios(result)
        rows.append(
            [
                data_name(result).removeprefix("scale "),
                f"{result.triplets:,}",
                seconds(result.cold.wall_seconds),
                megabytes(cold_peak(result)),
                seconds(result.warm.wall_seconds),
                f"{per_million(result.cold.wall_seconds, result):.2f}",
                f"{per_million(cold_peak(result) / 1e6, result):,.1f}",
                seconds(notebook.wall_seconds) if notebook else "n/a",
                megabytes(notebook_peak(result)) if notebook else "n/a",
                f"{ratios[0]:.1f}x" if ratios else "n/a",
                f"{ratios[1]:.1f}x" if ratios else "n/a",
            ]
        )
    return "Summary across scales", headers, rows


def targets_table(target_list: list[Target]) -> Table:
    rows = [[target.name, target.measured, target.status] for target in target_list]
    return "Targets", ["target", "measured", "status"], rows


def all_tables(results: Results, target_list: list[Target]) -> list[Table]:
    per_scale = [table for result in results.scales for table in scale_tables(result)]
    return [*per_scale, summary_table(results), targets_table(target_list)]


def text_table(table: Table) -> str:
    title, headers, rows = table
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        # The first column (names) is left-aligned, the others (mostly numbers) right-aligned.
        aligned = [cells[0].ljust(widths[0])]
        aligned += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(aligned).rstrip()

    rules = ["-" * width for width in widths]
    return "\n".join([title, line(headers), line(rules), *(line(row) for row in rows)])


def markdown_table(table: Table) -> str:
    _, headers, rows = table
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def plain_text(results: Results, target_list: list[Target]) -> str:
    return "\n\n".join(text_table(table) for table in all_tables(results, target_list))


def markdown(results: Results, target_list: list[Target]) -> str:
    machine = [[key, value] for key, value in results.machine.items()]
    sections = [
        "# Benchmark results",
        f"Produced by `{results.command}` (from the repository root) on {results.date}, "
        f"with `--workers {results.workers}`.",
        "## Machine\n\n" + markdown_table(("", ["item", "value"], machine)),
        "## Targets\n\n" + markdown_table(targets_table(target_list)),
        "## Summary across scales\n\n" + markdown_table(summary_table(results)),
    ]
    for result in results.scales:
        for title, headers, rows in scale_tables(result):
            sections.append(f"## {title}\n\n" + markdown_table((title, headers, rows)))
    sections.append(
        "## How it is measured\n\n"
        "Each command runs as a subprocess; wall time is from start to exit, and peak memory is "
        "the largest sum of resident memory (RSS) over the process and all its descendants, "
        f"sampled every {SAMPLE_SECONDS * 1000:.0f} ms (MB = 10^6 bytes). Pages a forked worker "
        "shares with its parent count once per process, so the sum errs high. A task's wall time "
        "runs from Luigi's `running` line to its `done` line; its peak is that of the worker "
        "process Luigi forks for it (none with `--workers 1`, or when the task finished before "
        "the first sample). Each cold run starts from empty checkpoint and output folders; the run "
        "of median wall time is the one reported (and its tasks tabled), and memory targets take "
        "the largest peak of all cold runs; the notebook port is run and reported the same "
        "way. Written files are flushed (sync) before each run. The warm run repeats the same "
        "command at once and must run no task. Triplets are the lines of the three triplet "
        "files."
    )
    return "\n\n".join(sections) + "\n"
