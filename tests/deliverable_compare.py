"""Check the pipeline's six deliverables against the notebook port's, modulo documented changes.

`assert_deliverables_match(notebook_dir, pipeline_dir, raw_dir)` raises AssertionError listing every
mismatch. The pipeline deliberately differs from the notebook in these ways (and no others):
- mappings, song_df and user_df rows are sorted by sparse_index (an int64 index);
- the six byte-literal text columns of song_df are properly decoded ("b'Beyonc\\xc3\\xa9'" ->
  "Beyoncé"; plain text passes through), genre is stripped of surrounding whitespace (a
  label left empty is a missing genre);
- song_sparse_indices lists are sorted;
- MUSIC leaves out songs with a missing (NaN or infinite) MUSIC feature (the notebook's np.average
  gives NaN instead).
"""

from __future__ import annotations

import ast
import functools
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse

try:  # imported as tests.deliverable_compare
    from . import notebook_port
except ImportError:  # imported with tests/ itself on sys.path
    import notebook_port

MAPPING_FILES = {"user_mapping.h5": "user_id", "song_mapping.h5": "song_id"}
MATRIX_FILES = ("train_sparse.npz", "test_sparse.npz")
FRAME_FILES = ("user_mapping.h5", "song_mapping.h5", "song_df.h5", "user_df.h5")
DELIVERABLES = FRAME_FILES + MATRIX_FILES

# Columns holding the text of a bytes literal in the raw h5.
BYTE_LITERAL_COLUMNS = ("song_id", "track_id", "artist_mbid", "artist_name", "title", "release")
# The notebook slices [2:-1] off these five; it leaves `release` as the literal.
NOTEBOOK_SLICED_COLUMNS = ("song_id", "track_id", "artist_mbid", "artist_name", "title")
VISIBLE_FILE = "EvalDataYear1MSDWebsite/year1_test_triplets_visible.txt"
USER_DF_COLUMNS = ["user_id", "MUSIC", "num_songs", "is_test", "song_sparse_indices"]
MUSIC_FEATURES = list(notebook_port.feature_MUSIC_dict)  # the six song_df columns MUSIC uses
MUSIC_TOLERANCE = 1e-9
MAX_EXAMPLES = 5


@functools.lru_cache(maxsize=1 << 20)
def _parse_bytes_literal(value: str) -> bytes | None:
    if len(value) < 3 or value[0] != "b" or value[1] not in "'\"" or value[-1] != value[1]:
        return None
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None
    return parsed if isinstance(parsed, bytes) else None


def is_bytes_literal(value: object) -> bool:
    """True if value is the text of a Python bytes literal such as "b'It\\'s'"."""
    return isinstance(value, str) and _parse_bytes_literal(value) is not None


def decode_bytes_literal(value: Any) -> Any:
    """Reference decoder: the text of a bytes literal -> its UTF-8 text; anything else unchanged."""
    parsed = _parse_bytes_literal(value) if isinstance(value, str) else None
    return value if parsed is None else parsed.decode("utf-8")


def music_matrix() -> np.ndarray:
    """The notebook port's 6x5 feature -> MUSIC matrix, rows in feature_MUSIC_dict order."""
    return np.array(notebook_port.feature_MUSIC_matrix, dtype=np.float64)


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _show(value: object) -> str:
    """repr of a cell, numpy scalars shown as plain Python values."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _same(a: object, b: object) -> bool:
    """Equal scalars, with every kind of missing value (None, NaN, pd.NA) equal to any other."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return bool(a == b)


