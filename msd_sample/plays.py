"""The triplet files: a song universe, users with long tails, the train and test splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from msd_sample.sizes import (
    CHUNK_LINES,
    HIDDEN_ONLY_SHARE,
    MAX_PLAY_COUNT,
    MAX_TRAIN_SONGS_PER_USER,
    MIN_TEST_LINES_PER_USER,
    MIN_TRAIN_SONGS_PER_USER,
    PLAY_COUNT_EXPONENT,
    PLAYS_IN_H5_SHARE,
    TRAIN_DUPLICATE_LINES,
    Sizes,
)
from msd_tasks.formats.raw import RAW_FILES

# --- song universe of the triplets --------------------------------------------------------


def rank_mass(n_songs: int, offset: float) -> np.ndarray:
    """Probability of each popularity rank under ``Universe.draw``."""
    cdf = np.log((np.arange(n_songs + 1) + offset) / offset) / np.log((n_songs + offset) / offset)
    return np.diff(cdf)


def h5_ranks(rng: np.random.Generator, mass: np.ndarray, n_h5: int, share: float) -> np.ndarray:
    """Pick ``n_h5`` popularity ranks for the h5 songs, carrying about ``share`` of the mass.

    The top ranks (1% of them, or more where a high share needs it) and the rest each get a
    selection probability, solved from the two conditions.
    """
    n = len(mass)
    for head_share in (0.01, 0.02, 0.05, 0.1, 0.2, 0.4):
        head = max(1, round(n * head_share))
        system = np.array([[head, n - head], [mass[:head].sum(), mass[head:].sum()]])
        p_head, _ = np.linalg.solve(system, [n_h5, share])
        if p_head <= 1:
            break
    k_head = int(np.clip(round(p_head * head), max(0, n_h5 - (n - head)), min(head, n_h5)))
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(head, k_head, replace=False)] = True
    chosen[head + rng.choice(n - head, n_h5 - k_head, replace=False)] = True
    return chosen


@dataclass(frozen=True)
class Universe:
    """The played songs, sorted by id, with Zipf-Mandelbrot popularity."""

    ids: np.ndarray  # S18, sorted, so index order is song id order
    in_h5: np.ndarray  # bool per song
    rank_to_song: np.ndarray  # song index of each popularity rank
    offset: float

    def __len__(self) -> int:
        return len(self.ids)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` song indices by inverting the continuous Zipf-Mandelbrot CDF."""
        q = self.offset
        ranks = (q * ((len(self) + q) / q) ** rng.random(n) - q).astype(np.int64)
        return self.rank_to_song[np.minimum(ranks, len(self) - 1)]


def make_universe(
    rng: np.random.Generator,
    h5_ids: np.ndarray,
    other_ids: np.ndarray,
    join_share: float = PLAYS_IN_H5_SHARE,
) -> Universe:
    """Universe of played songs, h5 songs getting about `join_share` of the plays."""
    ids = np.concatenate([h5_ids, other_ids])
    order = np.argsort(ids)
    in_h5 = order < len(h5_ids)
    offset = max(2.0, len(ids) / 4_000)
    rank_in_h5 = h5_ranks(rng, rank_mass(len(ids), offset), len(h5_ids), join_share)
    rank_to_song = np.empty(len(ids), dtype=np.int64)
    rank_to_song[rank_in_h5] = rng.permutation(np.flatnonzero(in_h5))
    rank_to_song[~rank_in_h5] = rng.permutation(np.flatnonzero(~in_h5))
    return Universe(ids[order], in_h5, rank_to_song, offset)


# --- triplets ----------------------------------------------------------------------------


def spread_total(
    rng: np.random.Generator, total: int, n: int, *, low: int, high: int, sigma: float
) -> np.ndarray:
    """``n`` lognormally skewed counts in [low, high] summing to ``total``."""
    if not low * n <= total <= high * n:
        raise ValueError(f"cannot spread {total} lines over {n} users within [{low}, {high}]")
    weights = rng.lognormal(0.0, sigma, n)
    counts = np.full(n, low, dtype=np.int64)
    while (remaining := total - int(counts.sum())) > 0:
        room = high - counts
        p = np.where(room > 0, weights, 0.0)
        counts += np.minimum(rng.multinomial(remaining, p / p.sum()), room)
    return counts


