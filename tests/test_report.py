"""The build report on real small builds: every number on the page recomputed from the deliverables.

The expected numbers come from the `.h5` and `.npz` deliverables (the report reads the parquet
copies), with pandas, numpy and scipy, rounded as the page shows them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from msd_tasks import Publish
from msd_tasks.graph.build import build_summary
from msd_tasks.report.figures import short_count
from msd_tasks.report.numbers import ReportError
from msd_tasks.report.page import render_report
from msd_tasks.report.summary import BuildSummary
from msd_tasks.stages.music import DIMENSIONS, FEATURES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID_TAGS = {"meta", "img", "br", "hr", "link", "input"}
HOSTILE_WARNING = '<script>alert("x")</script> & 3 songs'


class Page(HTMLParser):
    """A page's text of each data-key element, its src/href references and its tag balance."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.numbers: dict[str, str] = {}
        self.images: list[str] = []
        self.references: list[str] = []
        self.tags: set[str] = set()
        self.unbalanced: list[str] = []
        self.text: list[str] = []
        self._open: list[str] = []
        self._key: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        if tag not in VOID_TAGS:
            self._open.append(tag)
        self.references += [attributes[name] for name in ("src", "href") if name in attributes]
        if tag == "img":
            self.images.append(attributes["src"])
        if "data-key" in attributes:
            assert attributes["data-key"] not in self.numbers, attributes["data-key"]
            self._key = attributes["data-key"]
            self.numbers[self._key] = ""

    def handle_endtag(self, tag):
        if not self._open or self._open.pop() != tag:
            self.unbalanced.append(tag)
        self._key = None

    def handle_data(self, data):
        self.text.append(data)
        if self._key is not None:
            self.numbers[self._key] += data

    def number(self, key: str) -> float | None:
        shown = self.numbers[key]
        return None if shown == "n/a" else float(shown.replace(",", ""))


def task_facts(checkpoint_dir: Path) -> list[dict]:
    """The run.json of every checkpoint, as the lead's task passes them."""
    tasks = []
    for path in sorted(checkpoint_dir.glob("**/run.json")):
        run = json.loads(path.read_text())
        tasks.append(
            {
                "task": run["task"],
                "family": path.relative_to(checkpoint_dir).parts[0],
                "wall_seconds": run["wall_seconds"],
                "peak_rss_bytes": run["peak_rss_bytes"],
            }
        )
    return tasks


def summary_of(pipeline, **parameters) -> BuildSummary:
    """The summary of the build just made, as Publish and BuildReport make it."""
    summary = build_summary(Publish(**parameters))
    manifest = json.loads((pipeline.output_dir / "manifest.json").read_text())
    assert summary.build == manifest["build"]
    return summary


def expected_numbers(pipeline) -> dict[str, float | None]:
    """The page's numbers recomputed from the raw files, the .h5/.npz deliverables and the
    checkpoints' run.json files, rounded as shown."""
    output_dir = pipeline.output_dir
    users = pd.read_hdf(output_dir / "user_df.h5", key="df")
    songs = pd.read_hdf(output_dir / "song_df.h5", key="df")
    train = sp.load_npz(output_dir / "train_sparse.npz").tocsr()
    test = sp.load_npz(output_dir / "test_sparse.npz")
    listeners = train.getnnz(axis=1)
    music = np.array(users["MUSIC"].tolist(), dtype=np.float64)
    complete = music[~np.isnan(music).any(axis=1)]
    correlation = np.corrcoef(complete.T)
    tasks = task_facts(pipeline.checkpoint_dir)
    with open(pipeline.raw_dir / "train_triplets.txt", "rb") as train_file:
        train_lines = sum(1 for _ in train_file)
    expected = {
        "funnel.train_lines": train_lines,
        "funnel.users": len(users),
        "funnel.song_index": len(songs),
        "funnel.train_nonzeros": train.nnz,
        "funnel.test_nonzeros": test.nnz,
        "funnel.mismatched_plays_dropped": 0,
        "plays_per_user.count": len(users),
        "plays_per_user.median": round(float(users["num_songs"].median()), 1),
        "plays_per_user.mean": round(float(users["num_songs"].mean()), 2),
        "plays_per_user.max": int(users["num_songs"].max()),
        "plays_per_user.total": int(users["num_songs"].sum()),
        "listeners_per_song.count": train.shape[0],
        "listeners_per_song.zeros": int((listeners == 0).sum()),
        "listeners_per_song.median": round(float(np.median(listeners)), 1),
        "listeners_per_song.max": int(listeners.max()),
        "play_counts.count": train.nnz,
        "play_counts.median": round(float(np.median(train.data)), 1),
        "play_counts.max": int(train.data.max()),
        "play_counts.total": int(train.data.astype(np.int64).sum()),
        "music.users_without_music": len(music) - len(complete),
        "run.tasks": len(tasks),
        "run.total_wall_seconds": round(sum(t["wall_seconds"] for t in tasks), 2),
        "run.max_peak_mb": round(max(t["peak_rss_bytes"] for t in tasks) / 1e6),
    }
    for genre, count in songs["genre"].fillna("(none)").value_counts().items():
        expected[f"genre.{genre}"] = int(count)
    for i, dimension in enumerate(DIMENSIONS):
        expected[f"music.{dimension}.mean"] = round(float(np.nanmean(music[:, i])), 3)
        expected[f"music.{dimension}.count"] = int((~np.isnan(music[:, i])).sum())
        for j, other in enumerate(DIMENSIONS):
            expected[f"music_corr.{dimension}.{other}"] = round(float(correlation[i, j]), 3)
    for task in tasks:
        expected[f"tasks.{task['task']}.wall_seconds"] = round(task["wall_seconds"], 2)
    return expected


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    length, chunk, width, height = struct.unpack(">I4sII", data[8:24])
    assert (length, chunk) == (13, b"IHDR") and width > 100 and height > 100, path
    assert matplotlib.image.imread(path).shape[:2] == (height, width)