class _Report:
    """Collects mismatches per file so that one AssertionError can list all of them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, file: str, message: str) -> None:
        self.lines.append(f"{file}: {message}")

    def examples(self, file: str, what: str, items: list[Any]) -> None:
        if items:
            shown = "; ".join(str(item) for item in items[:MAX_EXAMPLES])
            more = f" (+{len(items) - MAX_EXAMPLES} more)" if len(items) > MAX_EXAMPLES else ""
            self.add(file, f"{len(items)} {what}, e.g. {shown}{more}")


def _read(directory: Path, name: str, who: str) -> Any:
    """Read a deliverable exactly as consumers do; unreadable files fail with a clear message."""
    path = Path(directory) / name
    if not path.exists():
        raise AssertionError(f"{who} deliverable {path} does not exist")
    try:
        if name.endswith(".npz"):
            return scipy.sparse.load_npz(path)
        return pd.read_hdf(path, key="df")
    except Exception as exc:  # any failure to load is the finding we report
        how = (
            "scipy.sparse.load_npz(path)"
            if name.endswith(".npz")
            else "pd.read_hdf(path, key='df')"
        )
        raise AssertionError(
            f"{who} deliverable {path} is not readable with {how}: {exc!r}"
        ) from exc


def _check_sorted_int64_index(frame: pd.DataFrame, file: str, report: _Report) -> bool:
    ok = True
    if frame.index.dtype != np.int64:
        report.add(file, f"pipeline index dtype is {frame.index.dtype}, expected int64")
        ok = False
    if not frame.index.is_unique:
        report.add(file, "pipeline index has duplicate sparse indices")
        ok = False
    if not frame.index.is_monotonic_increasing:
        report.add(file, "pipeline rows are not sorted by sparse_index")
    if frame.index.name != "sparse_index":
        report.add(file, f"pipeline index is named {frame.index.name!r}, expected 'sparse_index'")
    return ok


def _compare_mapping(nb: pd.DataFrame, pl: pd.DataFrame, file: str, report: _Report) -> None:
    id_column = MAPPING_FILES[file]
    if list(pl.columns) != ["sparse_index", id_column]:
        report.add(
            file, f"pipeline columns {list(pl.columns)}, expected ['sparse_index', '{id_column}']"
        )
        return
    if pl["sparse_index"].dtype != np.int64:
        report.add(
            file, f"pipeline sparse_index dtype is {pl['sparse_index'].dtype}, expected int64"
        )
    indices = pl["sparse_index"].to_numpy()
    if not np.array_equal(indices, np.arange(len(pl))):
        report.add(file, f"pipeline sparse_index is not 0..{len(pl) - 1} in order")
    if not np.array_equal(np.asarray(pl.index), indices):
        report.add(file, "pipeline index is not equal to its sparse_index column")

    nb_pairs = Counter(zip((int(i) for i in nb["sparse_index"]), nb[id_column], strict=True))
    pl_pairs = Counter(zip((int(i) for i in pl["sparse_index"]), pl[id_column], strict=True))
    if nb_pairs != pl_pairs:
        report.add(file, f"{len(nb)} notebook rows vs {len(pl)} pipeline rows")
        report.examples(
            file, "(sparse_index, id) pairs only in the notebook", sorted(nb_pairs - pl_pairs)
        )
        report.examples(
            file, "(sparse_index, id) pairs only in the pipeline", sorted(pl_pairs - nb_pairs)
        )


def _canonical_csr(matrix: Any) -> scipy.sparse.csr_matrix:
    canonical = scipy.sparse.csr_matrix(matrix, copy=True)
    canonical.sum_duplicates()  # also sorts the column indices of each row
    return canonical


def _entries(matrix: scipy.sparse.csr_matrix) -> dict[tuple[int, int], float]:
    coo = matrix.tocoo()
    return dict(
        zip(zip(coo.row.tolist(), coo.col.tolist(), strict=True), coo.data.tolist(), strict=True)
    )


def _compare_matrix(nb: Any, pl: Any, file: str, report: _Report) -> None:
    for who, matrix in (("notebook", nb), ("pipeline", pl)):
        if not scipy.sparse.issparse(matrix) or matrix.format != "csr":
            report.add(file, f"{who} matrix is {type(matrix).__name__}, expected CSR")
            return
        if matrix.dtype != np.float32:
            report.add(file, f"{who} matrix dtype is {matrix.dtype}, expected float32")
    if nb.shape != pl.shape:
        report.add(file, f"shape notebook {nb.shape} vs pipeline {pl.shape}")
        return
    a, b = _canonical_csr(nb), _canonical_csr(pl)
    same = (
        np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )
    if same:
        return
    report.add(file, f"stored entries: notebook {a.nnz}, pipeline {b.nnz}")
    # compare stored entries (not just values) so that a stored zero shows up too
    entries_a, entries_b = _entries(a), _entries(b)
    positions = sorted(
        key
        for key in entries_a.keys() | entries_b.keys()
        if entries_a.get(key) != entries_b.get(key)
    )
    items = [
        f"[{r}, {c}] notebook {entries_a.get((r, c))} pipeline {entries_b.get((r, c))}"
        for r, c in positions
    ]
    report.examples(file, "differing (song, user) entries", items)


def _numeric_kind(dtype: Any) -> str | None:
    kind = np.dtype(dtype).kind if not isinstance(dtype, pd.api.extensions.ExtensionDtype) else None
    return {"i": "integer", "u": "integer", "f": "float", "b": "bool"}.get(kind or "")


def _mismatched_positions(nb: pd.Series, pl: pd.Series) -> list[int]:
    kind_nb, kind_pl = _numeric_kind(nb.dtype), _numeric_kind(pl.dtype)
    if kind_nb and kind_pl:
        a, b = nb.to_numpy(), pl.to_numpy()
        if "float" in (kind_nb, kind_pl):
            a, b = a.astype(np.float64), b.astype(np.float64)
            equal = (a == b) | (np.isnan(a) & np.isnan(b))
        else:
            equal = a == b
        return np.flatnonzero(~equal).tolist()
    return [i for i, (x, y) in enumerate(zip(nb, pl, strict=True)) if not _same(x, y)]


def _first_raw_rows(raw: pd.DataFrame, notebook_song_ids: pd.Series) -> pd.DataFrame:
    """The raw h5 row the notebook kept for each song: the first one with that (sliced) song_id."""
    keyed = raw.assign(_notebook_song_id=raw["song_id"].str.slice(start=2, stop=-1), _in_raw=True)
    first = keyed.drop_duplicates(subset="_notebook_song_id").set_index("_notebook_song_id")
    return first.reindex(notebook_song_ids.to_numpy())


def _align(
    nb: pd.DataFrame, pl: pd.DataFrame, file: str, report: _Report
) -> tuple[list[int], pd.DataFrame, pd.DataFrame] | None:
    """Check the pipeline's index and columns; return both frames on their common indices."""
    _check_sorted_int64_index(pl, file, report)
    if list(pl.columns) != list(nb.columns):
        report.add(
            file, f"columns differ: notebook {list(nb.columns)}, pipeline {list(pl.columns)}"
        )
        return None
    nb_ids, pl_ids = set(nb.index.tolist()), set(pl.index.tolist())
    report.examples(file, "sparse indices only in the notebook", sorted(nb_ids - pl_ids))
    report.examples(file, "sparse indices only in the pipeline", sorted(pl_ids - nb_ids))
    if not pl.index.is_unique or not nb.index.is_unique:
        report.add(file, "sparse indices are not unique: rows cannot be aligned")
        return None
    common = sorted(nb_ids & pl_ids)
    return common, nb.loc[common], pl.loc[common]


