"""Write synthetic versions of the five raw MSD input files, in their exact real formats.

Run `python -m msd_tasks.sample --out DIR [--scale S] [--seed N]`; scale 1.0 gives the real sizes.
"""

from __future__ import annotations

import argparse
import ast
import functools
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from msd_tasks.formats.raw import OPTIONAL_FILES, RAW_FILES

H5_COLUMNS = [
    *("artist_mbid", "artist_name", "artist_playmeid", "release", "release_7digitalid"),
    *("song_hotttnesss", "song_id", "title", "track_7digitalid", "track_id", "year"),
    *("spotify_id", "acousticness", "danceability", "duration_ms", "energy"),
    *("instrumentalness", "key", "liveness", "loudness", "mode", "speechiness", "tempo"),
    *("time_signature", "valence"),
]
BYTES_LITERAL_COLUMNS = ["song_id", "track_id", "artist_mbid", "artist_name", "title", "release"]
FEATURE_COLUMNS = H5_COLUMNS[H5_COLUMNS.index("acousticness") :]

# MAGD labels with their real line counts, used as sampling weights. Note the real file's
# quirks "New Age" (inner space) and "Stage " (trailing space).
GENRE_COUNTS = {
    "Pop_Rock": 238_786,
    "Electronic": 41_075,
    "Rap": 20_939,
    "Jazz": 17_836,
    "Latin": 17_590,
    "RnB": 14_335,
    "International": 14_242,
    "Country": 11_772,
    "Religious": 8_814,
    "Reggae": 6_946,
    "Blues": 6_836,
    "Vocal": 6_195,
    "Folk": 5_865,
    "New Age": 4_010,
    "Comedy_Spoken": 2_067,
    "Stage ": 1_614,
    "Easy_Listening": 1_545,
    "Avant_Garde": 1_014,
    "Classical": 556,
    "Children": 477,
    "Holiday": 200,
}

# Real sizes, i.e. scale 1.0.
REAL_MISMATCHES = 19_094  # lines of the MSD's sid_mismatches.txt
REAL_H5_ROWS = 447_499
REAL_H5_SONGS = 426_545
REAL_GENRE_LINES = 422_714
REAL_TRAIN_LINES = 48_373_586
REAL_TRAIN_USERS = 1_019_318
REAL_PLAYED_SONGS = 384_546
REAL_PLAYED_IN_H5 = 168_000
REAL_TEST_USERS = 100_000
REAL_VISIBLE_LINES = 1_319_894
REAL_HIDDEN_LINES = 1_368_430

GENRE_H5_COVERAGE = 0.45  # share of h5 rows whose track has a genre line
PLAYS_IN_H5_SHARE = 0.36  # target share of plays whose song is in the h5
HIDDEN_ONLY_SHARE = 0.02  # test users whose h5 plays are all hidden
NO_SPOTIFY_SHARE = 0.04  # h5 rows without a Spotify match, hence without features
NO_FEATURES_SHARE = 0.01  # further h5 rows matched on Spotify but without features

# Deliberate edge cases, the same at every scale.
TRAIN_DUPLICATE_LINES = 5
TEST_USERS_IN_TRAIN = 5
GENRE_DUPLICATE_TRACKS = 3

MIN_TRAIN_SONGS_PER_USER = 10
MAX_TRAIN_SONGS_PER_USER = 5_000
MIN_TEST_LINES_PER_USER = 5
MAX_PLAY_COUNT = 5_000
PLAY_COUNT_EXPONENT = 1.42  # truncated discrete Pareto: mostly 1, mean about 2.9
CHUNK_LINES = 1_500_000

