# ruff: noqa: E501, E712, PD002, PLR0915
"""Faithful port of the original Jupyter notebook: the reference the pipeline is checked against.

Cell by cell, with only what pandas 3 and running as a module require changed (each change is
commented). Run: `python tests/notebook_port.py RAW_DIR OUT_DIR [--processes N]`, or call
`run_notebook(raw_dir, out_dir, processes)`.
"""

import argparse
import os
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, save_npz

# Using multiprocessing.Pool.map and play_count weightings
# LET n = number of songs
# LET m = number of audio features

# Values from this paper: https://projects.ori.org/lrg/PDFs_papers/RentfrowEtal2012MUSICReplicationMP.pdf
# spotify features from this endpoint: - https://developer.spotify.com/documentation/web-api/reference/tracks/get-several-audio-features/
feature_MUSIC_dict = {
    "danceability": np.array([-0.37, 0.05, -0.35, 0.08, 0.43]),
    "energy": np.array([-0.64, -0.46, -0.13, 0.66, -0.03]),
    "instrumentalness": np.array([0.20, -0.47, 0.28, 0.09, -0.01]),
    "liveness": np.array([-0.69, -0.12, -0.07, 0.43, 0.02]),
    "loudness": np.array([-0.58, -0.19, -0.44, 0.79, -0.21]),
    "valence": np.array([-0.04, 0.18, 0.24, -0.34, 0.18]),
}
# feature_MUSIC_matrix -> m x 5 matrix, where m is the number of audio features in feature_MUSIC_dict
feature_MUSIC_matrix = [MUSIC for MUSIC in feature_MUSIC_dict.values()]


def get_MUSIC(sub_df):
    # song_vectors -> n x m matrix, where m is the number of audio features in feature_MUSIC_dict
    song_vectors = sub_df[list(feature_MUSIC_dict.keys())].values

    # unweighted_MUSIC_vals -> n x 5 matrix
    unweighted_MUSIC_vals = song_vectors @ feature_MUSIC_matrix

    # returns the average MUSIC values weighted by their play_counts
    return list(np.average(unweighted_MUSIC_vals, weights=sub_df["play_count"].values, axis=0))


def get_is_test(sub_df):
    return sub_df["is_test"].values[0]


def get_song_ids(sub_df):
    return sub_df["song_id"].to_list()


def get_song_sparse_indices(sub_df):
    return sub_df["sparse_index"].to_list()


def get_row(gb_item):
    user_id, sub_df = gb_item
    return (
        user_id,
        get_MUSIC(sub_df),
        sub_df.shape[0],
        get_is_test(sub_df),
        get_song_sparse_indices(sub_df),
    )


columns = ["user_id", "MUSIC", "num_songs", "is_test", "song_sparse_indices"]


def merge_in_pandas1_order(left, right, on):
    """Inner merge whose rows come out in pandas 1.x order.

    pandas >= 2.2 keeps the left frame's row order in an inner merge; pandas 1.x grouped the rows
    by key, keys in order of first appearance in the left frame, left order within a key. A stable
    sort of the left frame by that order, then the pandas 3 merge, gives exactly the old rows.
    """
    first_appearance_codes, _ = pd.factorize(left[on], use_na_sentinel=False)
    left = left.take(np.argsort(first_appearance_codes, kind="stable"))
    return left.merge(right, left_on=on, right_on=on)


def run_notebook(raw_dir: Path, out_dir: Path, processes: int = 2) -> None:
    """Run the notebook on the raw files under raw_dir, writing its six outputs into out_dir."""
    raw_dir = Path(raw_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.Pandas4Warning)  # the option below is deprecated
        # pandas 3 infers its `str` dtype (NaN for None) everywhere; pandas 1 kept object columns
        # of Python str. Turning inference off restores object dtype in read_hdf / read_table /
        # read_csv / DataFrame(...) alike, so the outputs are written as the notebook wrote them.
        with pd.option_context("future.infer_string", False):
            _run_cells(raw_dir, out_dir, processes)