def _compare_exactly(
    common: list[int], nb: pd.Series, pl: pd.Series, file: str, report: _Report
) -> None:
    bad = _mismatched_positions(nb, pl)
    items = [f"sparse_index {common[i]}: {_show(nb.iloc[i])} vs {_show(pl.iloc[i])}" for i in bad]
    report.examples(file, f"{nb.name} values differ (notebook vs pipeline)", items)


def _compare_song_text(
    common: list[int], nb: pd.DataFrame, pl: pd.DataFrame, raw: pd.DataFrame, report: _Report
) -> None:
    """Pipeline text == proper decoding of the raw first row (and == notebook where that is)."""
    file = "song_df.h5"
    first_rows = _first_raw_rows(raw, nb["song_id"])
    no_raw_row = first_rows["_in_raw"].isna().to_numpy()
    report.examples(
        file,
        "notebook songs without a raw h5 row",
        [
            f"sparse_index {common[i]}: {nb['song_id'].iloc[i]!r}"
            for i in np.flatnonzero(no_raw_row)
        ],
    )
    for column in BYTE_LITERAL_COLUMNS:
        items = []
        triples = zip(first_rows[column], nb[column], pl[column], strict=True)
        for i, (raw_value, nb_value, pl_value) in enumerate(triples):
            if no_raw_row[i]:
                continue
            where = f"sparse_index {common[i]}"
            expected = decode_bytes_literal(raw_value)
            if not _same(pl_value, expected):
                items.append(
                    f"{where}: raw {raw_value!r} decodes to {expected!r}, pipeline {pl_value!r}"
                )
            elif column == "release":
                # the notebook left release as the literal: compare with its decoding
                if is_bytes_literal(nb_value) and decode_bytes_literal(nb_value) != pl_value:
                    items.append(f"{where}: notebook {nb_value!r} decoded != pipeline {pl_value!r}")
            # without an escape in the literal, the notebook's blind slice is a correct decoding
            elif (
                column in NOTEBOOK_SLICED_COLUMNS
                and is_bytes_literal(raw_value)
                and "\\" not in raw_value
                and not _same(pl_value, nb_value)
            ):
                items.append(f"{where}: notebook {nb_value!r}, pipeline {pl_value!r}")
        report.examples(file, f"{column} values wrong", items)


