"""Atomic files and folders, generation pruning and orphan cleanup, on real files."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from msd_tasks.formats.atomic import (
    SUCCESS,
    atomic_file,
    atomic_folder,
    prune_generations,
    remove_orphan_temporaries,
)
from msd_tasks.formats.parquet import (
    parquet_metadata,
    read_parquet,
    run_concurrently,
    write_parquet,
)


def test_atomic_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_file(target) as temporary:
        temporary.write_text("half")
        assert not target.exists()
        assert temporary.name.startswith(".out.txt.tmp-")
    assert target.read_text() == "half"
    assert os.listdir(target.parent) == ["out.txt"]


def test_failed_atomic_file_leaves_the_previous_content(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as temporary:
        temporary.write_text("new")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_folder_marks_success_last_and_replaces_whole(tmp_path):
    target = tmp_path / "Task" / "gen"
    with atomic_folder(target) as folder:
        (folder / "a.txt").write_text("1")
    assert sorted(os.listdir(target)) == [SUCCESS, "a.txt"]
    with atomic_folder(target) as folder:
        (folder / "b.txt").write_text("2")
    assert sorted(os.listdir(target)) == [SUCCESS, "b.txt"]
    with pytest.raises(ValueError), atomic_folder(target) as folder:
        (folder / "c.txt").write_text("3")
        raise ValueError("crash")
    assert sorted(os.listdir(target)) == [SUCCESS, "b.txt"]
    assert os.listdir(target.parent) == ["gen"]


def test_parquet_round_trip_casts_to_schema_and_keeps_metadata(tmp_path):
    schema = pa.schema([pa.field("a", pa.int32(), nullable=False), pa.field("b", pa.string())])
    table = pa.table({"b": ["x", None], "a": [1, 2]})
    write_parquet(table, tmp_path / "t.parquet", schema, written_by={"pid": 7})
    back = read_parquet(tmp_path / "t.parquet")
    assert back.schema.names == ["a", "b"]
    assert back.schema.field("a").type == pa.int32()
    assert back.column("b").to_pylist() == ["x", None]
    assert parquet_metadata(tmp_path / "t.parquet")["written_by"] == {"pid": 7}


@pytest.mark.parametrize(("compress", "codec"), [(True, "LZ4"), (False, "UNCOMPRESSED")])
def test_parquet_is_compressed_only_when_asked(tmp_path, compress, codec):
    table = pa.table({"user": pa.array(range(1000), pa.int32()), "id": ["a", "b"] * 500})
    write_parquet(table, tmp_path / "t.parquet", compress=compress, lines=1000)
    columns = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    assert {columns.column(i).compression for i in range(columns.num_columns)} == {codec}
    assert read_parquet(tmp_path / "t.parquet").equals(table)
    assert parquet_metadata(tmp_path / "t.parquet")["lines"] == 1000  # not taken for metadata


def test_prune_keeps_generations_in_use_and_the_newest(tmp_path):
    generations = []
    for index in range(5):
        folder = tmp_path / "Task" / "p=1" / f"g{index}"
        folder.mkdir(parents=True)
        (folder / SUCCESS).write_text("")
        os.utime(folder / SUCCESS, ns=(index * 10**9, index * 10**9))
        generations.append(folder)
    removed = prune_generations(tmp_path, keep=3, in_use={generations[0]})
    assert sorted(path.name for path in removed) == ["g1", "g2"]
    assert sorted(os.listdir(tmp_path / "Task" / "p=1")) == ["g0", "g3", "g4"]


def test_orphan_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    with atomic_folder(tmp_path / "Task" / "gen") as live:
        live_name = live.name
        orphan = tmp_path / "Task" / live_name.replace(f"-{os.getpid()}-", f"-{dead_pid}-")
        orphan.mkdir()
        (orphan / "half.parquet").write_text("partial")
        foreign = tmp_path / "Task" / ".gen.tmp-otherhost-1-0123abcd"
        foreign.mkdir()
        removed = remove_orphan_temporaries(tmp_path)
        assert removed == [orphan]
        assert live.exists() and foreign.exists() and not orphan.exists()


def test_concurrent_calls_all_run_and_a_failure_drops_the_calls_not_started(tmp_path):
    finished = []

    def write(name: str) -> None:
        (tmp_path / name).write_text(name)
        finished.append(name)

    def fail(message: str) -> None:
        raise ValueError(message)

    run_concurrently([lambda n=n: write(n) for n in "abcde"])
    assert sorted(finished) == list("abcde")

    finished.clear()
    with pytest.raises(ValueError, match="first failure"):
        run_concurrently([lambda: write("f"), lambda: fail("first failure"), lambda: write("g")], 1)
    assert finished == ["f"]  # "g" was queued behind the failure: never started

    both_running = threading.Barrier(2)

    def fail_together(message: str) -> None:
        both_running.wait(timeout=10)
        raise ValueError(message)

    with pytest.raises(ValueError, match="one") as raised:
        run_concurrently([lambda: fail_together("one"), lambda: fail_together("two")], 2)
    assert "two" in "".join(raised.value.__notes__)
