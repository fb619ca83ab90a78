"""Tests of msd_sample: exact raw formats, edge cases, determinism and scaling."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import msd_sample as sample
from msd_sample.sizes import FEATURE_COLUMNS, GENRE_COUNTS, H5_COLUMNS, sizes_for
from msd_tasks.formats.raw import RAW_FILES
from msd_tasks.stages.text import BYTE_LITERAL_COLUMNS

TRIPLET_LINE = re.compile(rb"[0-9a-f]{40}\tSO[A-Z0-9]{16}\t[1-9][0-9]*")
TRACK_ID = re.compile(r"TR[A-Z0-9]{16}")
SONG_ID = re.compile(r"SO[A-Z0-9]{16}")
SPOTIFY_ID = re.compile(r"[0-9A-Za-z]{22}")
INT_COLUMNS = ["artist_playmeid", "release_7digitalid", "track_7digitalid", "year"]
UNIT_FEATURES = [
    *("acousticness", "danceability", "energy", "instrumentalness"),
    *("liveness", "speechiness", "valence"),
]


@pytest.fixture(scope="module", params=[0.001, 0.0001], ids=["default", "tiny"])
def scale(request: pytest.FixtureRequest) -> float:
    """The default scale, and a tiny one that must still hold every edge case."""
    return request.param


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory, scale: float
) -> tuple[Path, dict[str, float]]:
    out = tmp_path_factory.mktemp("sample")
    return out, sample.write_sample(out, scale=scale)


@pytest.fixture(scope="module")
def out(written: tuple[Path, dict[str, float]]) -> Path:
    return written[0]


@pytest.fixture(scope="module")
def counts(written: tuple[Path, dict[str, float]]) -> dict[str, float]:
    return written[1]


def lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def triplets(out: Path, key: str) -> list[tuple[str, str, int]]:
    rows = [line.decode("ascii").split("\t") for line in lines(out / RAW_FILES[key])]
    return [(user, song, int(count)) for user, song, count in rows]


@pytest.fixture(scope="module")
def catalog(out: Path) -> pd.DataFrame:
    frame = pd.read_hdf(out / RAW_FILES["msd"], "df")
    for column in BYTE_LITERAL_COLUMNS:
        frame[column] = [ast.literal_eval(text).decode("utf-8") for text in frame[column]]
    return frame


@pytest.fixture(scope="module")
def first_rows(catalog: pd.DataFrame) -> pd.DataFrame:
    """The rows that count: the first one of each song id in file order."""
    return catalog.drop_duplicates("song_id", keep="first")


def users_in_order(rows: list[tuple[str, str, int]]) -> list[str]:
    """Users in order of their first line; asserts each user's lines are consecutive."""
    runs = [user for i, (user, _, _) in enumerate(rows) if i == 0 or rows[i - 1][0] != user]
    assert len(runs) == len(set(runs)), "a user's lines are not consecutive"
    return runs


def hits_by_user(rows: list[tuple[str, str, int]], songs: set[str]) -> dict[str, int]:
    hits: Counter[str] = Counter()
    for user, song, _ in rows:
        hits[user] += song in songs
    return hits


# --- formats -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["train", "visible", "hidden"])
def test_triplet_lines_are_user_tab_song_tab_positive_count(out: Path, key: str) -> None:
    bad = [line for line in lines(out / RAW_FILES[key]) if not TRIPLET_LINE.fullmatch(line)]
    assert bad == []


def test_genre_lines_are_track_tab_known_label_sorted_by_track(out: Path) -> None:
    rows = [line.decode("utf-8") for line in lines(out / RAW_FILES["genres"])]
    assert all(row.count("\t") == 1 for row in rows)
    tracks, labels = zip(*(row.split("\t") for row in rows), strict=True)
    assert all(TRACK_ID.fullmatch(track) for track in tracks)
    assert set(labels) == set(GENRE_COUNTS)
    assert len(GENRE_COUNTS) == 21
    assert list(tracks) == sorted(tracks)
    assert Counter(labels).most_common(1)[0][0] == "Pop_Rock"


def test_h5_is_fixed_format_frame_with_the_25_columns_in_order(out: Path) -> None:
    with pd.HDFStore(out / RAW_FILES["msd"], mode="r") as store:
        assert store.keys() == ["/df"]
        assert not store.get_storer("df").is_table
        frame = store["df"]
    assert list(frame.columns) == H5_COLUMNS
    assert len(H5_COLUMNS) == 25
    for column in INT_COLUMNS:
        assert frame[column].dtype == np.int64, column
    for column in ["song_hotttnesss", *FEATURE_COLUMNS]:
        assert frame[column].dtype == np.float64, column


