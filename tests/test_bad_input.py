"""Bad raw input through the whole graph: the build fails and the published set stays intact.

The messages themselves are checked where they are made (test_triplets, test_songs); here each
case runs a real build over a complete earlier one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from luigi.configuration import get_config
from luigi.execution_summary import LuigiStatusCode

from msd_tasks.formats.metrics import FILE_NAME as METRICS
from tests.conftest import copy_raw

TRAIN = "train_triplets.txt"
VISIBLE = "EvalDataYear1MSDWebsite/year1_test_triplets_visible.txt"
HIDDEN = "EvalDataYear1MSDWebsite/year1_test_triplets_hidden.txt"
GENRES = "msd-MAGD-genreAssignment.cls"
MSD = "full_msd_with_audio_features.h5"


def append(relative: str, data: bytes):
    def damage(raw_dir: Path) -> None:
        with open(raw_dir / relative, "ab") as file:
            file.write(data)

    return damage


def replace_with(relative: str, data: bytes):
    return lambda raw_dir: (raw_dir / relative).write_bytes(data)


def rewrite_msd(change):
    def damage(raw_dir: Path) -> None:
        frame = pd.read_hdf(raw_dir / MSD, key="df")
        key, frame = change(frame)
        (raw_dir / MSD).unlink()
        frame.to_hdf(raw_dir / MSD, key=key, mode="w")

    return damage


def lower_song_ids(relative: str):
    def damage(raw_dir: Path) -> None:
        lines = (raw_dir / relative).read_text().splitlines()
        fixed = []
        for line in lines:
            user, song, count = line.split("\t")
            fixed.append(f"{user}\t{song.lower()}\t{count}")
        (raw_dir / relative).write_text("\n".join(fixed) + "\n")

    return damage


def space_after_song_ids(raw_dir: Path) -> None:
    text = (raw_dir / TRAIN).read_text()
    lines = [line.split("\t") for line in text.splitlines()]
    (raw_dir / TRAIN).write_text("".join(f"{u}\t{s} \t{c}\n" for u, s, c in lines))


class Payload:
    """Unpickling it creates a folder named by `marker`."""

    marker = f"msd-tasks-payload-ran-{os.getpid()}"  # per test process

    def __reduce__(self):
        return (os.mkdir, (str(Path(tempfile.gettempdir(), self.marker)),))


def pickled_payload(frame: pd.DataFrame):
    frame = frame.astype({"title": object})
    frame.loc[frame.index[0], "title"] = Payload()
    return "df", frame


CASES = {
    "two fields": append(TRAIN, b"fd50c4007b68a3737fe052d5a4f78ce8aa117f3d\tSOX\n"),
    "four fields": append(VISIBLE, b"u\tSOX\t1\t2\n"),
    "non-integer count": append(HIDDEN, b"u\tSOX\tmany\n"),
    "zero count": append(TRAIN, b"u\tSOX\t0\n"),
    "empty user id": append(TRAIN, b"\tSOX\t1\n"),
    "header line": lambda raw: (raw / TRAIN).write_bytes(
        b"user_id\tsong_id\tplay_count\n" + (raw / TRAIN).read_bytes()
    ),
    "empty file": replace_with(HIDDEN, b""),
    "not utf-8": append(VISIBLE, b"u\xe9\tSOX\t1\n"),
    "genre line without tab": append(GENRES, b"TRAAAAA123 Rock\n"),
    "h5 without key df": rewrite_msd(lambda frame: ("songs", frame)),
    "h5 without needed columns": rewrite_msd(lambda frame: ("df", frame.drop(columns=["energy"]))),
    "h5 with a pickled payload": rewrite_msd(pickled_payload),
    "h5 with integer song ids": rewrite_msd(
        lambda frame: ("df", frame.assign(song_id=range(len(frame))))
    ),
    "h5 that is not hdf5": replace_with(MSD, b"song_id,title\n"),
    "song ids lower-cased in every triplet file": lambda raw: [
        lower_song_ids(name)(raw) for name in (TRAIN, VISIBLE, HIDDEN)
    ],
    "a space after every train song id": space_after_song_ids,
    "hex play count": append(TRAIN, b"u\tSOX\t0x10\n"),
}


def digests(folder: Path) -> dict[str, str]:
    """Every file's sha256, but metrics.prom's, which every build writes, failed ones too."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != METRICS
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_and_keeps_the_previous_deliverables(case, handmade, pipeline_in, tmp_path):
    raw_dir = copy_raw(handmade, tmp_path)
    pipeline = pipeline_in(raw_dir)
    pipeline.build_ok()
    before = digests(pipeline.output_dir)
    assert "manifest.json" in before and "user_df.h5" in before

    marker = Path(tempfile.gettempdir(), Payload.marker)
    if marker.exists():
        marker.rmdir()
    CASES[case](raw_dir)
    result = pipeline.build()
    assert result.status == LuigiStatusCode.FAILED, result.summary_text
    assert digests(pipeline.output_dir) == before
    assert not marker.exists(), "a pickled payload in the input ran"