def play_counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Positive play counts from a truncated discrete Pareto: mostly 1, mean about 2.9."""
    floor = (MAX_PLAY_COUNT + 1.0) ** -PLAY_COUNT_EXPONENT
    u = floor + (1.0 - floor) * rng.random(n)
    return np.floor(u ** (-1.0 / PLAY_COUNT_EXPONENT)).astype(np.int64)


def user_starts(per_user: np.ndarray) -> np.ndarray:
    """Index of each user's first line."""
    return np.concatenate([[0], np.cumsum(per_user)[:-1]])


def bad_lines(
    users: np.ndarray, songs: np.ndarray, pools: np.ndarray | None, in_h5: np.ndarray
) -> np.ndarray:
    """Lines repeating an earlier (user, song) pair, or with a song outside the line's pool.

    Pools: 0 any song, 1 songs not in the h5, 2 songs in the h5.
    """
    keys = users * len(in_h5) + songs
    order = np.argsort(keys)
    bad = np.zeros(len(keys), dtype=bool)
    bad[order[1:][keys[order[1:]] == keys[order[:-1]]]] = True
    if pools is not None:
        hit = in_h5[songs]
        bad |= ((pools == 1) & hit) | ((pools == 2) & ~hit)
    return bad


def draw_songs(
    rng: np.random.Generator,
    per_user: np.ndarray,
    universe: Universe,
    pools: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(user, song) lines with distinct songs per user, users in order.

    Repeats (and pool violations) are redrawn, rechecking only the users concerned.
    """
    users = np.repeat(np.arange(len(per_user), dtype=np.int64), per_user)
    songs = universe.draw(rng, len(users))
    todo = np.arange(len(users))
    while True:
        todo_pools = None if pools is None else pools[todo]
        bad = todo[bad_lines(users[todo], songs[todo], todo_pools, universe.in_h5)]
        if len(bad) == 0:
            return users, songs
        songs[bad] = universe.draw(rng, len(bad))
        affected = np.zeros(len(per_user), dtype=bool)
        affected[users[bad]] = True
        todo = np.flatnonzero(affected[users])


def sorted_lines(
    users: np.ndarray, songs: np.ndarray, n_songs: int
) -> tuple[np.ndarray, np.ndarray]:
    """The lines sorted by user index, then song index (which is song id order)."""
    keys = np.sort(users * n_songs + songs)
    return keys // n_songs, keys % n_songs


TRIPLET_SCHEMA = pa.schema(
    [("user", pa.large_string()), ("song", pa.large_string()), ("count", pa.int64())]
)


def fixed_width_strings(values: np.ndarray) -> pa.Array:
    """Arrow strings over a numpy ``S<n>`` array whose values all use the full width."""
    width = values.dtype.itemsize
    offsets = np.arange(len(values) + 1, dtype=np.int64) * width
    data = np.ascontiguousarray(values).view(np.uint8)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.large_string(), len(values), buffers)


def triplet_writer(sink: BinaryIO) -> pacsv.CSVWriter:
    """A CSV writer producing bare ``user<TAB>song<TAB>count`` lines."""
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    return pacsv.CSVWriter(sink, TRIPLET_SCHEMA, write_options=options)


def write_triplets(
    writer: pacsv.CSVWriter, users: np.ndarray, songs: np.ndarray, counts: np.ndarray
) -> None:
    """Write aligned ``S40`` user ids, ``S18`` song ids and play counts."""
    arrays = [fixed_width_strings(users), fixed_width_strings(songs), pa.array(counts)]
    writer.write_table(pa.Table.from_arrays(arrays, schema=TRIPLET_SCHEMA))


@dataclass
class PlayStats:
    """Running totals over the written triplet lines."""

    played: np.ndarray  # bool per universe song
    h5_plays: int = 0
    lines: int = 0

    def add(self, songs: np.ndarray, in_h5: np.ndarray) -> None:
        self.played[songs] = True
        self.h5_plays += int(in_h5[songs].sum())
        self.lines += len(songs)


def train_chunk(
    rng: np.random.Generator, per_user: np.ndarray, n_duplicates: int, universe: Universe
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (local user, song) lines of a chunk; ``n_duplicates`` lines are written twice."""
    per_user = per_user.copy()
    candidates = np.flatnonzero(per_user > MIN_TRAIN_SONGS_PER_USER)
    duplicated = rng.choice(candidates, n_duplicates, replace=False)
    per_user[duplicated] -= 1
    users, songs = sorted_lines(*draw_songs(rng, per_user, universe), len(universe))
    repeats = np.ones(len(users), dtype=np.int64)
    repeats[user_starts(per_user)[duplicated]] = 2
    return np.repeat(users, repeats), np.repeat(songs, repeats)


def chunk_bounds(per_user: np.ndarray, chunk_lines: int) -> list[int]:
    """User index boundaries of consecutive chunks of about ``chunk_lines`` lines."""
    n_lines = int(per_user.sum())
    cuts = np.searchsorted(np.cumsum(per_user), np.arange(chunk_lines, n_lines, chunk_lines))
    edges = np.concatenate([[0], np.minimum(cuts + 1, len(per_user)), [len(per_user)]])
    return np.unique(edges).tolist()


def write_train(
    rng: np.random.Generator, path: Path, sizes: Sizes, user_ids: np.ndarray, universe: Universe
) -> PlayStats:
    """Write the train triplets, chunk by chunk of whole users."""
    high = max(MIN_TRAIN_SONGS_PER_USER + 1, min(MAX_TRAIN_SONGS_PER_USER, len(universe) // 4))
    per_user = spread_total(
        rng, sizes.train_lines, len(user_ids), low=MIN_TRAIN_SONGS_PER_USER, high=high, sigma=1.1
    )
    bounds = chunk_bounds(per_user, CHUNK_LINES)
    chunk_rngs = rng.spawn(len(bounds) - 1)
    stats = PlayStats(np.zeros(len(universe), dtype=bool))
    with path.open("wb") as sink, triplet_writer(sink) as writer:
        for i, chunk_rng in enumerate(chunk_rngs):
            lo, hi = bounds[i], bounds[i + 1]
            n_duplicates = TRAIN_DUPLICATE_LINES if i == 0 else 0
            users, songs = train_chunk(chunk_rng, per_user[lo:hi], n_duplicates, universe)
            counts = play_counts(chunk_rng, len(songs))
            write_triplets(writer, user_ids[lo:hi][users], universe.ids[songs], counts)
            stats.add(songs, universe.in_h5)
    return stats


@dataclass(frozen=True)
class EvalSplit:
    """The test users' lines: user index, song index and whether the line is visible."""

    users: np.ndarray
    songs: np.ndarray
    visible: np.ndarray

    def hidden_only_users(self, in_h5: np.ndarray) -> int:
        """Users with no visible h5 song but at least one hidden h5 song."""
        hit = in_h5[self.songs]
        n_users = int(self.users.max()) + 1
        seen = np.bincount(self.users[self.visible & hit], minlength=n_users) > 0
        hidden = np.bincount(self.users[~self.visible & hit], minlength=n_users) > 0
        return int((hidden & ~seen).sum())


def draw_eval_split(rng: np.random.Generator, sizes: Sizes, universe: Universe) -> EvalSplit:
    """Visible and hidden songs of the test users, disjoint per user.

    HIDDEN_ONLY_SHARE of the users see only songs outside the h5 but have a hidden h5 song.
    """
    n, low = sizes.test_users, MIN_TEST_LINES_PER_USER
    high = max(low + 1, min(2_000, len(universe) // 10))
    n_visible = spread_total(rng, sizes.visible_lines, n, low=low, high=high, sigma=0.9)
    n_hidden = spread_total(rng, sizes.hidden_lines, n, low=low, high=high, sigma=0.9)
    per_user = n_visible + n_hidden
    users = np.repeat(np.arange(n), per_user)
    position = np.arange(len(users)) - user_starts(per_user)[users]
    visible = position < n_visible[users]

    hidden_only = np.zeros(n, dtype=bool)
    hidden_only[rng.choice(n, max(2, round(HIDDEN_ONLY_SHARE * n)), replace=False)] = True
    pools = np.zeros(len(users), dtype=np.int8)
    pools[hidden_only[users] & visible] = 1
    pools[hidden_only[users] & (position == n_visible[users])] = 2

    users, songs = draw_songs(rng, per_user, universe, pools)
    return EvalSplit(users, songs, visible)


def write_eval(
    rng: np.random.Generator,
    out_dir: Path,
    split: EvalSplit,
    user_ids: np.ndarray,
    universe: Universe,
) -> list[np.ndarray]:
    """Write the visible and hidden test files; returns the songs of each file's lines."""
    written = []
    for key, mask in [("visible", split.visible), ("hidden", ~split.visible)]:
        users, songs = sorted_lines(split.users[mask], split.songs[mask], len(universe))
        with (out_dir / RAW_FILES[key]).open("wb") as sink, triplet_writer(sink) as writer:
            counts = play_counts(rng, len(songs))
            write_triplets(writer, user_ids[users], universe.ids[songs], counts)
        written.append(songs)
    return written
