"""The whole graph: real Luigi runs on real files, checked against the notebook port.

Layer 3 of the tests: `luigi.build(..., local_scheduler=True, detailed_summary=True)` in
process, and the `luigi` command line in a subprocess as users run it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

from msd_tasks.errors import InputError
from msd_tasks.formats.checkpoints import SongsCheckpoint
from msd_tasks.formats.metrics import FILE_NAME as METRICS
from msd_tasks.formats.raw import fingerprints
from msd_tasks.graph.build import BuildAll
from msd_tasks.graph.inputs import CleanSongs
from msd_tasks.graph.outputs import UserTable
from msd_tasks.stages.music import FEATURES
from msd_tasks.stages.shards import MIN_SHARDS, automatic_shard_count
from tests.conftest import copy_raw
from tests.deliverable_compare import assert_deliverables_match

DELIVERABLES = [
    "user_mapping.h5",
    "song_mapping.h5",
    "train_sparse.npz",
    "test_sparse.npz",
    "song_df.h5",
    "user_df.h5",
]


def success_markers(checkpoint_dir: Path) -> dict[str, int]:
    """Every checkpoint folder with the time its `_SUCCESS` marker was written."""
    return {
        str(marker.parent.relative_to(checkpoint_dir)): marker.stat().st_mtime_ns
        for marker in checkpoint_dir.rglob("_SUCCESS")
    }


def families(folders) -> list[str]:
    return sorted(Path(folder).parts[0] for folder in folders)


def test_build_equals_notebook_on_handmade_data(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    result = pipeline.build_ok(workers=1)
    assert result.scheduling_succeeded
    assert_deliverables_match(handmade / "notebook", pipeline.output_dir, pipeline.raw_dir)


def test_build_equals_notebook_on_sample_data_with_two_workers(sample, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(sample, tmp_path), n_shards=4)
    pipeline.build_ok(workers=2)
    assert_deliverables_match(sample / "notebook", pipeline.output_dir, pipeline.raw_dir)


def test_command_line_build(handmade, tmp_path):
    """What the README promises: `luigi --module msd_tasks BuildAll` with the three path flags."""
    raw_dir = copy_raw(handmade, tmp_path)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "luigi", "--module", "msd_tasks", "BuildAll",
        "--local-scheduler", "--workers", "2",
        "--paths-raw-dir", str(raw_dir),
        "--paths-checkpoint-dir", str(tmp_path / "checkpoints"),
        "--paths-output-dir", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "This progress looks :)" in done.stderr
    assert_deliverables_match(handmade / "notebook", out, raw_dir)


def test_resume_recomputes_only_the_deleted_shard_and_downstream(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path), n_shards=3)
    pipeline.build_ok()
    before = success_markers(pipeline.checkpoint_dir)
    shard = next(folder for folder in before if "shard=1" in folder)
    shutil.rmtree(pipeline.checkpoint_dir / shard)

    pipeline.build_ok()
    after = success_markers(pipeline.checkpoint_dir)
    assert set(after) == set(before)
    rewritten = [folder for folder in after if after[folder] != before[folder]]
    assert families(rewritten) == ["BuildReport", "PerUserMusic", "UserTable"]
    assert shard in rewritten
    assert_deliverables_match(handmade / "notebook", pipeline.output_dir, pipeline.raw_dir)


def test_warm_run_does_nothing(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok()
    before = success_markers(pipeline.checkpoint_dir)
    manifest = (pipeline.output_dir / "manifest.json").read_text()
    result = pipeline.build_ok()
    assert success_markers(pipeline.checkpoint_dir) == before
    assert (pipeline.output_dir / "manifest.json").read_text() == manifest
    assert "ran successfully" not in result.summary_text.replace(
        "1 ran successfully:\n    - 1 BuildAll", ""
    )


def test_changed_genre_file_reruns_exactly_what_depends_on_it(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok()
    before = success_markers(pipeline.checkpoint_dir)
    genres = pipeline.raw_dir / "msd-MAGD-genreAssignment.cls"
    genres.write_text(genres.read_text().replace("Pop_Rock", "Rock_Pop"))

    pipeline.build_ok()
    new = set(success_markers(pipeline.checkpoint_dir)) - set(before)
    assert families(new) == sorted(
        ["CleanSongs", "JoinPlays", "IndexMappings", "PlayMatrices", "SongTable", "UserTable"]
        + ["BuildReport", "RawDigests", "PlaysTable"]
        + ["PerUserMusic"] * 3
    )
    genres_out = pd.read_hdf(pipeline.output_dir / "song_df.h5", key="df")["genre"]
    assert "Rock_Pop" in set(genres_out.dropna()) and "Pop_Rock" not in set(genres_out.dropna())


def test_changed_scaling_reruns_only_music(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok()
    before = success_markers(pipeline.checkpoint_dir)
    pipeline.build_ok(music_scaling="zscore")
    new = set(success_markers(pipeline.checkpoint_dir)) - set(before)
    assert families(new) == sorted(["UserTable", "BuildReport"] + ["PerUserMusic"] * 3)
    assert all("music_scaling=zscore" in folder for folder in new if "PerUserMusic" in folder)


def test_missing_raw_files_are_missing_data(tmp_path, pipeline_in):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    pipeline = pipeline_in(raw_dir)
    result = pipeline.build()
    assert result.status == LuigiStatusCode.MISSING_EXT
    # Nothing published; only metrics.prom, which says the build failed, and why.
    assert os.listdir(pipeline.output_dir) == [METRICS]
    metrics = (pipeline.output_dir / METRICS).read_text()
    assert "msd_build_succeeded 0.0" in metrics
    assert "missing raw file" in metrics


def test_old_generations_are_pruned(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    genres = pipeline.raw_dir / "msd-MAGD-genreAssignment.cls"
    for round_ in range(5):
        genres.write_text(genres.read_text() + f"TRPRUNE{round_:011d}\tRap\n")
        pipeline.build_ok()
    generations = families(success_markers(pipeline.checkpoint_dir))
    assert generations.count("CleanSongs") == 3  # keep_generations defaults to 3
    assert generations.count("ImportTriplets") == 3  # one per file, never changed
    assert generations.count("PerUserMusic") == 3 * 3


def test_bad_line_fails_strict_and_is_counted_when_skipping(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    train = pipeline.raw_dir / "train_triplets.txt"
    lines = train.read_text().splitlines(keepends=True)
    lines.insert(2, "only\ttwo\n")
    train.write_text("".join(lines))

    result = pipeline.build()
    assert result.status == LuigiStatusCode.FAILED
    assert not (pipeline.output_dir / "manifest.json").exists()

    pipeline.build_ok(on_bad_lines="skip")
    manifest = json.loads((pipeline.output_dir / "manifest.json").read_text())
    assert manifest["counts"]["skipped_lines"] == {"train": 1, "visible": 0, "hidden": 0}
    assert manifest["parameters"]["on_bad_lines"] == "skip"
    assert_deliverables_match(handmade / "notebook", pipeline.output_dir, handmade / "raw")


def test_featureless_songs_are_counted_in_the_manifest(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok()
    counts = json.loads((pipeline.output_dir / "manifest.json").read_text())["counts"]
    songs = pd.read_hdf(pipeline.output_dir / "song_df.h5", key="df")
    users = pd.read_hdf(pipeline.output_dir / "user_df.h5", key="df")
    featureless = songs.index[songs[list(FEATURES)].isna().any(axis=1)]
    assert counts["songs_without_features"] == len(featureless) > 0
    touched = users["song_sparse_indices"].map(lambda songs_: bool(set(songs_) & set(featureless)))
    assert counts["users_with_featureless_songs"] == touched.sum() > 0
    no_music = users["MUSIC"].map(lambda music: all(np.isnan(music)))
    assert counts["users_without_music"] == no_music.sum() > 0
    assert counts["users"] == len(users) and counts["songs"] == len(songs)


def test_build_all_writes_the_report_of_its_build(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok(music_scaling="zscore")
    manifest = json.loads((pipeline.output_dir / "manifest.json").read_text())
    report = json.loads((pipeline.output_dir / "report" / "report.json").read_text())
    assert report["build"] == manifest["build"]
    users = pd.read_hdf(pipeline.output_dir / "user_mapping.h5", key="df")
    songs = pd.read_hdf(pipeline.output_dir / "song_mapping.h5", key="df")
    assert report["numbers"]["funnel.users"] == len(users)
    assert report["numbers"]["funnel.song_index"] == len(songs)
    families_run = {task["family"] for task in report["run"]["tasks"]}
    # The report is drawn beside UserTable and IndexMappings: it covers the tasks it
    # waits for.
    upstream = {"CleanSongs", "ImportTriplets", "JoinPlays", "PerUserMusic", "PlayMatrices"}
    assert families_run == upstream | {"SongTable"}
    html = (pipeline.output_dir / "report" / "index.html").read_text()
    assert "zscore" in html
    for image in re.findall(r'<img src="([^"]+)"', html):
        assert (pipeline.output_dir / "report" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_raw_files_exit_20_and_list_every_path(handmade, tmp_path):
    raw_dir = copy_raw(handmade, tmp_path)
    (raw_dir / "train_triplets.txt").unlink()
    shutil.rmtree(raw_dir / "EvalDataYear1MSDWebsite")
    command = [
        sys.executable, "-m", "luigi", "--module", "msd_tasks", "BuildAll", "--local-scheduler",
        "--paths-raw-dir", str(raw_dir),
        "--paths-checkpoint-dir", str(tmp_path / "checkpoints"),
        "--paths-output-dir", str(tmp_path / "out"),
    ]  # fmt: skip
    repo = Path(__file__).resolve().parent.parent  # its luigi.cfg sets the exit codes
    done = subprocess.run(
        command, cwd=repo, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 20, done.stderr[-2000:]
    assert "3 raw input file(s) missing" in done.stderr
    for name in (
        "train_triplets.txt",
        "year1_test_triplets_visible.txt",
        "year1_test_triplets_hidden.txt",
    ):
        assert name in done.stderr
    assert "millionsongdataset.com/tasteprofile" in done.stderr
    assert os.listdir(tmp_path / "out") == [METRICS]  # nothing published


def test_a_deleted_deliverable_is_published_again(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok()
    before = success_markers(pipeline.checkpoint_dir)
    (pipeline.output_dir / "user_df.h5").unlink()
    pipeline.build_ok()
    assert (pipeline.output_dir / "user_df.h5").is_file()
    assert success_markers(pipeline.checkpoint_dir) == before  # republished, not recomputed
    assert_deliverables_match(handmade / "notebook", pipeline.output_dir, pipeline.raw_dir)


def test_a_raw_file_changed_during_the_run_fails_the_task(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    planned = fingerprints(pipeline.raw_dir)
    genres = pipeline.raw_dir / "msd-MAGD-genreAssignment.cls"
    genres.write_text(genres.read_text() + "TRLATE0000000001\tRap\n")  # after planning
    with pytest.raises(InputError, match="modified during the run"):
        CleanSongs(fingerprints=planned).build(SongsCheckpoint(tmp_path))


@pytest.mark.parametrize("damage", ["delete user_df.h5", "truncate user_df.h5", "no checksums"])
def test_a_checkpoint_missing_a_deliverable_is_built_again(handmade, pipeline_in, tmp_path, damage):
    """As a UserTable checkpoint written before it also wrote user_df.h5 would be."""
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    pipeline.build_ok()
    (folder,) = [f for f in success_markers(pipeline.checkpoint_dir) if f.startswith("UserTable")]
    checkpoint = pipeline.checkpoint_dir / folder
    frame = checkpoint / "user_df.h5"
    if damage == "delete user_df.h5":
        (pipeline.output_dir / "user_df.h5").unlink()  # the published hard link
        frame.unlink()
    elif damage == "truncate user_df.h5":
        os.truncate(frame, 100)  # the published file is the same inode
    else:
        (checkpoint / "checksums.json").unlink()

    result = pipeline.build_ok()

    ran = result.summary_text.split("ran successfully")[1]
    assert "UserTable" in ran and "Publish" in ran and "JoinPlays" not in ran
    assert_deliverables_match(handmade / "notebook", pipeline.output_dir, pipeline.raw_dir)


def test_n_shards_0_means_one_shard_per_384_mib_of_train_text(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path), n_shards=0)
    pipeline.build_ok()
    manifest = json.loads((pipeline.output_dir / "manifest.json").read_text())
    train_bytes = (pipeline.raw_dir / "train_triplets.txt").stat().st_size
    assert manifest["parameters"]["n_shards"] == automatic_shard_count(train_bytes) == MIN_SHARDS
    shards = {f for f in success_markers(pipeline.checkpoint_dir) if f.startswith("PerUserMusic")}
    assert len(shards) == MIN_SHARDS
    assert_deliverables_match(handmade / "notebook", pipeline.output_dir, pipeline.raw_dir)


def test_a_stage_started_alone_uses_the_configured_shard_count(handmade, pipeline_in, tmp_path):
    pipeline_in(copy_raw(handmade, tmp_path), n_shards=4)  # [pipeline] n_shards = 4
    assert UserTable().n_shards == 4
    assert BuildAll().requires().n_shards == 4
    assert len(UserTable().requires()["shards"]) == 4


def test_a_negative_shard_count_is_refused_and_a_large_one_has_no_limit(
    handmade, pipeline_in, tmp_path
):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    with pytest.raises(ValueError, match=r"n_shards must be 0 \(automatic\) or at least 1"):
        UserTable(n_shards=-1)
    assert UserTable(n_shards=40_000).n_shards == 40_000  # no int16 shard column any more
    assert not pipeline.checkpoint_dir.exists()


@pytest.mark.process  # a fresh interpreter per case
@pytest.mark.parametrize(("before", "after"), [("", "True"), ("gc.disable(); ", "False")])
def test_importing_msd_tasks_leaves_the_collector_as_it_found_it(before, after):
    script = f"import gc; {before}import msd_tasks; print(gc.isenabled())"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == after
