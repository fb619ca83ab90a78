"""BenchmarkSplit, the task family: the published split equals the reference port's files byte
for byte, resumes like every task, fails its gate without publishing, and runs from the
command line the README gives."""

from __future__ import annotations

import json
import subprocess
import sys

import luigi
import pytest
from luigi.execution_summary import LuigiStatusCode

from msd_tasks import BenchmarkSplit
from msd_tasks.formats.split_layout import COPIES, CSV_FILES, SPLIT_FOLDER
from msd_tasks.formats.verify import problems
from tests.luigid import LUIGI_CFG, REPO
from tests.recvae_port import reference_split

# Small enough for the sample at scale 0.001 to hold many held-out users.
SMALL = {"min_songs_per_user": 3, "min_users_per_song": 20, "heldout_users": 150}


def build(**parameters):
    return luigi.build(
        [BenchmarkSplit(**parameters)],
        local_scheduler=True,
        detailed_summary=True,
        log_level="WARNING",
    )


@pytest.fixture
def split_pipeline(raw_files, pipeline_in):
    return pipeline_in(raw_files("sample", scale=0.001, seed=8))


def test_the_published_split_is_the_reference_scripts_byte_for_byte(split_pipeline, tmp_path):
    result = build(**SMALL)
    assert result.status == LuigiStatusCode.SUCCESS, result.summary_text
    published = split_pipeline.output_dir / SPLIT_FOLDER
    reference = tmp_path / "reference"
    reference_split(
        split_pipeline.raw_dir / "train_triplets.txt",
        reference,
        min_items_per_user=SMALL["min_songs_per_user"],
        min_users_per_item=SMALL["min_users_per_song"],
        heldout_users=SMALL["heldout_users"],
    )
    assert sorted(path.name for path in reference.iterdir()) == sorted(CSV_FILES)
    for name in CSV_FILES:
        assert (published / name).read_bytes() == (reference / name).read_bytes(), name

    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["state"] == "complete"
    assert sorted(manifest["files"]) == sorted(CSV_FILES + COPIES)
    assert manifest["parameters"]["heldout_users"] == SMALL["heldout_users"]
    users = len((reference / "unique_uid.txt").read_text().splitlines())
    assert manifest["counts"]["users"] == users
    assert list(manifest["inputs"]) == ["train_triplets.txt"]
    assert problems(published, split_pipeline.raw_dir) == []  # verify --inputs passes

    # Resumes: nothing to do the second time, the manifest untouched.
    before = (published / "manifest.json").read_bytes()
    again = build(**SMALL)
    assert again.status == LuigiStatusCode.SUCCESS, again.summary_text
    assert "ran successfully" not in again.summary_text, again.summary_text
    assert (published / "manifest.json").read_bytes() == before
    # BuildAll's deliverables are not touched by it, nor do they touch it.
    assert not (split_pipeline.output_dir / "manifest.json").exists()


def test_a_split_the_data_cannot_make_fails_its_gate_and_publishes_nothing(split_pipeline):
    result = build(**{**SMALL, "heldout_users": 10_000_000})
    assert result.status == LuigiStatusCode.FAILED, result.summary_text
    assert "MultVaeSplit" in result.summary_text
    assert not (split_pipeline.output_dir / SPLIT_FOLDER / "manifest.json").exists()


@pytest.mark.process
def test_the_readme_command_writes_the_seven_files(raw_files, tmp_path):
    raw_dir = raw_files("sample", scale=0.001, seed=8)
    (tmp_path / "luigi.cfg").write_text(LUIGI_CFG)
    command = [
        sys.executable, "-m", "luigi", "--module", "msd_tasks", "BenchmarkSplit",
        "--local-scheduler",
        "--paths-raw-dir", str(raw_dir),
        "--paths-checkpoint-dir", str(tmp_path / "checkpoints"),
        "--paths-output-dir", str(tmp_path / "out"),
        "--min-songs-per-user", "3", "--min-users-per-song", "20", "--heldout-users", "150",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "LUIGI_CONFIG_PATH": str(tmp_path / "luigi.cfg")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "out" / SPLIT_FOLDER
    assert all((folder / name).stat().st_size > 0 for name in CSV_FILES)
    assert (folder / "train.csv").read_text().startswith("uid,sid\n")
