"""Song cleaning: first row per song, first genre per track, stripped labels, clear input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from msd_tasks.errors import InputError
from msd_tasks.stages.music import FEATURES
from msd_tasks.stages.songs import clean_songs, read_genres, read_msd


def msd_frame() -> pd.DataFrame:
    rows = [
        ("b'S2'", "b'T1'", "b'First \\xc3\\xa9'", 1),
        ("b'S1'", "b'T2'", "b'Other'", 2),
        ("b'S2'", "b'T3'", "b'Second'", 3),  # repeated song: dropped
        ("b'S3'", "b'T4'", 'b"It\'s"', 4),
    ]
    frame = pd.DataFrame(rows, columns=["song_id", "track_id", "title", "year"], dtype=object)
    frame["year"] = frame["year"].astype("int64")
    for k, name in enumerate(FEATURES):
        frame[name] = np.arange(4, dtype=float) + k
    return frame


def write_genres(tmp_path, text: str):
    path = tmp_path / "genres.cls"
    path.write_text(text)
    return path


def test_first_row_per_song_with_first_genre(tmp_path):
    genres = read_genres(write_genres(tmp_path, "T1\tStage \nT9\tRap\nT1\tJazz\nT4\tNew Age\n"))
    songs = clean_songs(msd_frame(), genres)
    assert songs.column("song_id").to_pylist() == ["S2", "S1", "S3"]
    assert songs.column("title").to_pylist() == ["First é", "Other", "It's"]
    assert songs.column("year").to_pylist() == [1, 2, 4]
    assert songs.column("genre").to_pylist() == ["Stage", None, "New Age"]
    assert songs.column_names[-1] == "genre"
    assert songs.column_names[:4] == ["song_id", "track_id", "title", "year"]


def test_genre_line_without_tab_is_named(tmp_path):
    path = write_genres(tmp_path, "T1\tRap\nT2 Jazz\n")
    with pytest.raises(InputError, match=r"line 2: expected track_id<TAB>genre"):
        read_genres(path)


def test_h5_without_key_df(tmp_path):
    path = tmp_path / "msd.h5"
    msd_frame().to_hdf(path, key="songs", mode="w")
    with pytest.raises(InputError, match=r"a frame under key 'df'"):
        read_msd(path)


def test_h5_missing_columns_are_all_listed(tmp_path):
    path = tmp_path / "msd.h5"
    msd_frame().drop(columns=["track_id", "energy", "valence"]).to_hdf(path, key="df", mode="w")
    with pytest.raises(InputError) as error:
        read_msd(path)
    assert "none named track_id, energy, valence" in str(error.value)
    assert str(path) in str(error.value)