def test_h5_text_columns_hold_bytes_literals_of_utf8(out: Path) -> None:
    frame = pd.read_hdf(out / RAW_FILES["msd"], "df")
    for column in BYTE_LITERAL_COLUMNS:
        for text in frame[column]:
            assert isinstance(text, str) and text[:2] in ("b'", 'b"'), (column, text)
            value = ast.literal_eval(text)
            assert isinstance(value, bytes), (column, text)
            assert repr(value) == text  # exactly what repr() of the bytes gives
            value.decode("utf-8")


def test_h5_ids_and_value_ranges(catalog: pd.DataFrame) -> None:
    assert catalog["track_id"].map(TRACK_ID.fullmatch).all()
    assert catalog["song_id"].map(SONG_ID.fullmatch).all()
    assert catalog["track_id"].is_unique
    spotify = catalog["spotify_id"].dropna()
    assert spotify.map(lambda s: bool(SPOTIFY_ID.fullmatch(s))).all()
    features = catalog[FEATURE_COLUMNS].dropna()
    assert features[UNIT_FEATURES].ge(0).all().all() and features[UNIT_FEATURES].le(1).all().all()
    assert features["loudness"].between(-35, 0).all()
    assert features["tempo"].between(60, 200).all()
    assert features["key"].isin(range(12)).all()
    assert features["mode"].isin([0, 1]).all()
    assert features["time_signature"].isin([3, 4, 5]).all()
    assert features["duration_ms"].between(120_000, 400_000).all()
    years = catalog["year"]
    assert ((years == 0) | years.between(1900, 2011)).all() and (years == 0).any()


def test_counts_match_the_files(out: Path, counts: dict[str, float], catalog: pd.DataFrame) -> None:
    train = triplets(out, "train")
    assert counts["train_lines"] == len(train)
    assert counts["train_users"] == len({user for user, _, _ in train})
    assert counts["train_songs"] == len({song for _, song, _ in train})
    assert counts["test_visible_lines"] == len(triplets(out, "visible"))
    assert counts["test_hidden_lines"] == len(triplets(out, "hidden"))
    assert counts["genre_lines"] == len(lines(out / RAW_FILES["genres"]))
    assert counts["h5_rows"] == len(catalog)
    assert counts["h5_songs"] == catalog["song_id"].nunique()


# --- edge cases --------------------------------------------------------------------------


def test_h5_has_non_ascii_and_quoted_texts(first_rows: pd.DataFrame) -> None:
    titles = set(first_rows["title"])
    for column in ["title", "artist_name", "release"]:
        assert any(not text.isascii() for text in first_rows[column]), column
    assert {"Beyoncé", "Sigur Rós"} <= set(first_rows["artist_name"])
    assert any("日本語" in title for title in titles)
    assert any(any(ord(char) > 0xFFFF for char in title) for title in titles)  # emoji
    assert any("'" in t and '"' not in t for t in titles)
    assert any('"' in t and "'" not in t for t in titles)
    assert any("'" in t and '"' in t for t in titles)
    assert any("\\" in t for t in titles)


def test_h5_repr_escapes_both_quote_kinds(out: Path) -> None:
    titles = set(pd.read_hdf(out / RAW_FILES["msd"], "df")["title"])
    assert "b'Don\\'t Say \"Never\"'" in titles
    assert 'b"It\'s So Good"' in titles


def test_h5_has_empty_mbids_and_missing_values(catalog: pd.DataFrame) -> None:
    assert (catalog["artist_mbid"] == "").any()
    assert catalog["song_hotttnesss"].isna().any()
    assert catalog["spotify_id"].isna().any()
    no_features = catalog[FEATURE_COLUMNS].isna().all(axis=1)
    some_features = catalog[FEATURE_COLUMNS].isna().any(axis=1)
    assert no_features.any() and (no_features == some_features).all()
    assert catalog.loc[catalog["spotify_id"].isna(), FEATURE_COLUMNS].isna().all().all()
    assert 0 < no_features.mean() < 0.15


def test_h5_repeats_song_ids_later_with_other_tracks(catalog: pd.DataFrame) -> None:
    repeated = catalog[catalog["song_id"].duplicated(keep=False)]
    assert catalog["song_id"].duplicated().sum() >= 5
    assert repeated.groupby("song_id")["track_id"].nunique().gt(1).all()
    assert repeated.groupby("song_id")["title"].nunique().gt(1).any()


