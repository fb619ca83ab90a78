"""Benchmark BuildAll (cold, then warm) on generated MSD samples, optionally side by side with
the notebook port and with a plain DuckDB script (benchmarks/peers/duckdb_build.py).

Run from the repository root: `python -m benchmarks.bench --scale 0.1 --scale 1.0 --vs-notebook
--vs-peer --markdown benchmarks/RESULTS.md` (see `--help`); every figure is measured by
`benchmarks.measure`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import scipy.sparse

from benchmarks import tables
from benchmarks.measure import Measurement, measure
from benchmarks.peers.compare import differences
from msd_tasks.formats import raw

REPO = Path(__file__).resolve().parents[1]
SEED = 0
NOTEBOOK_MAX_SCALE = 0.2  # the notebook needs about 75 GB at scale 1.0
STDERR_TAIL = 60  # lines of stderr (without Luigi DEBUG lines) shown when a command fails
PACKAGES = ("luigi", "pandas", "numpy", "scipy", "pyarrow", "tables", "psutil", "duckdb")
# `[pid 7213] Worker Worker(salt=..., pid=7200) running   JoinPlays(n_shards=8, ...)`
TASK_LINE = re.compile(r"\[pid (\d+)\] Worker (Worker\(.*?\)) (running|done)\s+(\w+)\((.*)\)\s*$")
WORKER_PID = re.compile(r"pid=(\d+)\)$")
KIND = re.compile(r"\bkind=(\w+)")


class BenchmarkError(RuntimeError):
    """A measured command failed; the message holds its exit code and the tail of its stderr."""


@dataclass
class Run:
    """One measured command: exit code, wall seconds, peak resident memory of its process tree."""

    returncode: int
    wall_seconds: float
    peak_bytes: int


@dataclass
class TaskRow:
    """Luigi tasks of one kind in a run (PerUserMusic shards are grouped into one row)."""

    name: str
    count: int
    start_seconds: float  # first `running` line, from the start of the command
    wall_seconds: float  # summed over the `count` tasks
    max_wall_seconds: float
    peak_bytes: int | None  # largest peak of the tasks' own processes; None if not sampled


@dataclass
class Outputs:
    """What the build produced: manifest counts and the shapes and nonzeros of the matrices."""

    users: int
    songs: int
    visible_plays: int
    hidden_plays: int
    hidden_only_users: int
    train_shape: list[int]
    train_nnz: int
    test_shape: list[int]
    test_nnz: int


@dataclass
class ScaleResult:
    scale: float
    join_share: float | None  # the generator's --join-share; None: its default, as real data
    raw_source: str  # "generated", "reused" (an earlier generation) or "given" (--raw-dir-for)
    triplets: int  # lines in the three triplet files
    generation: Run | None  # None unless generated in this run
    cold: Run  # the cold run of median wall time (its tasks are in `tasks`)
    cold_walls: list[float]  # every cold run, in the order run
    cold_peaks: list[int]
    tasks: list[TaskRow]
    scheduler_peak_bytes: int | None  # the luigi process that schedules and forks the workers
    outputs: Outputs
    warm: Run
    warm_ran: list[str]  # tasks with a `running` line in the warm run: should be none
    notebook: Run | None  # the notebook run of median wall time
    notebook_note: str  # why the notebook did not run, if it did not
    notebook_walls: list[float]  # every notebook run, in the order run
    notebook_peaks: list[int]
    peer_walls: list[float]  # the DuckDB script's runs, each right after a cold BuildAll run
    peer_peaks: list[int]
    peer_differences: list[str]  # how its deliverables differ from BuildAll's (none: the same)


@dataclass
class Results:
    command: str
    date: str
    machine: dict[str, str]
    workers: int
    scales: list[ScaleResult]


def run_measured(command: list[str], what: str) -> Measurement:
    """Measure `command` from the repository root; raise BenchmarkError if it exits non-zero.

    Dirty pages (the sample data just written, the previous run's outputs) are flushed first,
    so that the kernel's writeback of them does not compete with the run being measured.
    """
    os.sync()
    measurement = measure(command, cwd=REPO, env=os.environ.copy())
    if measurement.returncode != 0:
        lines = [line for _, line in measurement.output_lines if not line.startswith("DEBUG:")]
        tail = "\n".join(lines[-STDERR_TAIL:])
        raise BenchmarkError(f"{what} exited with {measurement.returncode}:\n{tail}")
    return measurement


def as_run(measurement: Measurement) -> Run:
    return Run(measurement.returncode, measurement.wall_seconds, measurement.peak_tree_bytes)


def prepare_raw(
    scale: float, scale_dir: Path, given: Path | None, args: argparse.Namespace
) -> tuple[Path, str, Run | None]:
    """The raw folder for `scale`: given, reused if an earlier generation finished, or generated."""
    if given is not None:
        if missing := raw.missing_files(given):
            raise BenchmarkError(f"raw files missing: {', '.join(map(str, missing))}")
        return given, "given", None
    raw_dir, done = scale_dir / "raw", scale_dir / "counts.json"
    if done.exists() and not args.regenerate:
        recorded = json.loads(done.read_text())
        if recorded.get("fingerprints") == raw.fingerprints(raw_dir):
            return raw_dir, "reused", None
    done.unlink(missing_ok=True)
    shutil.rmtree(raw_dir, ignore_errors=True)
    command = [sys.executable, "-m", "msd_sample", "--out", str(raw_dir)]
    command += ["--scale", str(scale), "--seed", str(SEED)]
    if args.join_share is not None:
        command += ["--join-share", str(args.join_share)]
    generation = as_run(run_measured(command, f"the sample generator at scale {scale}"))
    record = {"scale": scale, "seed": SEED, "fingerprints": raw.fingerprints(raw_dir)}
    done.write_text(json.dumps(record, indent=2))
    return raw_dir, "generated", generation


def build_all_command(raw_dir: Path, scale_dir: Path, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "luigi", "--module", "msd_tasks", "BuildAll",
        "--local-scheduler", "--workers", str(workers),
        "--paths-raw-dir", str(raw_dir),
        "--paths-checkpoint-dir", str(scale_dir / "checkpoints"),
        "--paths-output-dir", str(scale_dir / "output"),
    ]  # fmt: skip


def task_rows(measurement: Measurement) -> tuple[list[TaskRow], int | None]:
    """Per-task wall time and peak from Luigi's `running`/`done` lines, and the scheduler's peak."""
    started: dict[str, tuple[float, int]] = {}
    finished: dict[str, list[tuple[float, float, int]]] = {}  # row name -> (start, wall, pid)
    scheduler_pid = None
    for seconds, line in measurement.output_lines:
        if not (match := TASK_LINE.search(line)):
            continue
        pid, worker, status, family, parameters = match.groups()
        if worker_pid := WORKER_PID.search(worker):
            scheduler_pid = int(worker_pid.group(1))
        task = f"{family}({parameters})"
        if status == "running":
            started[task] = (seconds, int(pid))
        elif task in started:
            start, task_pid = started.pop(task)
            kind = KIND.search(parameters)
            name = f"{family} kind={kind.group(1)}" if kind else family
            finished.setdefault(name, []).append((start, seconds - start, task_pid))
    rows = []
    for name, tasks in finished.items():
        walls = [wall for _, wall, _ in tasks]
        # With --workers 1 tasks run inside the scheduler process: no peak of their own.
        peaks = [measurement.peak_by_pid.get(pid) for _, _, pid in tasks if pid != scheduler_pid]
        sampled = [peak for peak in peaks if peak]  # 0: sampled only as an exited zombie
        rows.append(
            TaskRow(
                name=name,
                count=len(tasks),
                start_seconds=min(start for start, _, _ in tasks),
                wall_seconds=sum(walls),
                max_wall_seconds=max(walls),
                peak_bytes=max(sampled) if sampled else None,
            )
        )
    rows.sort(key=lambda row: row.start_seconds)
    scheduler_peak = measurement.peak_by_pid.get(scheduler_pid) if scheduler_pid else None
    return rows, scheduler_peak


def tasks_started(measurement: Measurement) -> list[str]:
    return [
        match.group(4)
        for _, line in measurement.output_lines
        if (match := TASK_LINE.search(line)) and match.group(3) == "running"
    ]


def read_outputs(output_dir: Path) -> Outputs:
    counts = json.loads((output_dir / "manifest.json").read_text())["counts"]
    train = scipy.sparse.load_npz(output_dir / "train_sparse.npz")
    test = scipy.sparse.load_npz(output_dir / "test_sparse.npz")
    return Outputs(
        users=counts["users"],
        songs=counts["songs"],
        visible_plays=counts["visible_plays"],
        hidden_plays=counts["hidden_plays"],
        hidden_only_users=counts["hidden_only_users"],
        train_shape=list(train.shape),
        train_nnz=train.nnz,
        test_shape=list(test.shape),
        test_nnz=test.nnz,
    )


def count_lines(source: raw.RawSource) -> int:
    """Lines of a triplet file, inside its archive if it is one."""
    lines = 0
    with source.open() as file:
        while block := file.read(1 << 24):
            lines += block.count(b"\n")
    return lines


def median_run(runs: list[Measurement]) -> Measurement:
    """The run of median wall time (of an even count, the slower of the middle two)."""
    return sorted(runs, key=lambda run: run.wall_seconds)[len(runs) // 2]


def bench_scale(
    scale: float, data_dir: Path, args: argparse.Namespace, given: Path | None
) -> ScaleResult:
    share = "" if args.join_share is None else f"-join-{args.join_share}"
    scale_dir = data_dir / f"scale-{scale}{share}"
    scale_dir.mkdir(parents=True, exist_ok=True)
    print(f"scale {scale}: sample data", flush=True)
    raw_dir, raw_source, generation = prepare_raw(scale, scale_dir, given, args)
    command = build_all_command(raw_dir, scale_dir, args.workers)
    peer_command = [sys.executable, "-m", "benchmarks.peers.duckdb_build", str(raw_dir)]
    peer_command += [str(scale_dir / "peer"), "--threads", str(args.workers)]
    colds, peers, peer_differences = [], [], []
    for run in range(1, args.cold_runs + 1):
        print(f"scale {scale}: BuildAll, cold ({run} of {args.cold_runs})", flush=True)
        for folder in ("checkpoints", "output"):
            shutil.rmtree(scale_dir / folder, ignore_errors=True)
            (scale_dir / folder).mkdir()
        colds.append(run_measured(command, f"BuildAll (cold, scale {scale})"))
        if args.vs_peer:  # interleaved: a slow phase of the machine hits both alike
            print(f"scale {scale}: DuckDB script ({run} of {args.cold_runs})", flush=True)
            shutil.rmtree(scale_dir / "peer", ignore_errors=True)
            peers.append(run_measured(peer_command, f"the DuckDB script at scale {scale}"))
    if args.vs_peer:
        peer_differences = differences(scale_dir / "output", scale_dir / "peer")
    cold = median_run(colds)
    print(f"scale {scale}: BuildAll, warm", flush=True)
    warm = run_measured(command, f"BuildAll (warm, scale {scale})")
    notebook, note, notebooks = None, "", []
    if not args.vs_notebook:
        note = "not requested (--vs-notebook)"
    elif scale > NOTEBOOK_MAX_SCALE:
        note = f"skipped above scale {NOTEBOOK_MAX_SCALE} (it needs about 75 GB at 1.0)"
        print(f"scale {scale}: notebook {note}", flush=True)
    else:
        notebook_command = [sys.executable, "tests/notebook_port.py", str(raw_dir)]
        notebook_command += [str(scale_dir / "notebook"), "--processes", str(args.workers)]
        for run in range(1, args.notebook_runs + 1):
            print(f"scale {scale}: notebook port ({run} of {args.notebook_runs})", flush=True)
            shutil.rmtree(scale_dir / "notebook", ignore_errors=True)
            notebooks.append(run_measured(notebook_command, f"the notebook port at scale {scale}"))
        notebook = as_run(median_run(notebooks))
    tasks, scheduler_peak = task_rows(cold)
    triplet_files = [raw.raw_source(raw_dir, kind) for kind in raw.TRIPLET_KINDS]
    return ScaleResult(
        scale=scale,
        join_share=args.join_share,
        raw_source=raw_source,
        triplets=sum(count_lines(path) for path in triplet_files),
        generation=generation,
        cold=as_run(cold),
        cold_walls=[run.wall_seconds for run in colds],
        cold_peaks=[run.peak_tree_bytes for run in colds],
        tasks=tasks,
        scheduler_peak_bytes=scheduler_peak,
        outputs=read_outputs(scale_dir / "output"),
        warm=as_run(warm),
        warm_ran=tasks_started(warm),
        notebook=notebook,
        notebook_note=note,
        notebook_walls=[run.wall_seconds for run in notebooks],
        notebook_peaks=[run.peak_tree_bytes for run in notebooks],
        peer_walls=[run.wall_seconds for run in peers],
        peer_peaks=[run.peak_tree_bytes for run in peers],
        peer_differences=peer_differences,
    )


def machine() -> dict[str, str]:
    versions = {name: importlib.metadata.version(name) for name in PACKAGES}
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 1e9:.1f} GB",
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


def raw_dir_for(text: str) -> tuple[float, Path]:
    scale, _, folder = text.partition("=")
    if not folder:
        raise argparse.ArgumentTypeError("expected SCALE=DIR")
    return float(scale), Path(folder)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a count of 1 or more, not {text}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scale", type=float, action="append", required=True, help="sample scale (repeatable)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="luigi --workers, and the notebook's --processes (default 2)",
    )
    parser.add_argument(
        "--cold-runs",
        type=positive_int,
        default=3,
        help="cold BuildAll runs per scale; the one of median wall time is reported, and the "
        "largest peak of all (default 3)",
    )
    parser.add_argument(
        "--notebook-runs",
        type=positive_int,
        default=3,
        help="runs of the notebook port per scale, treated as the cold runs are (default 3)",
    )
    parser.add_argument(
        "--vs-notebook",
        action="store_true",
        help="also run tests/notebook_port.py (at scales <= 0.2)",
    )
    parser.add_argument(
        "--vs-peer",
        action="store_true",
        help="after each cold BuildAll run, run the plain DuckDB script on the same data "
        "(benchmarks/peers/duckdb_build.py) and check that it wrote the same deliverables",
    )
    parser.add_argument(
        "--join-share",
        type=float,
        help="generate data where this share of the plays survive the join (msd_sample "
        "--join-share; default: as the real files, about 0.36)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data/bench"), help="default data/bench"
    )
    parser.add_argument(
        "--raw-dir-for",
        type=raw_dir_for,
        action="append",
        default=[],
        metavar="SCALE=DIR",
        help="use existing raw files for a scale instead of generating them",
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="generate sample data even if it exists"
    )
    parser.add_argument(
        "--markdown", type=Path, help="write a markdown report here, and the results as .json"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    # Absolute, since the measured commands run from the repository root.
    data_dir = args.data_dir.resolve()
    given = {scale: folder.resolve() for scale, folder in args.raw_dir_for}
    try:
        scales = [
            bench_scale(scale, data_dir, args, given.get(scale))
            for scale in sorted(set(args.scale))
        ]
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    results = Results(
        command=shlex.join(["python", "-m", "benchmarks.bench", *arguments]),
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        machine=machine(),
        workers=args.workers,
        scales=scales,
    )
    targets = tables.targets(results)
    print(tables.plain_text(results, targets))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(tables.markdown(results, targets))
        document = {**asdict(results), "targets": [asdict(target) for target in targets]}
        args.markdown.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.markdown} and {args.markdown.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
