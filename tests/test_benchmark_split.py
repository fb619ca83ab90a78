"""The MSD benchmark split (RecVAE's preprocessing): hand-derived cases, byte equality with the
port of the reference script (tests/recvae_port.py), the conventions of RecVAE's loader, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from msd_tasks.formats.benchmark_files import write_split_csv, write_split_parquet
from msd_tasks.formats.raw import RAW_FILES
from msd_tasks.stages.benchmark_split import PARTS, benchmark_split
from msd_tasks.stages.triplets import read_triplets
from tests.recvae_port import reference_split

pytestmark = pytest.mark.unit

FILES = ("unique_sid.txt", "unique_uid.txt", *(f"{part}.csv" for part in PARTS))
HAND = dict(min_songs_per_user=2, min_users_per_song=2, heldout_users=2)

# Line numbers below count HAND_LINES from 1. Song lines (raw, duplicates counted): SOX 2
# (carl, Émile), SOB 4, SOA 3, SODUP 2 (Émile twice), SOC 4, SOD 4, SOE 4, SOF 4, SOZ 2 (Zed,
# zoe), SOLO 1.
# With a minimum of 2, only SOLO goes (SOX, SODUP and SOZ are exactly at it). Users' lines of
# the kept songs: carl 1 (had 2 raw lines: dropped), Émile 9, adam 6, bob 5, Zed 6, zoe 2
# (exactly at the minimum). SOX keeps its place although carl is gone: one pass, no second.
HAND_LINES = """\
Zed\tSOZ\t3
Émile\tSOX\t1
adam\tSOA\t2
bob\tSOF\t1
carl\tSOLO\t7
Émile\tSOB\t1
zoe\tSOZ\t1
adam\tSOB\t1
Émile\tSOA\t4
Zed\tSOA\t1
Émile\tSODUP\t1
bob\tSOE\t2
adam\tSOC\t1
Émile\tSOC\t1
carl\tSOX\t1
Émile\tSODUP\t5
Zed\tSOB\t1
adam\tSOD\t1
Émile\tSOD\t1
bob\tSOD\t1
zoe\tSOF\t2
Zed\tSOC\t1
adam\tSOE\t1
Émile\tSOE\t1
bob\tSOC\t1
Zed\tSOD\t1
adam\tSOF\t1
Émile\tSOF\t1
bob\tSOB\t1
Zed\tSOE\t1
"""
# Users in Python string order: Zed < adam < bob < zoe < Émile (upper case before lower case,
# then non-ASCII). RandomState(98765).permutation(5) = [4 2 1 0 3], so unique_uid is
# [Émile, bob, adam, Zed, zoe]: uid 0 trains, uids 1-2 validate, uids 3-4 test (5 = 2*2 + 1).
HAND_UID = ["Émile", "bob", "adam", "Zed", "zoe"]
# unique_sid: Émile's songs by first appearance (lines 2, 6, 9, 11, 14, 19, 24, 28); adam's SOA
# on line 3 and Zed's SOZ on line 1 come earlier but are not training lines.
HAND_SID = ["SOX", "SOB", "SOA", "SODUP", "SOC", "SOD", "SOE", "SOF"]
# Émile's lines in file order, the duplicate SODUP (sid 3) twice.
HAND_TRAIN = [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 3), (0, 5), (0, 6), (0, 7)]
# Validation, groups in id order: adam (uid 2) before bob (uid 1). Seeded once for the part:
# adam's 6 lines (sids 2 1 4 5 6 7) draw permutation(6)[:int(1.2)] = [4] -> SOE (sid 6);
# bob's 5 lines (sids 7 6 5 4 1) draw on, permutation(5)[:1] = [3] -> SOC (sid 4).
HAND_VALIDATION_TR = [(2, 2), (2, 1), (2, 4), (2, 5), (2, 7), (1, 7), (1, 6), (1, 5), (1, 1)]
HAND_VALIDATION_TE = [(2, 6), (1, 4)]
# Test, reseeded: Zed (uid 3) before zoe (uid 4). SOZ is no training song, so it is dropped and
# Zed has 5 lines (sids 2 1 4 5 6): permutation(5)[:1] = [4] -> SOE (sid 6). zoe keeps 1 line,
# fewer than 5: whole into test_tr, no draw.
HAND_TEST_TR = [(3, 2), (3, 1), (3, 4), (3, 5), (4, 7)]
HAND_TEST_TE = [(3, 6)]


def write_lines(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train_triplets.txt"
    path.write_text(text, encoding="utf-8")
    return path


def pairs(part) -> list[tuple[int, int]]:
    return list(zip(part.uid.tolist(), part.sid.tolist(), strict=True))


def csv_text(rows: list[tuple[int, int]]) -> str:
    return "uid,sid\n" + "".join(f"{uid},{sid}\n" for uid, sid in rows)


def port(path: Path, folder: Path, **params) -> Path:
    reference_split(
        path,
        folder,
        min_items_per_user=params["min_songs_per_user"],
        min_users_per_item=params["min_users_per_song"],
        heldout_users=params["heldout_users"],
        threshold=params.get("threshold", 0.0),
    )
    return folder


def assert_same_files(mine: Path, reference: Path) -> None:
    for name in FILES:
        assert (mine / name).read_bytes() == (reference / name).read_bytes(), name


# The same users renamed to ids of one UTF-8 length (4 bytes; 'É' takes 2), in the same Python
# string order: the sort takes its fixed-width path (a numpy bytes view).
SAME_WIDTH = {"Zed": "Zed1", "adam": "adam", "bob": "bob2", "zoe": "zoe3", "Émile": "Émi"}


def renamed(text: str, names: dict[str, str]) -> str:
    fields = (line.split("\t", 1) for line in text.splitlines(keepends=True))
    return "".join(names.get(user, user) + "\t" + rest for user, rest in fields)


@pytest.mark.parametrize("names", [{}, SAME_WIDTH], ids=["any width", "same width"])
def test_handmade_split_is_derived_by_hand(tmp_path, names):
    text = renamed(HAND_LINES, names)
    if names:
        assert {len(line.split("\t")[0].encode()) for line in text.splitlines()} == {4}
    split = benchmark_split(read_triplets(write_lines(tmp_path, text)), **HAND)
    assert split.unique_uid.to_pylist() == [names.get(user, user) for user in HAND_UID]
    assert split.unique_sid.to_pylist() == HAND_SID
    assert pairs(split.train) == HAND_TRAIN
    assert pairs(split.validation_tr) == HAND_VALIDATION_TR
    assert pairs(split.validation_te) == HAND_VALIDATION_TE
    assert pairs(split.test_tr) == HAND_TEST_TR
    assert pairs(split.test_te) == HAND_TEST_TE
    assert all(part.uid.dtype == part.sid.dtype == np.int32 for part in split.parts().values())


@pytest.mark.parametrize("names", [{}, SAME_WIDTH], ids=["any width", "same width"])
def test_handmade_files_match_the_hand_derivation_and_the_port(tmp_path, names):
    path = write_lines(tmp_path, renamed(HAND_LINES, names))
    write_split_csv(benchmark_split(read_triplets(path), **HAND), tmp_path / "mine")
    expected = {
        "unique_uid.txt": "".join(f"{names.get(uid, uid)}\n" for uid in HAND_UID),
        "unique_sid.txt": "".join(f"{sid}\n" for sid in HAND_SID),
        "train.csv": HAND_TRAIN,
        "validation_tr.csv": HAND_VALIDATION_TR,
        "validation_te.csv": HAND_VALIDATION_TE,
        "test_tr.csv": HAND_TEST_TR,
        "test_te.csv": HAND_TEST_TE,
    }
    for name, content in expected.items():
        text = content if isinstance(content, str) else csv_text(content)
        assert (tmp_path / "mine" / name).read_bytes() == text.encode(), name
    assert_same_files(tmp_path / "mine", port(path, tmp_path / "reference", **HAND))


def test_seed_and_test_share_reach_every_draw(tmp_path):
    """seed=5, test_share=0.5 on the hand-made lines, derived as above.

    RandomState(5).permutation(5) = [4 0 1 2 3]: unique_uid is [Émile, Zed, adam, bob, zoe]
    (Émile trains again: the same unique_sid). Validation, reseeded with 5: Zed (uid 1; sids
    2 1 4 5 6) draws permutation(5)[:int(2.5)] = [4 0] (sids 6, 2), then adam (uid 2; sids
    2 1 4 5 6 7) permutation(6)[:3] = [2 4 3] (sids 4 6 5). Test, reseeded: bob (uid 3; sids
    7 6 5 4 1) draws [4 0] (sids 1, 7); zoe (uid 4, 1 line) none. te rows stay in file order.
    """
    split = benchmark_split(
        read_triplets(write_lines(tmp_path, HAND_LINES)), **HAND, seed=5, test_share=0.5
    )
    assert split.unique_uid.to_pylist() == ["Émile", "Zed", "adam", "bob", "zoe"]
    assert split.unique_sid.to_pylist() == HAND_SID
    assert pairs(split.validation_tr) == [(1, 1), (1, 4), (1, 5), (2, 2), (2, 1), (2, 7)]
    assert pairs(split.validation_te) == [(1, 2), (1, 6), (2, 4), (2, 5), (2, 6)]
    assert pairs(split.test_tr) == [(3, 6), (3, 5), (3, 4), (4, 7)]
    assert pairs(split.test_te) == [(3, 7), (3, 1)]


def test_a_user_drawing_no_line_still_draws(tmp_path):
    """seed=5, test_share=0.18: Zed (5 lines) draws permutation(5)[:int(0.9)], nothing, but
    moves the generator on: adam (6 lines) gets permutation(6)[:1] = [2] (sid 4), where a fresh
    generator would give [5]. In test, bob (5 lines) draws nothing: test_te is empty."""
    split = benchmark_split(
        read_triplets(write_lines(tmp_path, HAND_LINES)), **HAND, seed=5, test_share=0.18
    )
    assert pairs(split.validation_te) == [(2, 4)]
    assert pairs(split.validation_tr) == [
        *[(1, 2), (1, 1), (1, 4), (1, 5), (1, 6)],
        *[(2, 2), (2, 1), (2, 5), (2, 6), (2, 7)],
    ]
    assert pairs(split.test_tr) == [(3, 7), (3, 6), (3, 5), (3, 4), (3, 1), (4, 7)]
    assert len(split.test_te) == 0
    write_split_csv(split, tmp_path / "out")
    assert (tmp_path / "out" / "test_te.csv").read_bytes() == b"uid,sid\n"


@pytest.fixture(scope="module")
def generated(raw_files) -> Path:
    return raw_files("sample", scale=0.002, seed=3) / RAW_FILES["train"]


def scrambled(source: Path, target: Path, seed: int = 1) -> Path:
    """The generated lines thinned to 35% (short users, rare songs), user ids partly upper case
    or prefixed with 'é' (string order != hex order), 3% of lines repeated with another count,
    all lines shuffled (a user's lines no longer adjacent, nor in song order)."""
    rng = np.random.default_rng(seed)
    lines = source.read_text().splitlines()
    lines = [line for line, keep in zip(lines, rng.random(len(lines)) < 0.35, strict=True) if keep]
    users = sorted({line.split("\t", 1)[0] for line in lines})
    kinds = rng.integers(0, 10, len(users))
    rename = {
        user: user.upper() if kind == 0 else "é" + user if kind == 1 else user
        for user, kind in zip(users, kinds, strict=True)
    }
    out = [rename[user] + "\t" + rest for user, rest in (line.split("\t", 1) for line in lines)]
    repeated = rng.choice(len(out), int(0.03 * len(out)), replace=False)
    out += [out[i].rsplit("\t", 1)[0] + f"\t{rng.integers(1, 9)}" for i in repeated]
    out = [out[i] for i in rng.permutation(len(out))]
    return write_lines(target, "\n".join(out) + "\n")


def edge_cases(path: Path, params: dict, folder: Path, min_short: int) -> None:
    """That the data has what the comparison should cover, counted without the code tested:
    songs and users exactly at the minimums, repeated pairs and short held-out users kept."""
    frame = pd.read_csv(path, sep="\t", names=["user", "song", "count"], dtype=str)
    song_lines = frame["song"].value_counts()
    assert (song_lines == params["min_users_per_song"]).any()
    kept = frame[frame["song"].map(song_lines) >= params["min_users_per_song"]]
    user_lines = kept["user"].value_counts()
    assert (user_lines == params["min_songs_per_user"]).any()
    kept = kept[kept["user"].map(user_lines) >= params["min_songs_per_user"]]
    assert kept.duplicated(["user", "song"]).any()
    n_train = kept["user"].nunique() - 2 * params["heldout_users"]
    assert n_train > params["heldout_users"]
    short = 0
    for part in ("validation", "test"):
        tr = pd.read_csv(folder / f"{part}_tr.csv")
        te = pd.read_csv(folder / f"{part}_te.csv")
        short += len(set(tr["uid"]) - set(te["uid"]))  # users put whole into tr
    assert short >= min_short


SCRAMBLED = dict(min_songs_per_user=3, min_users_per_song=30, heldout_users=600)
GENERATED = dict(min_songs_per_user=5, min_users_per_song=200, heldout_users=600)


@pytest.mark.parametrize(
    ("variant", "params", "min_short"),
    [
        ("scrambled", SCRAMBLED, 10),
        (
            "as generated",
            {**GENERATED, "min_songs_per_user": 3, "min_users_per_song": 60, "threshold": 1.0},
            None,
        ),
        ("as generated", GENERATED, 0),  # grouped by user like the real file; no short user
        ("as generated", {**GENERATED, "min_songs_per_user": 0, "min_users_per_song": 0}, None),
    ],
)
def test_files_equal_the_reference_port(generated, tmp_path, variant, params, min_short):
    path = generated if variant == "as generated" else scrambled(generated, tmp_path / "raw")
    reference = port(path, tmp_path / "reference", **params)
    if min_short is not None:
        edge_cases(path, params, reference, min_short)
    split = benchmark_split(read_triplets(path), **params)
    write_split_csv(split, tmp_path / "mine")
    assert_same_files(tmp_path / "mine", reference)


def test_ids_without_lines_stay_out(tmp_path):
    """A line skipped for its play count leaves its ids in the dictionaries, with no line."""
    extra = "ghost\tSOGHOST\t0\n"
    path = write_lines(tmp_path / "raw", HAND_LINES + extra)
    triplets = read_triplets(path, on_bad_lines="skip")
    assert "ghost" in triplets.user_ids.to_pylist()
    params = {**HAND, "min_songs_per_user": 0, "min_users_per_song": 0}
    write_split_csv(benchmark_split(triplets, **params), tmp_path / "mine")
    clean = write_lines(tmp_path / "clean", HAND_LINES)
    assert_same_files(tmp_path / "mine", port(clean, tmp_path / "reference", **params))


# --- RecVAE's loader (recvae_utils.get_data) --------------------------------------------------


def load_train_data(csv_file, n_items):
    """recvae_utils.load_train_data, global_indexing=False."""
    tp = pd.read_csv(csv_file)
    n_users = tp["uid"].max() + 1
    rows, cols = tp["uid"], tp["sid"]
    return sp.csr_matrix(
        (np.ones_like(rows), (rows, cols)), dtype="float64", shape=(n_users, n_items)
    )


def load_tr_te_data(csv_file_tr, csv_file_te, n_items):
    """recvae_utils.load_tr_te_data, global_indexing=False; also returns start_idx."""
    tp_tr, tp_te = pd.read_csv(csv_file_tr), pd.read_csv(csv_file_te)
    start_idx = min(tp_tr["uid"].min(), tp_te["uid"].min())
    end_idx = max(tp_tr["uid"].max(), tp_te["uid"].max())
    shape = (end_idx - start_idx + 1, n_items)
    rows_tr, cols_tr = tp_tr["uid"] - start_idx, tp_tr["sid"]
    rows_te, cols_te = tp_te["uid"] - start_idx, tp_te["sid"]
    data_tr = sp.csr_matrix(
        (np.ones_like(rows_tr), (rows_tr, cols_tr)), dtype="float64", shape=shape
    )
    data_te = sp.csr_matrix(
        (np.ones_like(rows_te), (rows_te, cols_te)), dtype="float64", shape=shape
    )
    return data_tr, data_te, start_idx


@pytest.fixture(scope="module")
def scrambled_split(generated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scrambled_split")
    split = benchmark_split(read_triplets(scrambled(generated, folder / "raw")), **SCRAMBLED)
    write_split_csv(split, folder / "csv")
    write_split_parquet(split, folder / "parquet")
    return folder


def test_recvae_loader_conventions(scrambled_split):
    folder = scrambled_split / "csv"
    unique_sid = (folder / "unique_sid.txt").read_text().splitlines()
    unique_uid = (folder / "unique_uid.txt").read_text().splitlines()
    assert len(set(unique_sid)) == len(unique_sid) and len(set(unique_uid)) == len(unique_uid)
    n_items, n_users, held = len(unique_sid), len(unique_uid), SCRAMBLED["heldout_users"]
    n_train = n_users - 2 * held
    train = pd.read_csv(folder / "train.csv")
    # Training users are uids 0 .. n_train-1, each with a line (the loader sizes by max + 1),
    # and every song of unique_sid is a training song, numbered by first appearance.
    assert load_train_data(folder / "train.csv", n_items).shape == (n_train, n_items)
    assert set(train["uid"]) == set(range(n_train))
    assert set(train["sid"]) == set(range(n_items))
    _, first_line = np.unique(train["sid"].to_numpy(), return_index=True)
    assert (np.diff(first_line) > 0).all()
    for part, first_uid in (("validation", n_train), ("test", n_train + held)):
        tr = pd.read_csv(folder / f"{part}_tr.csv")
        te = pd.read_csv(folder / f"{part}_te.csv")
        data_tr, data_te, start_idx = load_tr_te_data(
            folder / f"{part}_tr.csv", folder / f"{part}_te.csv", n_items
        )
        # tr and te rows of a user land on the same matrix row: the ranges agree.
        assert start_idx == tr["uid"].min() >= first_uid
        assert tr["uid"].max() < first_uid + held
        assert set(te["uid"]) <= set(tr["uid"])
        assert data_tr.shape == data_te.shape == (tr["uid"].max() - start_idx + 1, n_items)
        # Held-out songs are training songs; each user's lines split as 20% (int) to te.
        assert set(tr["sid"]) | set(te["sid"]) <= set(train["sid"])
        n_tr, n_te = tr["uid"].value_counts(), te["uid"].value_counts()
        for uid, n_tr_lines in n_tr.items():
            n = n_tr_lines + n_te.get(uid, 0)
            assert n_te.get(uid, 0) == (int(0.2 * n) if n >= 5 else 0)


def test_parquet_and_matrices_hold_the_csv_split(scrambled_split):
    csv_folder, folder = scrambled_split / "csv", scrambled_split / "parquet"
    unique_uid = (csv_folder / "unique_uid.txt").read_text().splitlines()
    unique_sid = (csv_folder / "unique_sid.txt").read_text().splitlines()
    assert pq.read_table(folder / "unique_uid.parquet")["user_id"].to_pylist() == unique_uid
    assert pq.read_table(folder / "unique_sid.parquet")["song_id"].to_pylist() == unique_sid
    shape = (len(unique_uid), len(unique_sid))
    for part in PARTS:
        frame = pd.read_csv(csv_folder / f"{part}.csv")
        table = pq.read_table(folder / f"{part}.parquet")
        assert str(table.schema.field("uid").type) == str(table.schema.field("sid").type) == "int32"
        assert table.to_pandas().astype("int64").equals(frame)
        # get_data's matrix with global indexing: ones summed over repeated lines, float32.
        expected = sp.csr_matrix(
            (np.ones(len(frame)), (frame["uid"], frame["sid"])), dtype="float64", shape=shape
        ).astype("float32")
        matrix = sp.load_npz(folder / f"{part}.npz")
        assert matrix.format == "csr" and matrix.dtype == np.float32 and matrix.shape == shape
        assert (matrix != expected).nnz == 0
        if part == "train":
            assert matrix.max() == 2  # the scrambled file repeats training pairs


# --- errors --------------------------------------------------------------------------------


def test_too_few_users_is_an_error_where_the_reference_goes_wrong(tmp_path):
    """5 users survive the hand-made filter: 2 held out of each part need 5, 3 need 7."""
    path = write_lines(tmp_path, HAND_LINES)
    triplets = read_triplets(path)
    with pytest.raises(ValueError, match=r"5 users .* at least 2 \* 3 \+ 1"):
        benchmark_split(triplets, **{**HAND, "heldout_users": 3})
    # The reference: no training user, so no training song, no validation line, pd.concat([]).
    with pytest.raises(ValueError, match="No objects to concatenate"):
        port(path, tmp_path / "reference", **{**HAND, "heldout_users": 3})
    with pytest.raises(ValueError, match="heldout_users must be >= 1"):
        benchmark_split(triplets, **{**HAND, "heldout_users": 0})


def test_a_part_without_a_user_to_split_is_an_error(tmp_path):
    """Without bob's SOB and adam's SOE and SOF lines, the same 5 users survive (each song keeps
    3+ lines) in the same order, but the validation users adam and bob have 4 lines each: no
    user to split, where the reference fails in pd.concat([]). (Test: Zed's 5 lines split.)"""
    text = HAND_LINES
    for line in ("bob\tSOB\t1\n", "adam\tSOE\t1\n", "adam\tSOF\t1\n"):
        assert line in text
        text = text.replace(line, "")
    path = write_lines(tmp_path, text)
    with pytest.raises(ValueError, match=r"no user among uids 1\.\. has 5 lines"):
        benchmark_split(read_triplets(path), **HAND)
    with pytest.raises(ValueError, match="No objects to concatenate"):
        port(path, tmp_path / "reference", **HAND)