def _run_cells(raw_dir, out_dir, processes):
    # In [2]:
    msd = pd.read_hdf(raw_dir / "full_msd_with_audio_features.h5", key="df")

    # this is because song_id is in the format:  "b'SOSIYAD12A8C14097F'"
    for messed_up_column in ["song_id", "track_id", "artist_mbid", "artist_name", "title"]:
        msd[messed_up_column] = msd[messed_up_column].str.slice(start=2, stop=-1)

    # In [4]:
    track_genres = pd.read_table(
        raw_dir / "msd-MAGD-genreAssignment.cls", names=["track_id", "genre"], sep="\t"
    )

    # In [5]:
    msd = msd.merge(track_genres, how="left", left_on="track_id", right_on="track_id")
    msd = msd.drop_duplicates(subset="song_id")

    # In [8]:
    col_names = ["user_id", "song_id", "play_count"]
    train_triplets = pd.read_csv(raw_dir / "train_triplets.txt", sep="\t", names=col_names)
    test_visible_triplets = pd.read_csv(
        raw_dir / "EvalDataYear1MSDWebsite/year1_test_triplets_visible.txt",
        sep="\t",
        names=col_names,
    )
    test_hidden_triplets = pd.read_csv(
        raw_dir / "EvalDataYear1MSDWebsite/year1_test_triplets_hidden.txt",
        sep="\t",
        names=col_names,
    )

    train_triplets["is_test"] = False
    test_visible_triplets["is_test"] = True
    test_hidden_triplets["is_test"] = True

    train_triplets["is_hidden"] = False
    test_visible_triplets["is_hidden"] = False
    test_hidden_triplets["is_hidden"] = True

    # In [9]:
    # DataFrame.append was removed in pandas 2: the same two appends as pd.concat calls.
    all_triplets = pd.concat(
        [
            pd.concat([train_triplets, test_visible_triplets], ignore_index=True),
            test_hidden_triplets,
        ],
        ignore_index=True,
    )
    # pandas >= 2.2 keeps left row order in inner merges; pandas 1 grouped rows by song (see helper).
    all_niplets = merge_in_pandas1_order(all_triplets, msd, "song_id")

    visible_niplets = all_niplets.loc[all_niplets["is_hidden"] == False]
    hidden_niplets = all_niplets.loc[all_niplets["is_hidden"] == True]

    # In [13]:
    # This is to remove the users that have test data but not hidden data
    visible_users = visible_niplets["user_id"].drop_duplicates()
    hidden_users = hidden_niplets["user_id"].drop_duplicates()
    blacklisted_users = hidden_users[~hidden_users.isin(visible_users)].values

    hidden_niplets = hidden_niplets.loc[~hidden_niplets["user_id"].isin(blacklisted_users)]
    all_niplets = all_niplets.loc[~all_niplets["user_id"].isin(blacklisted_users)]

    # In [19]:
    # Get the full dataset since I will need to put this in COO matrix. It will be difficult matching up the song ids of test and train
    # if they are treated independently. Putting them together and then splitting the train and test set when creating the COO matrix is the
    # easiest way of ensuring that the indices remain correct.

    # Build the train and test CSR matrices.

    all_niplets["user_id"] = all_niplets["user_id"].astype("category")
    all_niplets["song_id"] = all_niplets["song_id"].astype("category")

    num_users = all_niplets["user_id"].cat.codes.unique().shape[0]
    num_songs = all_niplets["song_id"].cat.codes.unique().shape[0]

    train_data = all_niplets.loc[all_niplets["is_hidden"] == False]
    test_data = all_niplets.loc[all_niplets["is_hidden"] == True]

    rows_train = train_data["song_id"].cat.codes.copy()
    cols_train = train_data["user_id"].cat.codes.copy()
    data_train = train_data["play_count"].astype(np.float32)

    rows_test = test_data["song_id"].cat.codes.copy()
    cols_test = test_data["user_id"].cat.codes.copy()
    data_test = test_data["play_count"].astype(np.float32)

    train_plays = coo_matrix(
        (data_train, (rows_train, cols_train)), shape=(num_songs, num_users)
    ).tocsr()
    test_plays = coo_matrix(
        (data_test, (rows_test, cols_test)), shape=(num_songs, num_users)
    ).tocsr()

    user_mapping = np.vstack(
        (all_niplets["user_id"].cat.codes.copy().values, all_niplets["user_id"].values)
    ).T
    song_mapping = np.vstack(
        (all_niplets["song_id"].cat.codes.copy().values, all_niplets["song_id"].values)
    ).T

    user_id_to_user_index = pd.DataFrame(
        columns=["sparse_index", "user_id"], data=user_mapping
    ).drop_duplicates()
    song_id_to_song_index = pd.DataFrame(
        columns=["sparse_index", "song_id"], data=song_mapping
    ).drop_duplicates()

    # In [24]:
    # Save to file
    user_id_to_user_index.to_hdf(out_dir / "user_mapping.h5", key="df", mode="w")
    song_id_to_song_index.to_hdf(out_dir / "song_mapping.h5", key="df", mode="w")

    save_npz(str(out_dir / "train_sparse"), train_plays)
    save_npz(str(out_dir / "test_sparse"), test_plays)

    # In [26]:
    song_df = song_id_to_song_index.merge(msd, left_on="song_id", right_on="song_id")
    song_df.set_index("sparse_index", inplace=True)
    # pandas >= 2 keeps an object index of ints here; pandas 1's Index() inferred int64.
    song_df.index = song_df.index.astype(np.int64)

    # In [29]:
    song_df.to_hdf(out_dir / "song_df.h5", key="df", mode="w")

    # In [30]:
    # (visible_niplets is already grouped by song, so pandas 1 and 3 give the same row order here.)
    visible_niplets_with_sparse_index = visible_niplets.merge(
        song_id_to_song_index, left_on="song_id", right_on="song_id"
    )

    # In [32]:
    assert visible_niplets_with_sparse_index.shape[0] == visible_niplets.shape[0]

    # In [33]:
    print("Grouping df...")
    gb = visible_niplets_with_sparse_index.groupby("user_id")
    gb_list = list(gb)

    # In [34]:
    print("Starting pool.map...")
    # Pool(os.cpu_count()) -> a context-managed Pool with a `processes` parameter.
    with Pool(processes) as pool:
        user_df_data = pool.map(func=get_row, iterable=gb_list, chunksize=625)
    print("Creating dataframe...")
    user_df = pd.DataFrame.from_records(user_df_data, columns=columns)

    # In [36]:
    user_df_with_sparse_index = user_df.merge(
        user_id_to_user_index, left_on="user_id", right_on="user_id"
    )
    user_df_with_sparse_index.set_index("sparse_index", inplace=True)
    # pandas >= 2 keeps an object index of ints here; pandas 1's Index() inferred int64.
    user_df_with_sparse_index.index = user_df_with_sparse_index.index.astype(np.int64)

    # In [39]:
    user_df_with_sparse_index.to_hdf(out_dir / "user_df.h5", key="df", mode="w")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the ported notebook on raw MSD files.")
    parser.add_argument("raw_dir", type=Path, help="folder holding the five raw inputs")
    parser.add_argument("out_dir", type=Path, help="folder for the six outputs")
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count(),
        help="Pool size for the per-user MUSIC step (default: os.cpu_count(), as the notebook)",
    )
    args = parser.parse_args(argv)
    run_notebook(args.raw_dir, args.out_dir, processes=args.processes)


if __name__ == "__main__":
    main()
