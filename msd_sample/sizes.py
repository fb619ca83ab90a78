"""The real files' sizes and the generator's shares, and the sizes of a sample at a scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

H5_COLUMNS = [
    *("artist_mbid", "artist_name", "artist_playmeid", "release", "release_7digitalid"),
    *("song_hotttnesss", "song_id", "title", "track_7digitalid", "track_id", "year"),
    *("spotify_id", "acousticness", "danceability", "duration_ms", "energy"),
    *("instrumentalness", "key", "liveness", "loudness", "mode", "speechiness", "tempo"),
    *("time_signature", "valence"),
]
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
