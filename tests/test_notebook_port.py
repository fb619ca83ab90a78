"""The notebook port on hand-made data, checked from first principles; and the comparator
`assert_deliverables_match`, which must pass a pipeline-style copy and catch corrupted ones."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from tests import handmade_data as hd
from tests import notebook_port
from tests.deliverable_compare import (
    BYTE_LITERAL_COLUMNS,
    DELIVERABLES,
    MUSIC_FEATURES,
    assert_deliverables_match,
    decode_bytes_literal,
    music_matrix,
)

USER_INDEX = hd.EXPECTED_USER_INDEX
SONG_INDEX = hd.EXPECTED_SONG_INDEX


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raw")
    hd.write_handmade(path)
    return path


@pytest.fixture(scope="module")
def port_dir(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("notebook")
    notebook_port.run_notebook(raw_dir, out, processes=2)
    return out


def _h5(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_hdf(directory / name, key="df")


def _write_h5(frame: pd.DataFrame, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)  # list cells get pickled
        frame.to_hdf(path, key="df", mode="w")


def _first_rows() -> dict[str, dict[str, object]]:
    """Each song's first h5 row, keyed by its plain song id."""
    first: dict[str, dict[str, object]] = {}
    for row in hd.SONG_ROWS:
        first.setdefault(str(row["song_id"])[2:-1], row)
    return first


def _hand_music(user: str, *, skip_nan_songs: bool) -> np.ndarray:
    """MUSIC straight from the hand-written rows: play-weighted mean over visible plays."""
    first = _first_rows()
    vectors, weights = [], []
    for plays in (hd.TRAIN_TRIPLETS, hd.VISIBLE_TRIPLETS):
        for play_user, song, count in plays:
            if play_user != user or song not in hd.EXPECTED_SONGS:
                continue
            features = np.array([first[song][f] for f in MUSIC_FEATURES], dtype=np.float64)
            if skip_nan_songs and np.isnan(features).any():
                continue
            vectors.append(features @ music_matrix())
            weights.append(count)
    if not vectors:
        return np.full(5, np.nan)
    return np.average(np.array(vectors), weights=weights, axis=0)


def _dense(plays: dict[tuple[str, str], int]) -> np.ndarray:
    expected = np.zeros((hd.NUM_SONGS, hd.NUM_USERS), dtype=np.float32)
    for (user, song), count in plays.items():
        expected[SONG_INDEX[song], USER_INDEX[user]] = count
    return expected


# --- the port, from first principles --------------------------------------------------------------


pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")


def test_port_writes_the_six_deliverables(port_dir: Path) -> None:
    assert sorted(p.name for p in port_dir.iterdir()) == sorted(DELIVERABLES)


def test_user_mapping_keeps_users_with_visible_plays(port_dir: Path) -> None:
    mapping = _h5(port_dir, "user_mapping.h5")
    assert list(mapping.columns) == ["sparse_index", "user_id"]
    pairs = {(int(i), u) for i, u in zip(mapping["sparse_index"], mapping["user_id"], strict=True)}
    assert pairs == {(i, u) for u, i in USER_INDEX.items()}
    assert len(mapping) == hd.NUM_USERS
    absent = hd.HIDDEN_ONLY_USERS | hd.ALL_PLAYS_DROPPED_USERS
    assert not absent & set(mapping["user_id"])
    # pandas 1 row order and labels: first row of each user in the song-grouped join
    assert (
        list(zip(mapping.index, mapping["user_id"], strict=True)) == hd.NOTEBOOK_USER_MAPPING_ROWS
    )
    assert mapping["sparse_index"].dtype == object  # ints and ids shared one object array


def test_song_mapping_drops_songs_without_kept_plays(port_dir: Path) -> None:
    mapping = _h5(port_dir, "song_mapping.h5")
    pairs = {(int(i), s) for i, s in zip(mapping["sparse_index"], mapping["song_id"], strict=True)}
    assert pairs == {(i, s) for s, i in SONG_INDEX.items()}
    assert len(mapping) == hd.NUM_SONGS
    assert not hd.VANISHED_SONGS & set(mapping["song_id"])
    assert hd.S_HIDDEN_PLAY in set(mapping["song_id"])  # only a hidden play, yet indexed
    assert (
        list(zip(mapping.index, mapping["song_id"], strict=True)) == hd.NOTEBOOK_SONG_MAPPING_ROWS
    )


