"""Synthetic versions of the five raw MSD input files, in their exact real formats.

A development tool, not part of the shipped package: run it from the repository root,
`python -m msd_sample --out DIR [--scale S] [--seed N]`; scale 1.0 gives the real sizes.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from msd_sample.catalogue import catalog_frame, msd_ids, user_ids, write_genres, write_h5
from msd_sample.plays import draw_eval_split, make_universe, write_eval, write_train
from msd_sample.sizes import (
    FEATURE_COLUMNS,
    PLAYS_IN_H5_SHARE,
    REAL_MISMATCHES,
    TEST_USERS_IN_TRAIN,
    TRAIN_DUPLICATE_LINES,
    sizes_for,
)
from msd_tasks.formats.raw import OPTIONAL_FILES, RAW_FILES

# --- entry points ------------------------------------------------------------------------


def write_sample(
    out_dir: str | Path,
    scale: float = 0.001,
    seed: int = 0,
    join_share: float = PLAYS_IN_H5_SHARE,
) -> dict[str, float]:
    """Write the five raw MSD inputs under ``out_dir``; returns counts of what was written.

    `join_share`: about that share of the plays are of catalogue songs, so survive the join
    (the real files: about 0.36; a higher share gives users longer tails after the join).
    """
    out = Path(out_dir)
    (out / RAW_FILES["visible"]).parent.mkdir(parents=True, exist_ok=True)
    sizes = sizes_for(scale)
    id_rng, h5_rng, genre_rng, universe_rng, user_rng, train_rng, eval_rng = np.random.default_rng(
        seed
    ).spawn(7)

    # Song ids: the h5 songs (the first played_in_h5 of them are played), then played
    # songs outside the h5. Track ids: the h5 rows, then genre-only tracks.
    songs = msd_ids(id_rng, b"SO", sizes.h5_songs + sizes.played_songs - sizes.played_in_h5)
    tracks = msd_ids(id_rng, b"TR", sizes.h5_rows + sizes.genre_other_tracks)

    frame = catalog_frame(h5_rng, sizes, songs[: sizes.h5_songs], tracks[: sizes.h5_rows])
    write_h5(out / RAW_FILES["msd"], frame)
    genre_lines = write_genres(
        genre_rng, out / RAW_FILES["genres"], tracks[: sizes.h5_rows], tracks[sizes.h5_rows :]
    )

    universe = make_universe(
        universe_rng, songs[: sizes.played_in_h5], songs[sizes.h5_songs :], join_share
    )
    ids = user_ids(user_rng, sizes.train_users + sizes.test_users)
    train_ids, test_ids = ids[: sizes.train_users], ids[sizes.train_users :]
    shared = user_rng.choice(sizes.test_users, TEST_USERS_IN_TRAIN, replace=False)
    test_ids[shared] = user_rng.choice(train_ids, TEST_USERS_IN_TRAIN, replace=False)

    stats = write_train(train_rng, out / RAW_FILES["train"], sizes, train_ids, universe)
    train_lines, train_songs = stats.lines, stats.played.copy()
    split = draw_eval_split(eval_rng, sizes, universe)
    for eval_songs in write_eval(eval_rng, out, split, test_ids, universe):
        stats.add(eval_songs, universe.in_h5)

    mismatches = write_mismatches(
        np.random.default_rng([seed, 99]), out / OPTIONAL_FILES["mismatches"], frame, scale
    )

    return {
        "mismatch_lines": mismatches,
        "h5_rows": len(frame),
        "h5_songs": sizes.h5_songs,
        "h5_duplicate_song_rows": len(frame) - sizes.h5_songs,
        "h5_rows_without_features": int(frame[FEATURE_COLUMNS].isna().all(axis=1).sum()),
        "genre_lines": genre_lines,
        "genre_tracks_not_in_h5": sizes.genre_other_tracks,
        "train_lines": train_lines,
        "train_users": sizes.train_users,
        "train_songs": int(train_songs.sum()),
        "train_songs_in_h5": int((train_songs & universe.in_h5).sum()),
        "train_duplicate_lines": TRAIN_DUPLICATE_LINES,
        "test_users": sizes.test_users,
        "test_visible_lines": int(split.visible.sum()),
        "test_hidden_lines": int((~split.visible).sum()),
        "test_users_in_train": TEST_USERS_IN_TRAIN,
        "test_hidden_only_users": split.hidden_only_users(universe.in_h5),
        "plays_in_h5_share": round(stats.h5_plays / stats.lines, 4),
    }


def write_mismatches(
    rng: np.random.Generator, path: Path, frame: pd.DataFrame, scale: float
) -> int:
    """sid_mismatches.txt: songs of the catalogue whose track match the MSD lists as wrong."""
    rows = rng.choice(len(frame), min(len(frame), max(5, round(REAL_MISMATCHES * scale))), False)
    lines = []
    for row in np.sort(rows):
        song, track, artist, title = (
            ast.literal_eval(frame[column].iat[row]).decode("utf-8")
            for column in ("song_id", "track_id", "artist_name", "title")
        )
        lines.append(
            f"ERROR: <{song} {track}> {artist}  -  {title}  !=  Someone Else  -  {title}\n"
        )
    path.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--scale", type=float, default=0.001, help="1.0 gives the real sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--join-share",
        type=float,
        default=PLAYS_IN_H5_SHARE,
        help=f"share of plays of catalogue songs (default {PLAYS_IN_H5_SHARE}, as the real files)",
    )
    args = parser.parse_args(argv)
    counts = write_sample(args.out, scale=args.scale, seed=args.seed, join_share=args.join_share)
    print(f"wrote the MSD sample (scale {args.scale}, seed {args.seed}) to {args.out}")
    for name, value in counts.items():
        print(f"  {name:<24} {value:>12,}")
