"""The plain DuckDB script a researcher would write instead of the Luigi graph.

It writes the same deliverables as BuildAll (the six notebook files, the parquet copies of
song_df and user_df, plays.parquet), with no checkpoints, no resume, no checks and no report:
the yardstick of issue 11. Run from the repository root:

    python -m benchmarks.peers.duckdb_build RAW_DIR OUT_DIR [--threads N]

DuckDB reads the three triplet files, keeps the catalogue's songs, drops hidden-only users,
numbers users and songs in id order and scores MUSIC per user in SQL; scipy builds the CSR
matrices and pandas writes the .h5 files, as the notebook did.
"""

from __future__ import annotations

import argparse
import codecs
import gc
import itertools
import os
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

TRIPLETS = {
    "train": "train_triplets.txt",
    "visible": "EvalDataYear1MSDWebsite/year1_test_triplets_visible.txt",
    "hidden": "EvalDataYear1MSDWebsite/year1_test_triplets_hidden.txt",
}
BYTE_LITERALS = ["song_id", "track_id", "artist_mbid", "artist_name", "title", "release"]
FEATURE_TO_MUSIC = {  # Rentfrow et al. (2012), as in the notebook
    "danceability": [-0.37, 0.05, -0.35, 0.08, 0.43],
    "energy": [-0.64, -0.46, -0.13, 0.66, -0.03],
    "instrumentalness": [0.20, -0.47, 0.28, 0.09, -0.01],
    "liveness": [-0.69, -0.12, -0.07, 0.43, 0.02],
    "loudness": [-0.58, -0.19, -0.44, 0.79, -0.21],
    "valence": [-0.04, 0.18, 0.24, -0.34, 0.18],
}
DIMENSIONS = ["mellow", "unpretentious", "sophisticated", "intense", "contemporary"]


def decode(text):
    """`"b'Beyonc\\xc3\\xa9'"` -> `"Beyoncé"`: the metadata file holds str(bytes)."""
    if not isinstance(text, str) or not text.startswith(("b'", 'b"')):
        return text
    inner = text[2:-1]
    if "\\" not in inner:
        return inner
    return codecs.escape_decode(inner.encode("ascii", "backslashreplace"))[0].decode(
        "utf-8", "replace"
    )


def catalogue(raw: Path) -> pd.DataFrame:
    """One row per song_id (its first), text decoded, with the first genre of its track."""
    msd = pd.read_hdf(raw / "full_msd_with_audio_features.h5", key="df")
    for column in BYTE_LITERALS:
        msd[column] = msd[column].map(decode)
    msd = msd.drop_duplicates(subset="song_id").reset_index(drop=True)
    genres = pd.read_csv(
        raw / "msd-MAGD-genreAssignment.cls", sep="\t", names=["track_id", "genre"], dtype=str
    ).drop_duplicates(subset="track_id")
    genres["genre"] = genres["genre"].str.strip().replace("", None)
    return msd.merge(genres, on="track_id", how="left")