def songs_without_features(output_dir: Path) -> int:
    songs = pd.read_hdf(output_dir / "song_df.h5", key="df")
    return int(songs[list(FEATURES)].isna().any(axis=1).sum())


@pytest.mark.parametrize(
    ("raw", "scaling", "hostile"), [("sample", "raw", True), ("handmade", "zscore", False)]
)
def test_report_numbers_match_the_deliverables(
    raw_files, pipeline_in, tmp_path, raw, scaling, hostile
):
    raw_dir = raw_files(raw, scale=0.0005, seed=3)
    pipeline = pipeline_in(raw_dir)
    pipeline.build_ok(music_scaling=scaling)
    summary = summary_of(pipeline, music_scaling=scaling)
    featureless = songs_without_features(pipeline.output_dir)
    assert any(
        w.startswith(f"{featureless:,} songs have no audio features") for w in summary.warnings
    ) == bool(featureless)
    if hostile:
        summary = dataclasses.replace(summary, warnings=(*summary.warnings, HOSTILE_WARNING))
    report_dir = tmp_path / "report"

    returned = render_report(summary, pipeline.output_dir, report_dir)

    text = (report_dir / "index.html").read_text(encoding="utf-8")
    page = Page(text)
    assert page.unbalanced == []
    assert not page.tags & {"script", "link", "iframe", "object"}
    assert "http://" not in text and "https://" not in text and "url(" not in text
    assert all("://" not in ref and not ref.startswith(("/", "//")) for ref in page.references)
    assert len(page.images) == 7
    assert sorted(page.images) == sorted(p.name for p in report_dir.glob("*.png"))
    for name in page.images:
        assert_png(report_dir / name)

    expected = expected_numbers(pipeline)
    shown = {key: page.number(key) for key in expected}
    assert shown == expected
    # The report BuildAll published, drawn from the shards' user rows, shows the same data.
    published = json.loads((pipeline.output_dir / "report" / "report.json").read_text())
    data_keys = [key for key in expected if not key.startswith(("tasks.", "run.", "funnel."))]
    assert {key: published["numbers"][key] for key in data_keys} == {
        key: expected[key] for key in data_keys
    }
    assert {k for k in page.numbers if k.startswith("genre.")} == {
        k for k in expected if k.startswith("genre.")
    }

    report = json.loads((report_dir / "report.json").read_text())
    assert report == returned
    assert report["numbers"].keys() == page.numbers.keys()
    assert {key: page.number(key) for key in page.numbers} == report["numbers"]
    assert report["parameters"]["music_scaling"] == scaling
    assert report["warnings"] == list(summary.warnings)
    assert published["warnings"] == list(summary.warnings)[: len(published["warnings"])]

    words = " ".join(" ".join(page.text).split())
    assert f"MUSIC scaling: {scaling}" in words
    assert f"MUSIC scores (music_scaling = {scaling})" in words
    if summary.warnings:
        assert "<script>" not in text
        assert all(warning in page.text for warning in summary.warnings)
    else:
        assert "Warnings none" in words


@pytest.fixture
def built(raw_files, pipeline_in):
    pipeline = pipeline_in(raw_files("handmade"))
    pipeline.build_ok()
    return pipeline


def test_missing_deliverable_raises_and_keeps_the_previous_report(built, tmp_path):
    facts = summary_of(built)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "stale.txt").write_text("from an older report")
    render_report(facts, built.output_dir, report_dir)
    assert not (report_dir / "stale.txt").exists()  # replaced whole
    before = {p.name: p.read_bytes() for p in report_dir.iterdir()}

    broken = tmp_path / "broken"
    shutil.copytree(built.output_dir, broken)
    (broken / "user_df.parquet").unlink()
    with pytest.raises(ReportError, match=r"user_df\.parquet"):
        render_report(facts, broken, report_dir)

    assert {p.name: p.read_bytes() for p in report_dir.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report")) == []


def test_a_report_for_another_build_than_the_deliverables_raises(built, tmp_path):
    summary = dataclasses.replace(summary_of(built), build="not-this-build")
    report_dir = tmp_path / "report"
    with pytest.raises(ReportError, match="holds build"):
        render_report(summary, built.output_dir, report_dir)
    assert not report_dir.exists()
    assert list(tmp_path.glob(".report*")) == []


def test_log_axis_labels_are_short_counts():
    values = (0.5, 1, 10, 1_000, 10_000, 2_500_000, 10_000_000)
    expected = ["0.5", "1", "10", "1k", "10k", "2.5M", "10M"]
    assert [short_count(value) for value in values] == expected