@pytest.mark.parametrize(
    ("name", "plays"),
    [("train_sparse.npz", hd.EXPECTED_TRAIN_PLAYS), ("test_sparse.npz", hd.EXPECTED_TEST_PLAYS)],
)
def test_matrices_hold_summed_plays(port_dir: Path, name: str, plays: dict) -> None:
    matrix = scipy.sparse.load_npz(port_dir / name)
    assert matrix.format == "csr"
    assert matrix.dtype == np.float32
    assert matrix.shape == (hd.NUM_SONGS, hd.NUM_USERS)  # rows are songs, columns users
    np.testing.assert_array_equal(matrix.toarray(), _dense(plays))


def test_duplicated_line_is_summed(port_dir: Path) -> None:
    train = scipy.sparse.load_npz(port_dir / "train_sparse.npz")
    assert train[SONG_INDEX[hd.S_BEYONCE], USER_INDEX[hd.U_A]] == 5  # 3 + 2
    assert train[SONG_INDEX[hd.S_GOOD], USER_INDEX[hd.U_BOTH]] == 3  # train 2 + visible 1


def test_user_df_rows(port_dir: Path) -> None:
    user_df = _h5(port_dir, "user_df.h5")
    assert list(user_df.columns) == [
        "user_id",
        "MUSIC",
        "num_songs",
        "is_test",
        "song_sparse_indices",
    ]
    assert user_df.index.name == "sparse_index"
    assert user_df.index.dtype == np.int64
    assert sorted(user_df.index) == list(range(hd.NUM_USERS))
    for index, row in user_df.iterrows():
        user = row["user_id"]
        assert USER_INDEX[user] == index
        assert row["num_songs"] == hd.EXPECTED_NUM_SONGS[user], user
        assert row["is_test"] == hd.EXPECTED_IS_TEST[user], user
        expected_songs = [SONG_INDEX[s] for s in hd.NOTEBOOK_SONG_ORDER[user]]
        assert row["song_sparse_indices"] == expected_songs, user
        assert len(row["song_sparse_indices"]) == row["num_songs"]


def test_user_df_music(port_dir: Path) -> None:
    user_df = _h5(port_dir, "user_df.h5").set_index("user_id")
    for user, music in user_df["MUSIC"].items():
        values = np.array(music)
        assert values.shape == (5,)
        assert np.isnan(values).all() == (user in hd.NOTEBOOK_NAN_MUSIC_USERS), user
        assert np.isnan(values).any() == (user in hd.NOTEBOOK_NAN_MUSIC_USERS), user
        expected = _hand_music(user, skip_nan_songs=False)
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12, err_msg=user)
    user, song = hd.SINGLE_SONG_USER
    vector = np.array([_first_rows()[song][f] for f in MUSIC_FEATURES]) @ music_matrix()
    np.testing.assert_allclose(user_df.loc[user, "MUSIC"], vector, rtol=0, atol=1e-12)


def test_song_df_rows(port_dir: Path) -> None:
    song_df = _h5(port_dir, "song_df.h5")
    assert song_df.index.name == "sparse_index"
    assert song_df.index.dtype == np.int64
    expected_columns = ["song_id", *(c for c in hd.H5_COLUMNS if c != "song_id"), "genre"]
    assert list(song_df.columns) == expected_columns
    assert sorted(song_df.index) == list(range(hd.NUM_SONGS))
    by_song = song_df.reset_index().set_index("song_id")
    assert {s: int(i) for s, i in by_song["sparse_index"].items()} == SONG_INDEX
    # first h5 row of the duplicated song wins, features included
    dup = by_song.loc[hd.S_DUP]
    assert (dup["title"], dup["track_id"], dup["valence"]) == ("Original Take", hd.T_DUP_FIRST, 0.6)
    for song, cells in hd.EXPECTED_NOTEBOOK_TEXT.items():
        for column, value in cells.items():
            assert by_song.loc[song, column] == value, (song, column)
    for song, genre in hd.EXPECTED_NOTEBOOK_GENRE.items():
        if genre is None:
            assert pd.isna(by_song.loc[song, "genre"]), song
        else:
            assert by_song.loc[song, "genre"] == genre, song
    assert pd.isna(by_song.loc[hd.S_PLAIN, "spotify_id"])
    assert pd.isna(by_song.loc[hd.S_PLAIN, "song_hotttnesss"])
    assert by_song.loc[hd.S_NANFEAT, MUSIC_FEATURES].isna().all()