def gate_failure(caplog) -> str:
    """The quality gate's message, as Luigi logged the failed task."""
    messages = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    failures = [m for m in messages if "quality gate failed" in m]
    assert failures, messages[-5:]
    return failures[0]


def test_skip_mode_with_every_train_line_malformed_fails_the_join_gate(
    handmade, pipeline_in, tmp_path, caplog
):
    raw_dir = copy_raw(handmade, tmp_path)
    pipeline = pipeline_in(raw_dir)
    pipeline.build_ok(on_bad_lines="skip")
    before = digests(pipeline.output_dir)
    space_after_song_ids(raw_dir)
    result = pipeline.build(on_bad_lines="skip")
    assert result.status == LuigiStatusCode.FAILED, result.summary_text
    assert digests(pipeline.output_dir) == before
    message = gate_failure(caplog)
    assert "JoinPlays: quality gate failed: The join kept 0 of " in message


def test_lower_cased_song_ids_name_the_stage_counts_and_ids(
    handmade, pipeline_in, tmp_path, caplog
):
    raw_dir = copy_raw(handmade, tmp_path)
    pipeline = pipeline_in(raw_dir)
    for name in (TRAIN, VISIBLE, HIDDEN):
        lower_song_ids(name)(raw_dir)
    result = pipeline.build()
    assert result.status == LuigiStatusCode.FAILED, result.summary_text
    assert not (pipeline.output_dir / "manifest.json").exists()
    message = gate_failure(caplog)
    assert "JoinPlays: quality gate failed: The join kept 0 users and 0 songs" in message
    assert "match no catalogue song: 'so" in message  # a lower-cased id, quoted
    assert "catalogue song ids look like 'SO" in message


def test_an_infinite_feature_counts_as_missing(handmade, pipeline_in, tmp_path):
    raw_dir = copy_raw(handmade, tmp_path)

    def infinite_energy(frame):
        frame = frame.copy()
        frame.loc[frame.index[0], "energy"] = float("inf")
        frame.loc[frame.index[1], "loudness"] = float("-inf")
        return "df", frame

    pipeline = pipeline_in(raw_dir)
    pipeline.build_ok()
    before = json.loads((pipeline.output_dir / "manifest.json").read_text())["counts"]
    rewrite_msd(infinite_energy)(raw_dir)
    pipeline.build_ok()
    after = json.loads((pipeline.output_dir / "manifest.json").read_text())["counts"]
    assert after["songs_without_features"] > before["songs_without_features"]
    user_df = pd.read_hdf(pipeline.output_dir / "user_df.h5", key="df")
    music = pd.DataFrame(user_df["MUSIC"].tolist())
    assert not music.isin([float("inf"), float("-inf")]).any().any()


def test_gate_warnings_reach_the_manifest_and_the_report(handmade, pipeline_in, tmp_path):
    raw_dir = copy_raw(handmade, tmp_path)
    (raw_dir / GENRES).write_text("TRNOSUCHTRACK00001\tRock\n")
    pipeline = pipeline_in(raw_dir)
    pipeline.build_ok()
    manifest = json.loads((pipeline.output_dir / "manifest.json").read_text())
    genre = [w for w in manifest["warnings"] if "matches no track" in w]
    assert genre == [
        f"CleanSongs: {GENRES} matches no track of the metadata file: every genre is missing"
    ]
    # The handmade data has a user with train and test lines: a warning by default.
    assert any("also have train lines" in w for w in manifest["warnings"])
    report = json.loads((pipeline.output_dir / "report" / "report.json").read_text())
    assert set(manifest["warnings"]) <= set(report["warnings"])


def test_test_users_in_train_can_be_an_error(handmade, pipeline_in, tmp_path, caplog):
    raw_dir = copy_raw(handmade, tmp_path)
    pipeline = pipeline_in(raw_dir)
    config = get_config()
    if not config.has_section("quality"):
        config.add_section("quality")
    config.set("quality", "test_users_in_train", "error")
    result = pipeline.build()
    assert result.status == LuigiStatusCode.FAILED, result.summary_text
    assert not (pipeline.output_dir / "manifest.json").exists()
    assert "users of the test files also have train lines" in gate_failure(caplog)


def test_a_play_count_overflow_names_the_user_and_the_song(handmade, pipeline_in, tmp_path, caplog):
    raw_dir = copy_raw(handmade, tmp_path)
    user, song, _ = (raw_dir / TRAIN).read_text().splitlines()[0].split("\t")
    append(TRAIN, f"{user}\t{song}\t{2**24}\n{user}\t{song}\t{2**24}\n".encode())(raw_dir)
    result = pipeline_in(raw_dir).build()
    assert result.status == LuigiStatusCode.FAILED, result.summary_text
    messages = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    named = [m for m in messages if f"the lines of user {user} and song {song}" in m]
    assert named, messages[-3:]
