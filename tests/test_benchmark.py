"""Smoke test of `python -m benchmarks.bench` at a tiny scale, run as users run it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse

from benchmarks.peers.compare import differences
from msd_tasks.stages.shards import automatic_shard_count

REPO = Path(__file__).resolve().parents[1]
SCALE = "0.001"
FAMILIES = [
    "CleanSongs",
    "ImportTriplets",
    "JoinPlays",
    "IndexMappings",
    "PlayMatrices",
    "SongTable",
    "PerUserMusic",
    "UserTable",
    "Publish",
]
NUMBER = r"([0-9][0-9,]*\.?[0-9]*)"


def run_bench(root: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "benchmarks.bench", "--scale", SCALE,
        "--data-dir", str(root / "data"), "--markdown", str(root / "RESULTS.md"), *extra,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench")
    done = run_bench(root, "--vs-notebook", "--vs-peer")
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def markdown_row(markdown: str, first_cell: str) -> list[str]:
    """The cells of the first markdown table row whose first cell starts with `first_cell`."""
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(first_cell):
            return cells
    raise AssertionError(f"no table row starting with {first_cell!r}")


def numbers(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "returncode":
                yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


def test_markdown_holds_every_table(bench):
    markdown = (bench / "RESULTS.md").read_text()
    produced = re.search(r"^Produced by `(python -m benchmarks\.bench [^`]*)`", markdown, re.M)
    assert produced and "--vs-notebook" in produced.group(1).split()
    for family in FAMILIES:
        row = markdown_row(markdown, family)
        assert re.fullmatch(NUMBER, row[3]), row  # summed wall seconds
    train = bench / "data" / f"scale-{SCALE}" / "raw" / "train_triplets.txt"
    expected_shards = automatic_shard_count(train.stat().st_size)  # [pipeline] n_shards = 0
    assert markdown_row(markdown, "PerUserMusic")[1] == str(expected_shards)
    summary = markdown_row(markdown, SCALE)
    assert float(summary[2]) > 0  # cold wall seconds
    warm = markdown_row(markdown, "BuildAll warm")
    assert float(warm[1]) > 0 and warm[3] == "ran no task"
    ratio = markdown_row(markdown, "wall: notebook / BuildAll cold")
    assert re.fullmatch(NUMBER + "x", ratio[1]), ratio


def test_json_numbers_are_positive(bench):
    results = json.loads((bench / "RESULTS.json").read_text())
    (scale,) = results["scales"]
    for run in ("generation", "cold", "warm", "notebook"):
        assert scale[run]["returncode"] == 0
    values = list(numbers(results))
    assert len(values) > 50
    assert all(value > 0 for value in values)
    assert {task["name"].split()[0] for task in scale["tasks"]} >= set(FAMILIES)


def repeated_runs(bench: Path, runs: str, row_name: str) -> tuple[list, list]:
    """The walls and peaks of a command run three times (the default): the median reported,
    one markdown row per run."""
    (scale,) = json.loads((bench / "RESULTS.json").read_text())["scales"]
    walls, peaks = scale[f"{runs}_walls"], scale[f"{runs}_peaks"]
    assert len(walls) == len(peaks) == 3
    assert scale[runs]["wall_seconds"] == sorted(walls)[1]
    markdown = (bench / "RESULTS.md").read_text()
    for number, wall in enumerate(walls, start=1):
        assert markdown_row(markdown, f"{row_name}, run {number}")[1] == f"{wall:.2f}"
    return walls, peaks


def test_the_median_cold_run_is_reported_and_the_largest_peak(bench):
    walls, peaks = repeated_runs(bench, "cold", "BuildAll cold")
    summary = markdown_row((bench / "RESULTS.md").read_text(), SCALE)
    assert summary[2] == f"{sorted(walls)[1]:.2f}"
    assert summary[3] == f"{max(peaks) / 1e6:,.0f}"


def test_the_notebook_port_runs_as_often_and_is_reported_the_same_way(bench):
    walls, _ = repeated_runs(bench, "notebook", "notebook port")
    summary = markdown_row((bench / "RESULTS.md").read_text(), SCALE)
    assert summary[7] == f"{sorted(walls)[1]:.2f}"  # notebook s
    (scale,) = json.loads((bench / "RESULTS.json").read_text())["scales"]
    cold_median = sorted(scale["cold_walls"])[1]
    assert summary[9] == f"{sorted(walls)[1] / cold_median:.1f}x"  # wall ratio of the medians


def test_the_duckdb_script_runs_after_each_cold_run_and_writes_the_same_deliverables(bench):
    (scale,) = json.loads((bench / "RESULTS.json").read_text())["scales"]
    assert len(scale["peer_walls"]) == len(scale["cold_walls"]) == 3
    assert scale["peer_differences"] == []
    markdown = (bench / "RESULTS.md").read_text()
    for number, wall in enumerate(scale["peer_walls"], start=1):
        row = markdown_row(markdown, f"DuckDB script, run {number}")
        assert row[1] == f"{wall:.2f}" and row[3] == "same deliverables as BuildAll", row
    best = min(scale["cold_walls"]) / min(scale["peer_walls"])
    row = markdown_row(markdown, "wall: BuildAll cold / DuckDB script, best of each")
    assert row[1] == f"{best:.2f}x"


def test_the_deliverables_check_finds_a_changed_play_count_and_a_changed_order(bench, tmp_path):
    output = bench / "data" / f"scale-{SCALE}" / "output"
    assert differences(output, bench / "data" / f"scale-{SCALE}" / "peer") == []
    changed = tmp_path / "changed"
    shutil.copytree(output, changed, ignore=shutil.ignore_patterns("report"))
    train = scipy.sparse.load_npz(changed / "train_sparse.npz")
    train.data[0] += 1
    scipy.sparse.save_npz(changed / "train_sparse.npz", train, compressed=False)
    mapping = pd.read_hdf(changed / "song_mapping.h5", key="df")
    mapping["song_id"] = mapping["song_id"].iloc[::-1].to_numpy()
    mapping.to_hdf(changed / "song_mapping.h5", key="df", mode="w")
    assert differences(output, changed) == [
        "song_mapping.h5: different ids or order",
        "train_sparse.npz: different matrices",
    ]


def test_reported_counts_equal_the_outputs(bench):
    outputs = json.loads((bench / "RESULTS.json").read_text())["scales"][0]["outputs"]
    folder = bench / "data" / f"scale-{SCALE}" / "output"
    users = pq.read_metadata(folder / "user_df.parquet").num_rows
    songs = pq.read_metadata(folder / "song_df.parquet").num_rows
    train = scipy.sparse.load_npz(folder / "train_sparse.npz")
    test = scipy.sparse.load_npz(folder / "test_sparse.npz")
    assert (outputs["users"], outputs["songs"]) == (users, songs)
    assert outputs["train_shape"] == outputs["test_shape"] == [songs, users]
    assert (outputs["train_nnz"], outputs["test_nnz"]) == (train.nnz, test.nnz)
    markdown = (bench / "RESULTS.md").read_text()
    assert markdown_row(markdown, "users")[1] == f"{users:,}"
    assert markdown_row(markdown, "train_sparse.npz nonzeros")[1] == f"{train.nnz:,}"


def test_failed_build_fails_loudly(bench, tmp_path):
    raw_dir = tmp_path / "raw"
    shutil.copytree(bench / "data" / f"scale-{SCALE}" / "raw", raw_dir)
    with open(raw_dir / "train_triplets.txt", "a") as file:
        file.write("a user\tSOAAAAAAAAAAAAAAAA\tnot a count\n")
    done = run_bench(tmp_path, "--raw-dir-for", f"{SCALE}={raw_dir}")
    assert done.returncode != 0
    assert "BuildAll (cold" in done.stderr and "exited with 30" in done.stderr
    assert "train_triplets.txt" in done.stderr  # the tail of Luigi's log names the bad file
    assert not (tmp_path / "RESULTS.md").exists()