SPECIAL_TITLES = [
    "It's So Good",
    'Say "Hello"',
    'Don\'t Say "Never"',
    "Back\\slash Blues",
    "Déjà Vu",
    "Hoppípolla",
    "日本語の歌",
    "Party 🎉 Time",
]
SPECIAL_ARTISTS = ["Beyoncé", "Sigur Rós", "宇多田ヒカル", "🎸 Emoji Band", "Guns N' Roses"]
EMPTY_MBID_ARTIST = 3  # index into SPECIAL_ARTISTS of an artist without MusicBrainz id
SPECIAL_RELEASES = [
    "Ágætis byrjun",
    "日本語のアルバム",
    'Greatest "Hits"',
    "Rock 'n' Roll",
    "Emoji 🎶 Collection",
    "C:\\Music\\Rips",
]
ENGLISH_WORDS = [
    *("Love", "Night", "Heart", "Dream", "Fire", "Rain", "Blue", "Girl", "Baby", "Time"),
    *("Life", "Home", "Road", "Light", "Dance", "Song", "Moon", "Sun", "Star", "Gold"),
    *("Wild", "Sweet", "Cold", "Black", "White", "River", "City", "Summer", "Winter"),
    *("Heaven", "Angel", "Ghost", "Lonely", "Forever", "Tonight", "Again", "Down", "Away"),
    *("Never", "Little", "Big", "Old", "New", "Money", "Power"),
    *("Café", "Corazón", "Noël", "Niño", "Über"),
]
SYLLABLES = [
    *("ka", "lo", "mi", "ra", "ne", "to", "su", "vi", "da", "ry", "an", "el"),
    *("or", "us", "in", "be", "cha", "sho", "the", "lu", "mar", "ken", "zo", "pi"),
]

UPPER = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)
HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", np.uint8)
BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)


@dataclass(frozen=True)
class Sizes:
    """Target sizes of the generated files for one scale."""

    h5_songs: int
    h5_rows: int
    genre_lines: int
    played_songs: int
    played_in_h5: int
    train_users: int
    train_lines: int
    test_users: int
    visible_lines: int
    hidden_lines: int

    @property
    def genre_h5_tracks(self) -> int:
        return round(GENRE_H5_COVERAGE * self.h5_rows)

    @property
    def genre_other_tracks(self) -> int:
        return self.genre_lines - self.genre_h5_tracks - GENRE_DUPLICATE_TRACKS


def sizes_for(scale: float) -> Sizes:
    """Scale the real sizes linearly, with minimums that keep every edge case possible."""

    def scaled(real: int, minimum: int) -> int:
        return max(minimum, round(real * scale))

    h5_songs = scaled(REAL_H5_SONGS, 300)
    h5_rows = h5_songs + scaled(REAL_H5_ROWS - REAL_H5_SONGS, 5)
    played_songs = scaled(REAL_PLAYED_SONGS, 300)
    train_users = scaled(REAL_TRAIN_USERS, 20)
    test_users = scaled(REAL_TEST_USERS, 20)
    min_genre_lines = round(GENRE_H5_COVERAGE * h5_rows) + 2 * len(GENRE_COUNTS)
    return Sizes(
        h5_songs=h5_songs,
        h5_rows=h5_rows,
        genre_lines=scaled(REAL_GENRE_LINES, min_genre_lines),
        played_songs=played_songs,
        played_in_h5=round(played_songs * REAL_PLAYED_IN_H5 / REAL_PLAYED_SONGS),
        train_users=train_users,
        train_lines=scaled(REAL_TRAIN_LINES, 20 * train_users),
        test_users=test_users,
        visible_lines=scaled(REAL_VISIBLE_LINES, 8 * test_users),
        hidden_lines=scaled(REAL_HIDDEN_LINES, 8 * test_users),
    )


# --- identifiers -------------------------------------------------------------------------


def msd_ids(rng: np.random.Generator, prefix: bytes, n: int) -> np.ndarray:
    """``n`` distinct MSD-style ids like ``SOSIYAD12A8C14097F`` as an ``S18`` array."""
    while True:
        chars = np.empty((n, 18), np.uint8)
        chars[:, :2] = np.frombuffer(prefix, np.uint8)
        chars[:, 2:7] = UPPER[rng.integers(0, len(UPPER), (n, 5))]
        chars[:, 7:] = HEX_UPPER[rng.integers(0, len(HEX_UPPER), (n, 11))]
        ids = chars.view("S18").ravel()
        if len(np.unique(ids)) == n:
            return ids


def user_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random sha1-like user ids (40 lowercase hex chars) as an ``S40`` array."""
    # 160 random bits per id make a collision practically impossible; none is checked.
    return np.frombuffer(rng.bytes(20 * n).hex().encode("ascii"), dtype="S40").copy()


def spotify_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Random 22-character base62 Spotify track ids."""
    chars = BASE62[rng.integers(0, len(BASE62), (n, 22))]
    return [s.decode("ascii") for s in chars.view("S22").ravel().tolist()]