def build(raw: Path, out: Path, threads: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # pandas warns that it pickles the list columns into the .h5 files: as the notebook did.
    warnings.filterwarnings("ignore", category=pd.errors.PerformanceWarning)
    songs = catalogue(raw)
    con = duckdb.connect(config={"threads": threads})
    features = list(FEATURE_TO_MUSIC)
    con.register("catalog", songs[["song_id", *features]])
    reads = " UNION ALL ".join(
        f"SELECT user_id, song_id, play_count, '{split}' AS split FROM read_csv("
        f"'{raw / name}', delim='\t', header=false, quote='', escape='', "
        "columns={'user_id': 'VARCHAR', 'song_id': 'VARCHAR', 'play_count': 'INTEGER'})"
        for split, name in TRIPLETS.items()
    )
    con.execute(f"""
        CREATE TEMP TABLE joined AS
        SELECT * FROM ({reads}) WHERE song_id IN (SELECT song_id FROM catalog);
        CREATE TEMP TABLE kept AS  -- hidden-only users have nothing to learn from
        SELECT * FROM joined
        WHERE user_id IN (SELECT user_id FROM joined WHERE split <> 'hidden');
        CREATE TEMP TABLE users AS
        SELECT user_id, (row_number() OVER (ORDER BY user_id) - 1)::INTEGER AS sparse_index
        FROM (SELECT DISTINCT user_id FROM kept);
        CREATE TEMP TABLE song_index AS
        SELECT song_id, (row_number() OVER (ORDER BY song_id) - 1)::INTEGER AS sparse_index
        FROM (SELECT DISTINCT song_id FROM kept);
        CREATE TEMP TABLE plays AS
        SELECT u.sparse_index AS user_index, s.sparse_index AS song_index, play_count, split
        FROM kept JOIN users u USING (user_id) JOIN song_index s USING (song_id);
    """)
    con.execute(
        "COPY (SELECT user_index, song_index, play_count, split FROM plays ORDER BY ALL) "
        f"TO '{out / 'plays.parquet'}' (FORMAT parquet)"
    )
    user_ids = con.sql("SELECT user_id FROM users ORDER BY sparse_index").fetchnumpy()["user_id"]
    song_ids = con.sql("SELECT song_id FROM song_index ORDER BY sparse_index").fetchnumpy()
    song_ids = song_ids["song_id"]
    shape = (len(song_ids), len(user_ids))

    for name, which in (("train_sparse.npz", "<> 'hidden'"), ("test_sparse.npz", "= 'hidden'")):
        part = con.sql(f"SELECT song_index, user_index, play_count FROM plays WHERE split {which}")
        arrays = part.fetchnumpy()
        matrix = sp.coo_matrix(
            (
                arrays["play_count"].astype(np.float32),
                (arrays["song_index"], arrays["user_index"]),
            ),
            shape=shape,
        ).tocsr()
        sp.save_npz(out / name, matrix, compressed=False)
        del arrays, matrix

    for ids, column, name in ((user_ids, "user_id", "user"), (song_ids, "song_id", "song")):
        mapping = pd.DataFrame({"sparse_index": np.arange(len(ids)), column: ids.astype(object)})
        mapping.to_hdf(out / f"{name}_mapping.h5", key="df", mode="w")

    song_df = pd.DataFrame({"sparse_index": np.arange(len(song_ids)), "song_id": song_ids})
    song_df = song_df.merge(songs, on="song_id").set_index("sparse_index")
    pq.write_table(pa.Table.from_pandas(song_df.reset_index()), out / "song_df.parquet")
    song_df.to_hdf(out / "song_df.h5", key="df", mode="w")

    # A song's MUSIC vector: its features times the matrix; NULL when a feature is missing.
    vectors = ", ".join(
        " + ".join(f"{weights[k]} * {feature}" for feature, weights in FEATURE_TO_MUSIC.items())
        + f" AS {dimension}"
        for k, dimension in enumerate(DIMENSIONS)
    )
    finite = " AND ".join(f"isfinite({feature})" for feature in features)
    means = ", ".join(
        f"sum(play_count * {d}) FILTER (WHERE {d} IS NOT NULL)"
        f" / sum(play_count) FILTER (WHERE {d} IS NOT NULL) AS {d}"
        for d in DIMENSIONS
    )
    user_rows = con.sql(f"""
        WITH vectors AS (
            SELECT s.sparse_index AS song_index, {vectors}
            FROM catalog c JOIN song_index s USING (song_id) WHERE {finite}
        )
        SELECT user_index AS sparse_index, {means},
               count(*)::INTEGER AS num_songs,
               bool_and(split <> 'train') AS is_test,
               list(song_index ORDER BY song_index) AS song_sparse_indices
        FROM plays LEFT JOIN vectors USING (song_index)
        WHERE split <> 'hidden'
        GROUP BY user_index ORDER BY user_index
    """).arrow()
    if not isinstance(user_rows, pa.Table):  # duckdb 1.4+ returns a record batch reader
        user_rows = user_rows.read_all()
    user_table = user_rows.add_column(1, "user_id", pa.array(user_ids, pa.string()))
    pq.write_table(user_table, out / "user_df.parquet")

    music = np.column_stack(
        [user_rows.column(d).to_numpy(zero_copy_only=False) for d in DIMENSIONS]
    )
    lists = user_rows.column("song_sparse_indices").combine_chunks()
    offsets, values = lists.offsets.to_numpy(), lists.values.to_numpy().tolist()
    gc.disable()  # a million lists, none of them garbage
    user_df = pd.DataFrame(
        {
            "user_id": user_ids.astype(object),
            "MUSIC": music.astype(np.float64).tolist(),
            "num_songs": user_rows.column("num_songs").to_numpy().astype(np.int64),
            "is_test": user_rows.column("is_test").to_numpy(zero_copy_only=False),
            "song_sparse_indices": [values[a:b] for a, b in itertools.pairwise(offsets)],
        },
        index=pd.Index(np.arange(len(user_ids)), name="sparse_index"),
    )
    gc.enable()
    user_df.to_hdf(out / "user_df.h5", key="df", mode="w")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    build(args.raw_dir, args.out_dir, args.threads)


if __name__ == "__main__":
    main()
