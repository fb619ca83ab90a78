"""The catalogue files: the metadata HDF5 file with its byte-literal text, and the genres."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from msd_sample.sizes import (
    BASE62,
    EMPTY_MBID_ARTIST,
    ENGLISH_WORDS,
    GENRE_COUNTS,
    GENRE_DUPLICATE_TRACKS,
    GENRE_H5_COVERAGE,
    H5_COLUMNS,
    HEX_UPPER,
    NO_FEATURES_SHARE,
    NO_SPOTIFY_SHARE,
    SPECIAL_ARTISTS,
    SPECIAL_RELEASES,
    SPECIAL_TITLES,
    SYLLABLES,
    UPPER,
    Sizes,
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