def test_reference_decoder_on_raw_values() -> None:
    first = _first_rows()
    for song, cells in hd.EXPECTED_DECODED.items():
        for column, value in cells.items():
            assert decode_bytes_literal(first[song][column]) == value, (song, column)
    assert decode_bytes_literal("b'unterminated") == "b'unterminated"
    assert decode_bytes_literal(None) is None


def test_script_entry_point_matches_function(raw_dir: Path, port_dir: Path, tmp_path: Path):
    out = tmp_path / "script_out"
    script = Path(notebook_port.__file__)
    command = [sys.executable, str(script), str(raw_dir), str(out), "--processes", "1"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    for name in DELIVERABLES:
        if name.endswith(".npz"):
            a = scipy.sparse.load_npz(port_dir / name)
            b = scipy.sparse.load_npz(out / name)
            assert (a != b).nnz == 0 and a.shape == b.shape, name
            continue
        a, b = _h5(port_dir, name), _h5(out, name)
        if "MUSIC" in a.columns:
            np.testing.assert_array_equal(np.stack(a.pop("MUSIC")), np.stack(b.pop("MUSIC")))
        pd.testing.assert_frame_equal(a, b, check_exact=True)


# --- the comparator -------------------------------------------------------------------------------


def _to_pipeline_style(port_dir: Path, dest: Path) -> Path:
    """The port's outputs in the pipeline's conventions: rows sorted by an int64 sparse_index,
    decoded text, stripped genre, sorted song lists, MUSIC without NaN-feature songs."""
    dest.mkdir()
    for name in ("train_sparse.npz", "test_sparse.npz"):
        shutil.copy(port_dir / name, dest / name)
    for name, id_column in (("user_mapping.h5", "user_id"), ("song_mapping.h5", "song_id")):
        notebook = _h5(port_dir, name)
        frame = pd.DataFrame(
            {
                "sparse_index": notebook["sparse_index"].astype("int64"),
                id_column: notebook[id_column],
            }
        ).sort_values("sparse_index")
        frame.index = frame["sparse_index"].to_numpy()
        _write_h5(frame, dest / name)

    song_df = _h5(port_dir, "song_df.h5").sort_index()
    first = _first_rows()
    song_ids = list(song_df["song_id"])
    for column in BYTE_LITERAL_COLUMNS:
        song_df[column] = [decode_bytes_literal(first[s][column]) for s in song_ids]
    song_df["genre"] = song_df["genre"].str.strip()
    _write_h5(song_df, dest / "song_df.h5")

    user_df = _h5(port_dir, "user_df.h5").sort_index()
    user_df["song_sparse_indices"] = [sorted(s) for s in user_df["song_sparse_indices"]]
    user_df["MUSIC"] = [
        [float(x) for x in _hand_music(u, skip_nan_songs=True)]
        if u in hd.NOTEBOOK_NAN_MUSIC_USERS
        else music
        for u, music in zip(user_df["user_id"], user_df["MUSIC"], strict=True)
    ]
    _write_h5(user_df, dest / "user_df.h5")
    return dest


@pytest.fixture(scope="module")
def pipeline_style_dir(port_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _to_pipeline_style(port_dir, tmp_path_factory.mktemp("pipeline_style") / "out")


def test_pipeline_style_copy_passes(port_dir: Path, pipeline_style_dir: Path, raw_dir: Path):
    # sanity of the copy itself: the documented differences really are present
    song_df = _h5(pipeline_style_dir, "song_df.h5").set_index("song_id")
    assert song_df.loc[hd.S_BEYONCE, "artist_name"] == "Beyoncé"
    assert song_df.loc[hd.S_QUOTES, "genre"] == "Stage"
    user_df = _h5(pipeline_style_dir, "user_df.h5").set_index("user_id")
    assert not np.isnan(user_df.loc[hd.U_B, "MUSIC"]).any()
    assert np.isnan(user_df.loc[hd.U_NAN_ONLY, "MUSIC"]).all()
    assert_deliverables_match(port_dir, pipeline_style_dir, raw_dir)


def test_port_output_as_pipeline_output_fails(port_dir: Path, raw_dir: Path) -> None:
    # unsorted object-indexed mappings, undecoded text, NaN MUSIC: not the pipeline's contract
    with pytest.raises(AssertionError, match="not sorted by sparse_index"):
        assert_deliverables_match(port_dir, port_dir, raw_dir)


def _edit_h5(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        _write_h5(edit(_h5(directory, name)), directory / name)

    return apply


def _edit_cell(name: str, key_column: str, key: str, column: str, value: object):
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        row = frame.index[frame[key_column] == key][0]
        frame.at[row, column] = value
        return frame

    return _edit_h5(name, edit)


def _edit_list(user: str, column: str, change: Callable[[list], list]):
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        row = frame.index[frame["user_id"] == user][0]
        frame.at[row, column] = change(list(frame.at[row, column]))
        return frame

    return _edit_h5("user_df.h5", edit)


def _swap_user_ids(frame: pd.DataFrame) -> pd.DataFrame:
    a, b = frame.index[0], frame.index[1]
    frame.loc[[a, b], "user_id"] = frame.loc[[b, a], "user_id"].to_numpy()
    return frame


def _edit_matrix(name: str, change: Callable[[scipy.sparse.csr_matrix], object]):
    def apply(directory: Path) -> None:
        matrix = scipy.sparse.load_npz(directory / name)
        scipy.sparse.save_npz(directory / name, change(matrix))

    return apply


def _bump_first_value(matrix: scipy.sparse.csr_matrix) -> scipy.sparse.csr_matrix:
    matrix.data[0] += 1
    return matrix


def _plus(delta: float, position: int = 0) -> Callable[[list], list]:
    def change(values: list) -> list:
        values[position] += delta
        return values

    return change


CORRUPTIONS = {
    "swapped user mapping pair": (_edit_h5("user_mapping.h5", _swap_user_ids), "user_mapping.h5"),
    "changed train value": (_edit_matrix("train_sparse.npz", _bump_first_value), "train_sparse"),
    "test matrix as float64": (
        _edit_matrix("test_sparse.npz", lambda m: m.astype(np.float64)),
        "float32",
    ),
    "MUSIC off by 1e-6": (_edit_list(hd.U_A, "MUSIC", _plus(1e-6)), "MUSIC"),
    "MUSIC of a NaN-feature user off by 1e-6": (
        _edit_list(hd.U_B, "MUSIC", _plus(1e-6, 4)),
        "NaN-feature songs left out",
    ),
    "notebook's NaN MUSIC kept": (
        _edit_list(hd.U_TEST_C, "MUSIC", lambda v: [np.nan] * 5),
        "MUSIC",
    ),
    "song list unsorted": (_edit_list(hd.U_A, "song_sparse_indices", lambda v: v[::-1]), "sorted"),
    "song list missing a duplicate": (
        _edit_list(hd.U_A, "song_sparse_indices", lambda v: sorted(set(v))),
        "multisets",
    ),
    "is_test flipped": (_edit_cell("user_df.h5", "user_id", hd.U_BOTH, "is_test", True), "is_test"),
    "undecoded artist": (
        _edit_cell("song_df.h5", "song_id", hd.S_BEYONCE, "artist_name", r"Beyonc\xc3\xa9"),
        "artist_name",
    ),
    "plain text mangled like the notebook": (
        _edit_cell("song_df.h5", "song_id", hd.S_PLAIN, "artist_name", "ain Artis"),
        "artist_name",
    ),
    "backslash left doubled": (
        _edit_cell("song_df.h5", "song_id", hd.S_BACKSLASH, "title", "Back\\\\slash"),
        "title",
    ),
    "genre not stripped": (
        _edit_cell("song_df.h5", "song_id", hd.S_QUOTES, "genre", "Stage "),
        "genre",
    ),
    "missing genre filled": (_edit_cell("song_df.h5", "song_id", hd.S_CJK, "genre", ""), "genre"),
    "feature changed": (
        _edit_cell("song_df.h5", "song_id", hd.S_DUP, "valence", 0.99),
        "valence",
    ),
    "song row dropped": (
        _edit_h5("song_df.h5", lambda f: f[f["song_id"] != hd.S_CJK]),
        "only in the notebook",
    ),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupted_copy_fails(
    kind: str, port_dir: Path, pipeline_style_dir: Path, raw_dir: Path, tmp_path: Path
) -> None:
    corrupt, expected_message = CORRUPTIONS[kind]
    corrupted = tmp_path / "corrupted"
    shutil.copytree(pipeline_style_dir, corrupted)
    corrupt(corrupted)
    with pytest.raises(AssertionError, match=expected_message):
        assert_deliverables_match(port_dir, corrupted, raw_dir)