def mbids(rng: np.random.Generator, n: int) -> list[str]:
    """Random MusicBrainz-style UUIDs."""
    digits = rng.bytes(16 * n).hex()
    hexes = (digits[i : i + 32] for i in range(0, 32 * n, 32))
    return [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in hexes]


def bytes_literals(values: Iterable[str | bytes]) -> np.ndarray:
    """Text of each value's Python bytes literal, e.g. ``"b'Beyonc\\xc3\\xa9'"``, as objects."""
    texts = [repr(v if isinstance(v, bytes) else v.encode("utf-8")) for v in values]
    return np.array(texts, dtype=object)


# --- h5 catalog --------------------------------------------------------------------------


def vocabulary(rng: np.random.Generator, n_made_up: int = 2_000) -> np.ndarray:
    """English words plus words made up from syllables."""
    picks = rng.integers(0, len(SYLLABLES), (n_made_up, 3)).tolist()
    lengths = rng.integers(1, 4, n_made_up).tolist()
    made_up = [
        "".join(SYLLABLES[i] for i in row[:k]).capitalize()
        for row, k in zip(picks, lengths, strict=True)
    ]
    return np.array(ENGLISH_WORDS + made_up, dtype=object)


def phrases(rng: np.random.Generator, vocab: np.ndarray, n: int, most: int) -> list[str]:
    """``n`` phrases of 1 to ``most`` words."""
    words = vocab[rng.integers(0, len(vocab), (n, most))].tolist()
    lengths = rng.integers(1, most + 1, n).tolist()
    return [" ".join(row[:k]) for row, k in zip(words, lengths, strict=True)]


@dataclass(frozen=True)
class Artists:
    names: list[str]
    mbids: list[str]
    playmeids: np.ndarray


def make_artists(rng: np.random.Generator, vocab: np.ndarray, n: int) -> Artists:
    """Artist pool; the first entries are SPECIAL_ARTISTS, one of them without mbid."""
    names = phrases(rng, vocab, n, 3)
    names[: len(SPECIAL_ARTISTS)] = SPECIAL_ARTISTS
    no_mbid = rng.random(n) < 0.05
    no_mbid[EMPTY_MBID_ARTIST] = True
    ids = ["" if empty else m for empty, m in zip(no_mbid.tolist(), mbids(rng, n), strict=True)]
    playmeids = np.where(rng.random(n) < 0.6, -1, rng.integers(1, 200_000, n))
    return Artists(names, ids, playmeids.astype(np.int64))


def audio_features(rng: np.random.Generator, n: int, missing: np.ndarray) -> dict[str, np.ndarray]:
    """Spotify-like audio features in realistic ranges; all NaN where ``missing``."""
    instrumental = rng.random(n) < 0.25
    features = {
        "acousticness": rng.beta(0.5, 1.5, n),
        "danceability": rng.beta(5.0, 4.0, n),
        "duration_ms": np.round(np.clip(rng.normal(240_000, 55_000, n), 120_000, 400_000)),
        "energy": rng.beta(3.0, 2.0, n),
        "instrumentalness": np.where(instrumental, rng.beta(2.0, 1.0, n), rng.beta(0.3, 8.0, n)),
        "key": rng.integers(0, 12, n).astype(np.float64),
        "liveness": rng.beta(1.5, 6.0, n),
        "loudness": np.clip(-1.0 - rng.gamma(2.5, 3.5, n), -35.0, 0.0),
        "mode": (rng.random(n) < 0.65).astype(np.float64),
        "speechiness": rng.beta(1.0, 12.0, n),
        "tempo": np.clip(rng.normal(120.0, 28.0, n), 60.0, 200.0),
        "time_signature": rng.choice([3.0, 4.0, 5.0], n, p=[0.08, 0.89, 0.03]),
        "valence": rng.beta(2.0, 2.0, n),
    }
    for values in features.values():
        values[missing] = np.nan
    return features


