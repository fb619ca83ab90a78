"""Benchmark BenchmarkSplit against RecVAE's preprocessing (its faithful port, tests/recvae_port.py)
on one triplet folder, side by side, and check that both write the same seven files.

`python -m benchmarks.split_bench --raw-dir DIR --work DIR [--rounds N] [--json F] [--markdown F]`
from the repository root. Each round runs, interleaved: BenchmarkSplit cold (fresh checkpoints:
the train import included), BenchmarkSplit with the train import's checkpoint already there (as
after a BuildAll), and the reference script. Walls and process-tree peaks by benchmarks.measure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.bench import REPO, machine, run_measured
from msd_tasks.formats.split_layout import CSV_FILES, SPLIT_FOLDER

GIB = 1 << 30


def split_command(raw_dir: Path, checkpoints: Path, output: Path) -> list[str]:
    return [
        sys.executable, "-m", "luigi", "--module", "msd_tasks", "BenchmarkSplit",
        "--local-scheduler", "--workers", "2",
        "--paths-raw-dir", str(raw_dir),
        "--paths-checkpoint-dir", str(checkpoints),
        "--paths-output-dir", str(output),
    ]  # fmt: skip


def reference_command(raw_dir: Path, output: Path) -> list[str]:
    return [
        sys.executable,
        "tests/recvae_port.py",
        str(raw_dir / "train_triplets.txt"),
        str(output),
    ]


def differing_files(ours: Path, reference: Path) -> list[str]:
    return [
        name for name in CSV_FILES if (ours / name).read_bytes() != (reference / name).read_bytes()
    ]


def bench(raw_dir: Path, work: Path, rounds: int) -> dict:
    runs: dict[str, list[dict]] = {"cold": [], "import checkpoint kept": [], "reference": []}
    checkpoints, output = work / "checkpoints", work / "output"
    for _ in range(rounds):
        shutil.rmtree(checkpoints, ignore_errors=True)
        shutil.rmtree(output, ignore_errors=True)
        cold = run_measured(split_command(raw_dir, checkpoints, output), "BenchmarkSplit (cold)")
        for folder in (checkpoints / "MultVaeSplit", output):
            shutil.rmtree(folder)  # the import's checkpoint stays
        warm = run_measured(split_command(raw_dir, checkpoints, output), "BenchmarkSplit (warm)")
        shutil.rmtree(work / "reference", ignore_errors=True)
        reference = run_measured(reference_command(raw_dir, work / "reference"), "the reference")
        for name, measurement in (
            ("cold", cold),
            ("import checkpoint kept", warm),
            ("reference", reference),
        ):
            runs[name].append(
                {
                    "wall_seconds": round(measurement.wall_seconds, 2),
                    "peak_bytes": measurement.peak_tree_bytes,
                }
            )
    differing = differing_files(output / SPLIT_FOLDER, work / "reference")
    best = {name: min(r["wall_seconds"] for r in measured) for name, measured in runs.items()}
    return {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "raw_dir": raw_dir.name,
        "train_bytes": (raw_dir / "train_triplets.txt").stat().st_size,
        "counts": json.loads((output / SPLIT_FOLDER / "manifest.json").read_text())["counts"],
        "runs": runs,
        "best_wall_seconds": best,
        "speedup": {
            name: round(best["reference"] / best[name], 1)
            for name in ("cold", "import checkpoint kept")
        },
        "differing_files": differing,
    }


def markdown(result: dict) -> str:
    lines = [
        f"BenchmarkSplit against RecVAE's preprocessing ({result['date']}, "
        f"{result['train_bytes'] / 1e9:.2f} GB of train triplets; best of "
        f"{len(result['runs']['reference'])}, interleaved):",
        "",
        "| run | wall (best) | peak (max, process tree) | reference / this |",
        "|---|---|---|---|",
    ]
    for name, measured in result["runs"].items():
        peak = max(r["peak_bytes"] for r in measured) / GIB
        speedup = result["speedup"].get(name)
        lines.append(
            f"| {name} | {result['best_wall_seconds'][name]:.1f} s | {peak:.2f} GiB | "
            f"{f'{speedup}x' if speedup else ''} |"
        )
    same = (
        "identical" if not result["differing_files"] else f"DIFFERENT: {result['differing_files']}"
    )
    lines += ["", f"The seven files: {same}. Counts: {result['counts']}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, required=True)
    parser.add_argument(
        "--work", type=Path, required=True, help="folder for checkpoints and outputs"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    result = bench(args.raw_dir.resolve(), args.work.resolve(), args.rounds)
    text = markdown(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.markdown:
        args.markdown.write_text(text)
    return 1 if result["differing_files"] else 0


if __name__ == "__main__":
    assert Path.cwd() == REPO, "run from the repository root"
    sys.exit(main())