def _compare_song_df(
    nb: pd.DataFrame, pl: pd.DataFrame, raw: pd.DataFrame, report: _Report
) -> None:
    file = "song_df.h5"
    aligned = _align(nb, pl, file, report)
    if aligned is None:
        return
    common, nb, pl = aligned

    special = {*BYTE_LITERAL_COLUMNS, "genre", "spotify_id"}
    for column in nb.columns:
        if column in special:
            continue
        kind_nb, kind_pl = _numeric_kind(nb[column].dtype), _numeric_kind(pl[column].dtype)
        if kind_nb != kind_pl:
            report.add(
                file, f"{column}: dtype notebook {nb[column].dtype}, pipeline {pl[column].dtype}"
            )
        _compare_exactly(common, nb[column], pl[column], file, report)

    _compare_song_text(common, nb, pl, raw, report)

    # Stripped, and a label left empty is a missing genre (README: where this differs).
    stripped = nb["genre"].map(lambda g: (g.strip() or None) if isinstance(g, str) else g)
    bad = _mismatched_positions(stripped, pl["genre"])
    items = [
        f"sparse_index {common[i]}: notebook {_show(nb['genre'].iloc[i])} "
        f"(stripped {_show(stripped.iloc[i])}), pipeline {_show(pl['genre'].iloc[i])}"
        for i in bad
    ]
    report.examples(file, "genre values differ from the stripped notebook genre", items)

    _compare_exactly(common, nb["spotify_id"], pl["spotify_id"], file, report)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_cells(frame: pd.DataFrame, who: str, report: _Report) -> bool:
    file = "user_df.h5"
    bad_music = [
        f"sparse_index {i}: {v!r}"
        for i, v in zip(frame.index, frame["MUSIC"], strict=True)
        if not (
            isinstance(v, list)
            and len(v) == 5
            and all(isinstance(x, (float, np.floating)) for x in v)
        )
    ]
    bad_songs = [
        f"sparse_index {i}: {v!r}"
        for i, v in zip(frame.index, frame["song_sparse_indices"], strict=True)
        if not (isinstance(v, list) and all(_is_int(x) for x in v))
    ]
    report.examples(file, f"{who} MUSIC cells that are not a list of 5 floats", bad_music)
    report.examples(file, f"{who} song_sparse_indices cells that are not a list of ints", bad_songs)
    return not bad_music and not bad_songs


def nan_free_music(train: Any, song_df: pd.DataFrame) -> dict[int, np.ndarray]:
    """Per user sparse index: play-weighted mean MUSIC over the user's songs whose six MUSIC
    features are all known (all-NaN if none is left), computed from the notebook's own outputs.

    Weights are the user's column of the notebook's train matrix (rows = songs, duplicates
    summed); song vectors are song_df's six features @ the port's 6x5 matrix.
    """
    features = song_df[MUSIC_FEATURES].reindex(range(train.shape[0])).to_numpy(dtype=np.float64)
    usable = ~np.isnan(features).any(axis=1)
    vectors = np.where(usable[:, None], features, 0.0) @ music_matrix()
    by_user = scipy.sparse.csc_matrix(train)
    music = {}
    for user in range(by_user.shape[1]):
        start, end = by_user.indptr[user], by_user.indptr[user + 1]
        songs = by_user.indices[start:end]
        weights = by_user.data[start:end].astype(np.float64)
        keep = usable[songs] & (weights > 0)
        if keep.any():
            music[user] = np.average(vectors[songs[keep]], weights=weights[keep], axis=0)
        else:
            music[user] = np.full(5, np.nan)
    return music


def _compare_song_lists(common: list[int], nb: pd.Series, pl: pd.Series, report: _Report) -> None:
    file = "user_df.h5"
    unsorted, different = [], []
    for i, nb_songs, pl_songs in zip(common, nb, pl, strict=True):
        if pl_songs != sorted(pl_songs):
            unsorted.append(f"sparse_index {i}: {pl_songs}")
        if sorted(int(s) for s in nb_songs) != sorted(int(s) for s in pl_songs):
            different.append(
                f"sparse_index {i}: notebook {sorted(nb_songs)}, pipeline {sorted(pl_songs)}"
            )
    report.examples(file, "pipeline song_sparse_indices not sorted ascending", unsorted)
    report.examples(file, "song_sparse_indices differ as multisets", different)