def unknown_as_minus_one(rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    """Mark about 1% of the ids unknown (-1), as in the MSD."""
    return np.where(rng.random(len(ids)) < 0.01, -1, ids).astype(np.int64)


def row_order(rng: np.random.Generator, n_songs: int, dup_slots: np.ndarray) -> np.ndarray:
    """Shuffle rows (song slots, then duplicates) so duplicates follow their song's first row."""
    first = rng.permutation(n_songs).astype(np.float64)
    later = first[dup_slots] + 0.5 + rng.random(len(dup_slots)) * (n_songs - first[dup_slots])
    return np.argsort(np.concatenate([first, later]), kind="stable")


def catalog_frame(
    rng: np.random.Generator, sizes: Sizes, song_ids: np.ndarray, track_ids: np.ndarray
) -> pd.DataFrame:
    """The h5 catalog: a row per song, plus duplicate rows reusing a song id with new metadata.

    Before shuffling, row i < len(SPECIAL_TITLES) is song i and gets the special texts, and
    the next two rows lack features (the first also lacks a Spotify id).
    """
    n_rows, n_songs = sizes.h5_rows, sizes.h5_songs
    dup_slots = rng.integers(0, n_songs, n_rows - n_songs)
    dup_slots[0] = 0
    slots = np.concatenate([np.arange(n_songs), dup_slots])

    vocab = vocabulary(rng)
    artists = make_artists(rng, vocab, max(len(SPECIAL_ARTISTS), n_rows // 10))
    popular_first = rng.permutation(len(artists.names))
    artist = popular_first[(len(artists.names) * rng.random(n_rows) ** 2).astype(np.int64)]
    titles = phrases(rng, vocab, n_rows, 4)
    releases = phrases(rng, vocab, n_rows, 3)
    for i, title in enumerate(SPECIAL_TITLES):
        titles[i] = title
        releases[i] = SPECIAL_RELEASES[i % len(SPECIAL_RELEASES)]
        artist[i] = i % len(SPECIAL_ARTISTS)

    no_spotify = rng.random(n_rows) < NO_SPOTIFY_SHARE
    no_spotify[len(SPECIAL_TITLES)] = True
    no_features = no_spotify | (rng.random(n_rows) < NO_FEATURES_SHARE)
    no_features[len(SPECIAL_TITLES) + 1] = True
    spotify = [None if m else s for m, s in zip(no_spotify, spotify_ids(rng, n_rows), strict=True)]
    hotttnesss = np.where(rng.random(n_rows) < 0.1, 0.0, rng.beta(2.0, 3.0, n_rows))
    hotttnesss[rng.random(n_rows) < 0.25] = np.nan
    year = np.maximum(2011 - np.floor(rng.gamma(2.0, 6.0, n_rows)).astype(np.int64), 1922)

    columns = {
        "artist_mbid": bytes_literals(artists.mbids[a] for a in artist.tolist()),
        "artist_name": bytes_literals(artists.names[a] for a in artist.tolist()),
        "artist_playmeid": artists.playmeids[artist],
        "release": bytes_literals(releases),
        "release_7digitalid": unknown_as_minus_one(rng, rng.integers(1, 1_000_000, n_rows)),
        "song_hotttnesss": hotttnesss,
        "song_id": bytes_literals(song_ids[slots].tolist()),
        "title": bytes_literals(titles),
        "track_7digitalid": unknown_as_minus_one(rng, rng.integers(1, 10_000_000, n_rows)),
        "track_id": bytes_literals(track_ids.tolist()),
        "year": np.where(rng.random(n_rows) < 0.45, 0, year),
        "spotify_id": np.array(spotify, dtype=object),
        **audio_features(rng, n_rows, no_features),
    }
    order = row_order(rng, n_songs, dup_slots)
    # Explicit dtypes: pandas 3 would otherwise turn the object text columns into "str".
    return pd.DataFrame(
        {name: pd.Series(columns[name][order], dtype=columns[name].dtype) for name in H5_COLUMNS}
    )


def write_h5(path: Path, frame: pd.DataFrame) -> None:
    """Write the catalog like ``frame.to_hdf(path, key="df", mode="w")`` (fixed format).

    HDF5 stamps every dataset with its creation time, and pandas does not pass
    ``track_times=False`` on for the fixed format, so it is switched off on the PyTables
    file here: the same seed then gives byte-identical files.
    """
    with pd.HDFStore(path, mode="w") as store, warnings.catch_warnings():
        # The object block holds None for missing Spotify ids, so PyTables pickles it.
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        handle = store._handle  # the tables.File; pandas has no public accessor
        for name in ("create_array", "create_carray", "create_earray", "create_vlarray"):
            setattr(handle, name, functools.partial(getattr(handle, name), track_times=False))
        store.put("df", frame, format="fixed", track_times=False)


# --- genres ------------------------------------------------------------------------------


def write_genres(
    rng: np.random.Generator, path: Path, h5_tracks: np.ndarray, other_tracks: np.ndarray
) -> int:
    """Write ``track<TAB>genre`` lines sorted by track id; returns the number of lines.

    Every label occurs at least once and a few tracks get a second, different label.
    """
    n_known = round(GENRE_H5_COVERAGE * len(h5_tracks))
    tracks = np.concatenate(
        [h5_tracks[rng.choice(len(h5_tracks), n_known, replace=False)], other_tracks]
    )
    weights = np.array(list(GENRE_COUNTS.values()), dtype=np.float64)
    labels = rng.choice(len(weights), len(tracks), p=weights / weights.sum())
    labels[rng.choice(len(tracks), len(weights), replace=False)] = np.arange(len(weights))

    dup = rng.choice(len(tracks), GENRE_DUPLICATE_TRACKS, replace=False)
    second = (labels[dup] + rng.integers(1, len(weights), len(dup))) % len(weights)
    tracks = np.concatenate([tracks, tracks[dup]])
    labels = np.concatenate([labels, second])

    names = [genre.encode("utf-8") for genre in GENRE_COUNTS]
    order = np.argsort(tracks, kind="stable")
    pairs = zip(tracks[order].tolist(), labels[order].tolist(), strict=True)
    lines = [track + b"\t" + names[label] + b"\n" for track, label in pairs]
    path.write_bytes(b"".join(lines))
    return len(lines)


# --- song universe of the triplets --------------------------------------------------------


def rank_mass(n_songs: int, offset: float) -> np.ndarray:
    """Probability of each popularity rank under ``Universe.draw``."""
    cdf = np.log((np.arange(n_songs + 1) + offset) / offset) / np.log((n_songs + offset) / offset)
    return np.diff(cdf)


def h5_ranks(rng: np.random.Generator, mass: np.ndarray, n_h5: int, share: float) -> np.ndarray:
    """Pick ``n_h5`` popularity ranks for the h5 songs, carrying about ``share`` of the mass.

    The top 1% of ranks and the rest each get a selection probability, solved from the
    two conditions.
    """
    n = len(mass)
    head = max(1, n // 100)
    system = np.array([[head, n - head], [mass[:head].sum(), mass[head:].sum()]])
    p_head, _ = np.linalg.solve(system, [n_h5, share])
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


def make_universe(rng: np.random.Generator, h5_ids: np.ndarray, other_ids: np.ndarray) -> Universe:
    """Universe of played songs, h5 songs getting about PLAYS_IN_H5_SHARE of the plays."""
    ids = np.concatenate([h5_ids, other_ids])
    order = np.argsort(ids)
    in_h5 = order < len(h5_ids)
    offset = max(2.0, len(ids) / 4_000)
    rank_in_h5 = h5_ranks(rng, rank_mass(len(ids), offset), len(h5_ids), PLAYS_IN_H5_SHARE)
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


# --- entry points ------------------------------------------------------------------------


def write_sample(out_dir: str | Path, scale: float = 0.001, seed: int = 0) -> dict[str, float]:
    """Write the five raw MSD inputs under ``out_dir``; returns counts of what was written."""
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

    universe = make_universe(universe_rng, songs[: sizes.played_in_h5], songs[sizes.h5_songs :])
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
    args = parser.parse_args(argv)
    counts = write_sample(args.out, scale=args.scale, seed=args.seed)
    print(f"wrote the MSD sample (scale {args.scale}, seed {args.seed}) to {args.out}")
    for name, value in counts.items():
        print(f"  {name:<24} {value:>12,}")


if __name__ == "__main__":
    main()
