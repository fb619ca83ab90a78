# ruff: noqa: E501, NPY002, PLR0915, RET504, UP031
"""Faithful port of RecVAE's `preprocessing.py`: the reference the benchmark split is checked against.

The standard MSD split of Mult-VAE / RecVAE / EASE, run by researchers as
`--threshold 0 --min_items_per_user 20 --min_users_per_item 200 --heldout_users 50000` on the
Taste Profile triplets. Statement by statement, with only what current pandas (>= 2.2) and reading
the raw MSD file require changed (each change is commented). Run:
`python tests/recvae_port.py TRIPLETS OUT_DIR [--heldout-users N] [--min-items-per-user N]
[--min-users-per-item N] [--threshold X] [--verbose]`, or call `reference_split(...)`.
"""

import argparse
import os
import sys
import warnings

import numpy as np
import pandas as pd


def reference_split(
    triplets_path,
    output_dir,
    min_items_per_user=20,
    min_users_per_item=200,
    heldout_users=50000,
    threshold=0.0,
    verbose=False,
):
    """The script's body; the argparse values are parameters (the MSD run's values as defaults)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.Pandas4Warning)  # the option below is deprecated
        # pandas 3 infers its `str` dtype everywhere; the pandas of the script kept object columns
        # of Python str (sorted, compared and written the same way, but the script's own types).
        with pd.option_context("future.infer_string", False):
            _run_script(
                str(triplets_path),
                str(output_dir),
                threshold,
                min_items_per_user,
                min_users_per_item,
                heldout_users,
                verbose,
            )


def _run_script(dataset, output_dir, threshold, min_uc, min_sc, n_heldout_users, verbose):
    # The script's `print`s, optional (the per-1000-users progress lines are many at full size).
    def print_(*args):
        if verbose:
            print(*args)

    # The raw MSD triplet file is tab-separated without a header: `header=0` (a MovieLens
    # ratings.csv with its header line) becomes sep="\t", header=None and the column names the
    # script uses, user as userId, song as movieId, play count as rating.
    raw_data = pd.read_csv(dataset, sep="\t", header=None, names=["userId", "movieId", "rating"])
    raw_data = raw_data[raw_data["rating"] > threshold]
    raw_data.head()

    def get_count(tp, id):
        # pandas >= 1.1 honours as_index=False in size() and returns a DataFrame (columns id and
        # size); the script's pandas ignored it and returned a Series of counts indexed by the
        # sorted ids, which `itemcount.index[itemcount >= min_sc]` below relies on. Grouping with
        # the default as_index=True returns that Series.
        playcount_groupbyid = tp[[id]].groupby(id)
        count = playcount_groupbyid.size()
        return count

    def filter_triplets(tp, min_uc=min_uc, min_sc=min_sc):
        if min_sc > 0:
            itemcount = get_count(tp, "movieId")
            tp = tp[tp["movieId"].isin(itemcount.index[itemcount >= min_sc])]

        if min_uc > 0:
            usercount = get_count(tp, "userId")
            tp = tp[tp["userId"].isin(usercount.index[usercount >= min_uc])]

        usercount, itemcount = get_count(tp, "userId"), get_count(tp, "movieId")
        return tp, usercount, itemcount

    raw_data, user_activity, item_popularity = filter_triplets(raw_data)

    sparsity = 1.0 * raw_data.shape[0] / (user_activity.shape[0] * item_popularity.shape[0])

    print_(
        "After filtering, there are %d watching events from %d users and %d movies (sparsity: %.3f%%)"
        % (raw_data.shape[0], user_activity.shape[0], item_popularity.shape[0], sparsity * 100)
    )

    unique_uid = user_activity.index

    np.random.seed(98765)
    idx_perm = np.random.permutation(unique_uid.size)
    unique_uid = unique_uid[idx_perm]

    n_users = unique_uid.size

    tr_users = unique_uid[: (n_users - n_heldout_users * 2)]
    vd_users = unique_uid[(n_users - n_heldout_users * 2) : (n_users - n_heldout_users)]
    te_users = unique_uid[(n_users - n_heldout_users) :]

    train_plays = raw_data.loc[raw_data["userId"].isin(tr_users)]

    unique_sid = pd.unique(train_plays["movieId"])

    show2id = dict((sid, i) for (i, sid) in enumerate(unique_sid))
    profile2id = dict((pid, i) for (i, pid) in enumerate(unique_uid))

    if not os.path.exists(output_dir):
        os.makedirs(output_dir)

    with open(os.path.join(output_dir, "unique_sid.txt"), "w") as f:
        for sid in unique_sid:
            f.write("%s\n" % sid)

    with open(os.path.join(output_dir, "unique_uid.txt"), "w") as f:
        for uid in unique_uid:
            f.write("%s\n" % uid)

    def split_train_test_proportion(data, test_prop=0.2):
        data_grouped_by_user = data.groupby("userId")
        tr_list, te_list = list(), list()

        np.random.seed(98765)

        for i, (_, group) in enumerate(data_grouped_by_user):
            n_items_u = len(group)

            if n_items_u >= 5:
                idx = np.zeros(n_items_u, dtype="bool")
                idx[
                    np.random.choice(
                        n_items_u, size=int(test_prop * n_items_u), replace=False
                    ).astype("int64")
                ] = True

                tr_list.append(group[np.logical_not(idx)])
                te_list.append(group[idx])
            else:
                tr_list.append(group)

            if i % 1000 == 0:
                print_("%d users sampled" % i)
                sys.stdout.flush()

        data_tr = pd.concat(tr_list)
        data_te = pd.concat(te_list)

        return data_tr, data_te

    vad_plays = raw_data.loc[raw_data["userId"].isin(vd_users)]
    vad_plays = vad_plays.loc[vad_plays["movieId"].isin(unique_sid)]

    vad_plays_tr, vad_plays_te = split_train_test_proportion(vad_plays)

    test_plays = raw_data.loc[raw_data["userId"].isin(te_users)]
    test_plays = test_plays.loc[test_plays["movieId"].isin(unique_sid)]

    test_plays_tr, test_plays_te = split_train_test_proportion(test_plays)

    def numerize(tp):
        uid = list(map(lambda x: profile2id[x], tp["userId"]))
        sid = list(map(lambda x: show2id[x], tp["movieId"]))
        return pd.DataFrame(data={"uid": uid, "sid": sid}, columns=["uid", "sid"])

    train_data = numerize(train_plays)
    train_data.to_csv(os.path.join(output_dir, "train.csv"), index=False)

    vad_data_tr = numerize(vad_plays_tr)
    vad_data_tr.to_csv(os.path.join(output_dir, "validation_tr.csv"), index=False)

    vad_data_te = numerize(vad_plays_te)
    vad_data_te.to_csv(os.path.join(output_dir, "validation_te.csv"), index=False)

    test_data_tr = numerize(test_plays_tr)
    test_data_tr.to_csv(os.path.join(output_dir, "test_tr.csv"), index=False)

    test_data_te = numerize(test_plays_te)
    test_data_te.to_csv(os.path.join(output_dir, "test_te.csv"), index=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the ported RecVAE preprocessing on triplets.")
    parser.add_argument("triplets", help="train_triplets.txt (user<TAB>song<TAB>count, no header)")
    parser.add_argument("output_dir", help="folder for the seven files")
    parser.add_argument("--threshold", type=float, default=0.0)
    parser.add_argument("--min-items-per-user", type=int, default=20)
    parser.add_argument("--min-users-per-item", type=int, default=200)
    parser.add_argument("--heldout-users", type=int, default=50000)
    parser.add_argument("--verbose", action="store_true", help="the script's progress prints")
    args = parser.parse_args(argv)
    reference_split(
        args.triplets,
        args.output_dir,
        min_items_per_user=args.min_items_per_user,
        min_users_per_item=args.min_users_per_item,
        heldout_users=args.heldout_users,
        threshold=args.threshold,
        verbose=args.verbose,
    )


if __name__ == "__main__":
    main()
