"""Whether a peer script wrote the same deliverables as BuildAll: ids, matrices and tables equal,
MUSIC scores equal to the last few bits (a different summation order may move the last bit).

    python -m benchmarks.peers.compare OURS_DIR PEER_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

MUSIC_RTOL = 1e-9
SONG_COLUMNS = ["song_id", "track_id", "title", "artist_name", "genre", "danceability", "valence"]


def differences(ours: Path, peer: Path) -> list[str]:
    """What differs between the two folders' deliverables (empty: the same)."""
    found = _index_and_play_differences(ours, peer)
    for name in ("song_df.h5", "song_df.parquet"):
        a, b = (_read(folder / name) for folder in (ours, peer))
        for column in SONG_COLUMNS:
            if not _same_values(a[column].to_numpy(), b[column].to_numpy()):
                found.append(f"{name}: column {column} differs")
    for name in ("user_df.h5", "user_df.parquet"):
        a, b = (_read(folder / name) for folder in (ours, peer))
        for column in ("user_id", "num_songs", "is_test"):
            if not np.array_equal(a[column].to_numpy(), b[column].to_numpy()):
                found.append(f"{name}: column {column} differs")
        if [list(v) for v in a["song_sparse_indices"]] != [
            list(v) for v in b["song_sparse_indices"]
        ]:
            found.append(f"{name}: song_sparse_indices differ")
        if not np.allclose(_music(a), _music(b), rtol=MUSIC_RTOL, atol=0, equal_nan=True):
            found.append(f"{name}: MUSIC differs beyond rtol {MUSIC_RTOL}")
    return found


def _index_and_play_differences(ours: Path, peer: Path) -> list[str]:
    found = []
    for name in ("user_mapping.h5", "song_mapping.h5"):
        a, b = (pd.read_hdf(folder / name, key="df") for folder in (ours, peer))
        if not (a.astype(str).values == b.astype(str).values).all() or a.shape != b.shape:
            found.append(f"{name}: different ids or order")
    for name in ("train_sparse.npz", "test_sparse.npz"):
        a, b = (sp.load_npz(folder / name).tocsr() for folder in (ours, peer))
        a.sort_indices()
        b.sort_indices()
        same = a.shape == b.shape and all(
            np.array_equal(getattr(a, part), getattr(b, part))
            for part in ("indptr", "indices", "data")
        )
        if not same or a.dtype != b.dtype:
            found.append(f"{name}: different matrices")
    a, b = (_plays(folder / "plays.parquet") for folder in (ours, peer))
    if not a.equals(b):
        found.append("plays.parquet: different plays")
    return found


def _plays(path: Path) -> pd.DataFrame:
    """The rows of a plays.parquet, in one order, with plain columns."""
    frame = pd.read_parquet(path)
    frame["split"] = frame["split"].astype(str)
    frame = frame.astype({"user_index": "int64", "song_index": "int64", "play_count": "int64"})
    columns = ["user_index", "song_index", "split", "play_count"]
    return frame[columns].sort_values(columns, ignore_index=True)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".h5":
        return pd.read_hdf(path, key="df").reset_index()
    return pd.read_parquet(path)


def _music(frame: pd.DataFrame) -> np.ndarray:
    if "MUSIC" in frame:
        return np.array(frame["MUSIC"].tolist(), dtype=np.float64)
    names = ["mellow", "unpretentious", "sophisticated", "intense", "contemporary"]
    return frame[names].to_numpy(dtype=np.float64, na_value=np.nan)


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    if len(a) != len(b):
        return False
    a_missing, b_missing = pd.isna(a), pd.isna(b)
    return bool((a_missing == b_missing).all() and (a[~a_missing] == b[~b_missing]).all())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ours", type=Path)
    parser.add_argument("peer", type=Path)
    args = parser.parse_args(argv)
    found = differences(args.ours, args.peer)
    print("\n".join(found) if found else "the same deliverables")
    raise SystemExit(1 if found else 0)


if __name__ == "__main__":
    main()