def _compare_music(
    common: list[int],
    nb: pd.Series,
    pl: pd.Series,
    report: _Report,
    *,
    train: Any,
    song_df: pd.DataFrame,
) -> None:
    """MUSIC within MUSIC_TOLERANCE of the notebook's, or of the NaN-free mean where it has NaN."""
    nb_values = np.array(nb.tolist(), dtype=np.float64).reshape(-1, 5)
    pl_values = np.array(pl.tolist(), dtype=np.float64).reshape(-1, 5)
    expected = nb_values.copy()
    notebook_nan = np.isnan(nb_values).any(axis=1)
    if notebook_nan.any():
        replacement = nan_free_music(train, song_df)
        for row in np.flatnonzero(notebook_nan):
            expected[row] = replacement[common[row]]
    both_nan = np.isnan(expected) & np.isnan(pl_values)
    close = np.abs(expected - pl_values) <= MUSIC_TOLERANCE  # False wherever either is NaN
    bad = np.flatnonzero(~(both_nan | close).all(axis=1))
    items = [
        f"sparse_index {common[row]}: "
        f"{'expected (NaN-feature songs left out)' if notebook_nan[row] else 'notebook'} "
        f"{expected[row].tolist()}, pipeline {pl_values[row].tolist()}"
        for row in bad
    ]
    report.examples("user_df.h5", f"MUSIC values off by more than {MUSIC_TOLERANCE}", items)


def users_with_train_and_test_plays(raw_dir: Path, catalog_song_ids: set[str]) -> set[str]:
    """Users with a joined play both in train_triplets.txt and in the visible test file."""
    names = ["user_id", "song_id", "play_count"]
    users = []
    for relative in ("train_triplets.txt", VISIBLE_FILE):
        plays = pd.read_csv(Path(raw_dir) / relative, sep="\t", names=names, dtype=str)
        users.append(set(plays.loc[plays["song_id"].isin(catalog_song_ids), "user_id"]))
    return users[0] & users[1]


def _compare_user_df(
    nb: pd.DataFrame,
    pl: pd.DataFrame,
    train: Any,
    song_df: pd.DataFrame,
    report: _Report,
    mixed_users: set[str],
) -> None:
    file = "user_df.h5"
    if list(nb.columns) != USER_DF_COLUMNS:
        report.add(file, f"notebook columns {list(nb.columns)}, expected {USER_DF_COLUMNS}")
        return
    aligned = _align(nb, pl, file, report)
    if aligned is None:
        return
    common, nb, pl = aligned

    if pl["is_test"].dtype != bool:
        report.add(file, f"pipeline is_test dtype is {pl['is_test'].dtype}, expected bool")
    if _numeric_kind(pl["num_songs"].dtype) != "integer":
        report.add(file, f"pipeline num_songs dtype is {pl['num_songs'].dtype}, expected integers")
    # Deliberate difference: is_test means "no train play". The notebook takes the flag of a
    # user's first joined row, which for the rare user with both train and test plays depends on
    # pandas' merge order; for them the expectation is False (they have train plays).
    expected_is_test = nb["is_test"].copy()
    expected_is_test[nb["user_id"].isin(mixed_users).to_numpy()] = False
    for column, expected in (
        ("user_id", nb["user_id"]),
        ("num_songs", nb["num_songs"]),
        ("is_test", expected_is_test),
    ):
        _compare_exactly(common, expected, pl[column], file, report)

    cells_ok = _check_cells(nb, "notebook", report) & _check_cells(pl, "pipeline", report)
    if cells_ok:
        _compare_song_lists(common, nb["song_sparse_indices"], pl["song_sparse_indices"], report)
        _compare_music(common, nb["MUSIC"], pl["MUSIC"], report, train=train, song_df=song_df)


def assert_deliverables_match(notebook_dir: Path, pipeline_dir: Path, raw_dir: Path) -> None:
    """Raise AssertionError describing every way the pipeline's deliverables differ from the
    notebook port's beyond the documented, deliberate differences."""
    notebook = {name: _read(notebook_dir, name, "notebook") for name in DELIVERABLES}
    pipeline = {name: _read(pipeline_dir, name, "pipeline") for name in DELIVERABLES}
    raw = pd.read_hdf(Path(raw_dir) / "full_msd_with_audio_features.h5", key="df")

    report = _Report()
    for name in MAPPING_FILES:
        _compare_mapping(notebook[name], pipeline[name], name, report)
    for name in MATRIX_FILES:
        _compare_matrix(notebook[name], pipeline[name], name, report)
    _compare_song_df(notebook["song_df.h5"], pipeline["song_df.h5"], raw, report)
    _compare_user_df(
        notebook["user_df.h5"],
        pipeline["user_df.h5"],
        notebook["train_sparse.npz"],
        notebook["song_df.h5"],
        report,
        users_with_train_and_test_plays(raw_dir, {decode_bytes_literal(v) for v in raw["song_id"]}),
    )
    if report.lines:
        header = (
            f"pipeline deliverables in {pipeline_dir} differ from the notebook's in {notebook_dir} "
            f"({len(report.lines)} findings):"
        )
        raise AssertionError("\n".join([header, *("  - " + line for line in report.lines)]))