def test_genres_have_quirky_labels_duplicates_and_unknown_tracks(
    out: Path, catalog: pd.DataFrame
) -> None:
    rows = [line.decode("utf-8").split("\t") for line in lines(out / RAW_FILES["genres"])]
    labels = {label for _, label in rows}
    assert "Stage " in labels and "New Age" in labels and "Stage" not in labels
    genres_of: dict[str, set[str]] = {}
    for track, label in rows:
        genres_of.setdefault(track, set()).add(label)
    assert sum(len(labels) > 1 for labels in genres_of.values()) >= 2
    h5_tracks = set(catalog["track_id"])
    assert set(genres_of) - h5_tracks
    coverage = len(set(genres_of) & h5_tracks) / len(h5_tracks)
    assert 0.35 < coverage < 0.55


def test_train_users_are_grouped_with_a_few_duplicate_lines(out: Path) -> None:
    train = triplets(out, "train")
    users_in_order(train)
    pairs = Counter((user, song) for user, song, _ in train)
    assert 1 <= sum(n - 1 for n in pairs.values()) <= 10
    plays = np.array([count for _, _, count in train])
    assert (plays == 1).mean() > 0.4 and 2 < plays.mean() < 4 and plays.max() > 20


def test_test_files_share_user_order_and_never_repeat_a_song(out: Path) -> None:
    visible, hidden = triplets(out, "visible"), triplets(out, "hidden")
    assert users_in_order(visible) == users_in_order(hidden)
    visible_pairs = Counter((user, song) for user, song, _ in visible)
    hidden_pairs = Counter((user, song) for user, song, _ in hidden)
    assert max(visible_pairs.values()) == 1 and max(hidden_pairs.values()) == 1
    assert not set(visible_pairs) & set(hidden_pairs)


def test_some_test_users_are_also_train_users(out: Path) -> None:
    test_users = {user for user, _, _ in triplets(out, "visible")}
    train_users = {user for user, _, _ in triplets(out, "train")}
    assert 1 <= len(test_users & train_users) <= 10
    assert len(test_users) >= 20


def test_some_test_users_are_hidden_only_after_the_join(
    out: Path, counts: dict[str, float], first_rows: pd.DataFrame
) -> None:
    songs = set(first_rows["song_id"])
    visible_hits = hits_by_user(triplets(out, "visible"), songs)
    hidden_hits = hits_by_user(triplets(out, "hidden"), songs)
    hidden_only = [u for u, hits in hidden_hits.items() if hits and not visible_hits.get(u)]
    assert len(hidden_only) == counts["test_hidden_only_users"]
    assert 1 <= len(hidden_only) <= 0.15 * len(hidden_hits)


def test_plays_partly_hit_the_catalog(out: Path, first_rows: pd.DataFrame) -> None:
    songs = set(first_rows["song_id"])
    train = triplets(out, "train")
    share = np.mean([song in songs for _, song, _ in train])
    assert 0.3 < share < 0.5
    played = {song for _, song, _ in train}
    assert 0.3 < len(played & songs) / len(played) < 0.6


# --- determinism and scale ---------------------------------------------------------------


def file_bytes(out: Path) -> dict[str, bytes]:
    return {key: (out / name).read_bytes() for key, name in RAW_FILES.items()}


def test_same_seed_writes_identical_bytes(tmp_path: Path, out: Path, scale: float) -> None:
    sample.write_sample(tmp_path, scale=scale, seed=0)
    assert file_bytes(tmp_path) == file_bytes(out)


def test_other_seed_writes_other_data(tmp_path: Path, out: Path, scale: float) -> None:
    sample.write_sample(tmp_path, scale=scale, seed=1)
    again, first = file_bytes(tmp_path), file_bytes(out)
    assert all(again[key] != first[key] for key in RAW_FILES)


def test_counts_scale_linearly(tmp_path: Path) -> None:
    single = sample.write_sample(tmp_path / "single", scale=0.001)
    double = sample.write_sample(tmp_path / "double", scale=0.002)
    for key in ["train_lines", "train_users", "test_visible_lines", "h5_rows", "genre_lines"]:
        assert double[key] / single[key] == pytest.approx(2, rel=0.02), key


def test_real_scale_sizes() -> None:
    sizes = sizes_for(1.0)
    assert (sizes.h5_rows, sizes.h5_songs, sizes.genre_lines) == (447_499, 426_545, 422_714)
    assert (sizes.train_lines, sizes.train_users) == (48_373_586, 1_019_318)
    assert (sizes.test_users, sizes.visible_lines, sizes.hidden_lines) == (
        100_000,
        1_319_894,
        1_368_430,
    )


def test_tiny_scale_keeps_minimums() -> None:
    sizes = sizes_for(0.00001)
    assert sizes.train_users >= 20 and sizes.test_users >= 20 and sizes.h5_rows >= 50


def test_main_writes_files_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample.main(["--out", str(tmp_path), "--scale", "0.0005", "--seed", "3"])
    assert all((tmp_path / name).is_file() for name in RAW_FILES.values())
    assert "train_lines" in capsys.readouterr().out
