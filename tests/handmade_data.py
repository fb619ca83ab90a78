"""Tiny raw Million Song Dataset inputs written by hand, full of edge cases.

`write_handmade(raw_dir)` lays out the five raw inputs exactly as the real ones are formatted; the
constants at the bottom are the facts a test may assert from first principles.
"""

from __future__ import annotations

import ast
import math
import warnings
from pathlib import Path

import pandas as pd

# --- identifiers -----------------------------------------------------------------------------
# Song ids are chosen so that their sorted order (which fixes the notebook's category codes, i.e.
# the sparse indices) differs from their order of first appearance in the triplet files.
S_GOOD = "SOZG000000000001AA"  # first song of the h5 and of train_triplets, sorts last
S_BEYONCE = "SOBY000000000002AA"  # UTF-8 artist name
S_QUOTES = "SOQT000000000003AA"  # title with both quote kinds; genre "Stage " (trailing space)
S_BACKSLASH = "SOBS000000000004AA"  # title with a backslash; only song of U_SINGLE
S_CJK = "SOCJ000000000005AA"  # empty mbid, CJK artist, emoji title; no genre line
S_PLAIN = "SOPL000000000006AA"  # artist_name and release already plain text
S_NANFEAT = "SONF000000000007AA"  # every audio feature NaN, spotify_id None
S_HALFNAN = "SOHN000000000008AA"  # only `liveness` (a MUSIC feature) NaN
S_TEMPONAN = "SOTN000000000009AA"  # NaN only in tempo/acousticness (not MUSIC features)
S_DUP = "SODP000000000010AA"  # on two h5 rows (different track, title, features): first wins
S_HIDDEN_ONLY_SONG = "SOHO000000000011AA"  # played only (hidden) by a hidden-only user
S_HIDDEN_PLAY = "SOHP000000000012AA"  # played only in a hidden play of a kept test user
S_UNPLAYED = "SOUP000000000013AA"  # in the catalog, never played
S_TWO_GENRES = "SOTG000000000014AA"  # its track has two genre lines: first wins
S_BIG = "SOBG000000000016AA"  # played 5000 times by U_B
S_AA = "SOAA000000000017AA"  # plain-text title; sorts first, first played late

T_DUP_FIRST = "TRDP000000000010AA"  # S_DUP's first (winning) track
T_DUP_SECOND = "TRDP000000000015AA"  # S_DUP's second track: own genre line, ignored
T_TWO_GENRES = "TRTG000000000014AA"
T_NOT_IN_CATALOG = "TRNOTINCATALOG0001"

# Songs the triplets mention but the h5 does not hold (the inner join drops their plays).
S_UNKNOWN_1 = "SONOTINCATALOG0002"
S_UNKNOWN_2 = "SONOTINCATALOG0003"
S_UNKNOWN_3 = "SONOTINCATALOG0004"
S_UNKNOWN_4 = "SONOTINCATALOG0005"

# Users: 40 lowercase hex digits. Sorted order differs from first appearance (U_A comes first
# in train_triplets but sorts last; U_B sorts first).
U_A = "fd50c4007b68a3737fe052d5a4f78ce8aa117f3d"  # train; duplicated (U_A, S_BEYONCE) line
U_B = "0a6a3b9c3c5e0e9b4a1f6f4f2d8c7b6a5e4d3c2b"  # train; 5000 plays; a NaN-feature song
U_DROPPED = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"  # train plays only of unknown songs
U_BOTH = "b64cdd1a0bd907e5e00b39e345194768e330d652"  # train + visible test + hidden
U_SINGLE = "85c1f87fea955d09b4bec2e36aee110927aab42c"  # one song, seven plays
U_NAN_ONLY = "4e11f45d732f4861772b2906f81a7d384552ad12"  # only song has NaN features
U_TEST_C = "a58de017cbeda1763ea002fe027ed41b4ed18109"  # test user, visible + hidden
U_TEST_D = "9bb911319fbc04f01755814cb5edb21df3d1a336"  # test user, visible + hidden
U_TEST_G = "2e7f1a0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"  # test user, visible only
U_HIDDEN_E = "d7083f5e1d50c264277d624340edaaf3dc16095b"  # visible plays only of unknown songs
U_HIDDEN_F = "6e1a1a2c3e0c0e5f8a8f3cfbd3c6bb0e7c2a4f11"  # no visible line at all

H5_COLUMNS = [
    "artist_mbid",
    "artist_name",
    "artist_playmeid",
    "release",
    "release_7digitalid",
    "song_hotttnesss",
    "song_id",
    "title",
    "track_7digitalid",
    "track_id",
    "year",
    "spotify_id",
    "acousticness",
    "danceability",
    "duration_ms",
    "energy",
    "instrumentalness",
    "key",
    "liveness",
    "loudness",
    "mode",
    "speechiness",
    "tempo",
    "time_signature",
    "valence",
]
TEXT_COLUMNS = ["song_id", "track_id", "artist_mbid", "artist_name", "title", "release"]
INT_COLUMNS = ["artist_playmeid", "release_7digitalid", "track_7digitalid", "year"]
# The Spotify audio features, in h5 column order. They are float64 because a song without a
# Spotify match has NaN in all of them (key, mode, time_signature and duration_ms included).
AUDIO_COLUMNS = [
    "acousticness",
    "danceability",
    "duration_ms",
    "energy",
    "instrumentalness",
    "key",
    "liveness",
    "loudness",
    "mode",
    "speechiness",
    "tempo",
    "time_signature",
    "valence",
]
NAN = math.nan


def _song(audio: tuple[float, ...], **fields: object) -> dict[str, object]:
    """One h5 row: the named meta fields plus the 13 audio features in AUDIO_COLUMNS order."""
    assert len(audio) == len(AUDIO_COLUMNS), fields["song_id"]
    row = dict(fields, **dict(zip(AUDIO_COLUMNS, audio, strict=True)))
    assert set(row) == set(H5_COLUMNS), set(row) ^ set(H5_COLUMNS)
    return row


# The text columns hold the *text* of a Python bytes literal, str(value.encode('utf-8')), except
# where a comment says the value is already plain text. Raw strings keep the backslashes literal.
# audio = (acousticness, danceability, duration_ms, energy, instrumentalness, key, liveness,
#          loudness, mode, speechiness, tempo, time_signature, valence)
SONG_ROWS = [
    # The notebook's own first row. The title literal uses double quotes because of the apostrophe.
    _song(
        artist_mbid="b'29762c82-bb92-4acd-b1fb-09cc4da250d2'",
        artist_name="b'Joe Satriani'",
        artist_playmeid=8426,
        release="b'Super Colossal'",
        release_7digitalid=308005,
        song_hotttnesss=0.693272,
        song_id="b'SOZG000000000001AA'",
        title='b"It\'s So Good"',
        track_7digitalid=3473087,
        track_id="b'TRZG000000000001AA'",
        year=2006,
        spotify_id="0ZbHNo9ZqWSxD6uPHBIeUi",
        audio=(
            0.00131,
            0.456,
            238160.0,
            0.91,
            0.764,
            7.0,
            0.403,
            -4.847,
            1.0,
            0.109,
            175.816,
            4.0,
            0.282,
        ),
    ),
    # UTF-8 bytes escaped in the literal: "Beyonc\xc3\xa9" is 'Beyoncé' once decoded.
    _song(
        artist_mbid="b'859d0860-d480-4efd-970c-c05d5f1776b8'",
        artist_name=r"b'Beyonc\xc3\xa9'",
        artist_playmeid=1205,
        release="b'I Am... Sasha Fierce'",
        release_7digitalid=285477,
        song_hotttnesss=0.872514,
        song_id="b'SOBY000000000002AA'",
        title="b'Halo'",
        track_7digitalid=3188213,
        track_id="b'TRBY000000000002AA'",
        year=2008,
        spotify_id="4JehYebiI9JE8sR8MisGVb",
        audio=(
            0.272,
            0.508,
            261640.0,
            0.72,
            0.0,
            11.0,
            0.0563,
            -5.908,
            1.0,
            0.0628,
            79.983,
            4.0,
            0.472,
        ),
    ),
    # Both quote kinds: repr() falls back to single quotes and escapes the apostrophes, so the
    # notebook's slice keeps the backslashes. The release literal uses double quotes.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-00000000000a'",
        artist_name="b'The Quoters'",
        artist_playmeid=-1,
        release="b\"Rock 'n' Roll\"",
        release_7digitalid=11,
        song_hotttnesss=0.25,
        song_id="b'SOQT000000000003AA'",
        title=r"""b'Say \'hi\' "now"'""",
        track_7digitalid=111,
        track_id="b'TRQT000000000003AA'",
        year=1999,
        spotify_id="3qT4bUD1MaWpGrTwcvguhb",
        audio=(0.5, 0.61, 180000.0, 0.42, 0.001, 2.0, 0.11, -9.5, 0.0, 0.05, 101.1, 3.0, 0.66),
    ),
    # A backslash in the title: the literal doubles it, a proper decoder halves it again.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-00000000000b'",
        artist_name="b'Slash Fiction'",
        artist_playmeid=4242,
        release="b'Escapes'",
        release_7digitalid=12,
        song_hotttnesss=0.4,
        song_id="b'SOBS000000000004AA'",
        title=r"b'Back\\slash'",
        track_7digitalid=112,
        track_id="b'TRBS000000000004AA'",
        year=2010,
        spotify_id="1bSlashSpotifyId0000AA",
        audio=(0.12, 0.7, 200500.0, 0.55, 0.3, 5.0, 0.2, -7.25, 1.0, 0.04, 120.0, 4.0, 0.35),
    ),
    # Empty mbid literal b'' (the notebook's slice gives ''), CJK artist, emoji in the title.
    # Its track has no genre line: genre NaN.
    _song(
        artist_mbid="b''",
        artist_name=r"b'\xe5\x9d\x82\xe6\x9c\xac\xe9\xbe\x8d\xe4\xb8\x80'",
        artist_playmeid=-1,
        release="b'Ongaku'",
        release_7digitalid=13,
        song_hotttnesss=0.31,
        song_id="b'SOCJ000000000005AA'",
        title=r"b'\xf0\x9f\x8e\xb9 Merry Christmas Mr. Lawrence'",
        track_7digitalid=113,
        track_id="b'TRCJ000000000005AA'",
        year=1983,
        spotify_id="2cjkSpotifyId000000000",
        audio=(0.98, 0.3, 276000.0, 0.1, 0.92, 0.0, 0.09, -20.1, 1.0, 0.035, 70.5, 4.0, 0.12),
    ),
    # artist_name and release are already plain text (not bytes literals): a proper decoder
    # passes them through; the notebook's blind slice turns the name into 'ain Artis'.
    # NaN song_hotttnesss, spotify_id None (yet audio features present).
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-00000000000c'",
        artist_name="Plain Artist",
        artist_playmeid=77,
        release="Plain Release",
        release_7digitalid=14,
        song_hotttnesss=NAN,
        song_id="b'SOPL000000000006AA'",
        title="b'Normal Title'",
        track_7digitalid=114,
        track_id="b'TRPL000000000006AA'",
        year=0,
        spotify_id=None,
        audio=(0.2, 0.8, 190000.0, 0.6, 0.0, 9.0, 0.15, -6.0, 0.0, 0.08, 128.0, 4.0, 0.9),
    ),
    # No Spotify match: all 13 audio features NaN, spotify_id None.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-00000000000d'",
        artist_name="b'Nobody Knows'",
        artist_playmeid=-1,
        release="b'Unmatched'",
        release_7digitalid=15,
        song_hotttnesss=NAN,
        song_id="b'SONF000000000007AA'",
        title="b'No Features'",
        track_7digitalid=115,
        track_id="b'TRNF000000000007AA'",
        year=0,
        spotify_id=None,
        audio=(NAN,) * 13,
    ),
    # Only liveness (one of the six MUSIC features) is NaN.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-00000000000e'",
        artist_name="b'Half Known'",
        artist_playmeid=88,
        release="b'Partial'",
        release_7digitalid=16,
        song_hotttnesss=0.5,
        song_id="b'SOHN000000000008AA'",
        title="b'Half NaN'",
        track_7digitalid=116,
        track_id="b'TRHN000000000008AA'",
        year=2001,
        spotify_id="6halfNanSpotifyId00000",
        audio=(0.3, 0.65, 210000.0, 0.5, 0.01, 4.0, NAN, -8.0, 1.0, 0.06, 110.0, 4.0, 0.55),
    ),
    # NaN only in acousticness and tempo, which MUSIC does not use: its MUSIC stays finite.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-00000000000f'",
        artist_name="b'Tempo Less'",
        artist_playmeid=99,
        release="b'Rubato'",
        release_7digitalid=17,
        song_hotttnesss=0.6,
        song_id="b'SOTN000000000009AA'",
        title="b'Free Time'",
        track_7digitalid=117,
        track_id="b'TRTN000000000009AA'",
        year=2002,
        spotify_id="7tempoNanSpotifyId0000",
        audio=(NAN, 0.45, 230000.0, 0.35, 0.2, 6.0, 0.25, -11.0, 0.0, 0.07, NAN, 4.0, 0.4),
    ),
    # First row of a song that appears twice: this row (track, title, features, genre) wins.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-000000000010'",
        artist_name="b'Twice Told'",
        artist_playmeid=100,
        release="b'Original'",
        release_7digitalid=18,
        song_hotttnesss=0.7,
        song_id="b'SODP000000000010AA'",
        title="b'Original Take'",
        track_7digitalid=118,
        track_id="b'TRDP000000000010AA'",
        year=1995,
        spotify_id="8dupFirstSpotifyId0000",
        audio=(0.4, 0.55, 240000.0, 0.65, 0.05, 1.0, 0.3, -7.0, 1.0, 0.05, 95.0, 4.0, 0.6),
    ),
    # Only U_HIDDEN_E (a blacklisted, hidden-only user) plays it: no sparse index.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-000000000011'",
        artist_name="b'Ghost'",
        artist_playmeid=101,
        release="b'Hidden'",
        release_7digitalid=19,
        song_hotttnesss=0.1,
        song_id="b'SOHO000000000011AA'",
        title="b'Only Hidden Users'",
        track_7digitalid=119,
        track_id="b'TRHO000000000011AA'",
        year=2003,
        spotify_id="9hiddenOnlySpotifyId00",
        audio=(0.6, 0.35, 150000.0, 0.25, 0.5, 3.0, 0.12, -15.0, 0.0, 0.03, 85.0, 3.0, 0.2),
    ),
    # Only played in a hidden play of kept test user U_TEST_C: still gets a sparse index.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-000000000012'",
        artist_name="b'Secret'",
        artist_playmeid=102,
        release="b'Held Out'",
        release_7digitalid=20,
        song_hotttnesss=0.2,
        song_id="b'SOHP000000000012AA'",
        title="b'Hidden Play'",
        track_7digitalid=120,
        track_id="b'TRHP000000000012AA'",
        year=2004,
        spotify_id="AhiddenPlaySpotifyId00",
        audio=(0.7, 0.4, 160000.0, 0.3, 0.6, 8.0, 0.14, -14.0, 1.0, 0.031, 88.0, 4.0, 0.25),
    ),
    # Never played by anyone.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-000000000013'",
        artist_name="b'Silence'",
        artist_playmeid=103,
        release="b'Unheard'",
        release_7digitalid=21,
        song_hotttnesss=0.0,
        song_id="b'SOUP000000000013AA'",
        title="b'4 33'",
        track_7digitalid=121,
        track_id="b'TRUP000000000013AA'",
        year=1952,
        spotify_id="BunplayedSpotifyId0000",
        audio=(0.99, 0.1, 273000.0, 0.01, 0.99, 0.0, 0.1, -40.0, 1.0, 0.02, 60.0, 4.0, 0.01),
    ),
    # Its track has two genre lines (Electronic, then Pop_Rock): the left merge makes two rows,
    # drop_duplicates keeps Electronic.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-000000000014'",
        artist_name="b'Genre Fluid'",
        artist_playmeid=104,
        release="b'Both'",
        release_7digitalid=22,
        song_hotttnesss=0.45,
        song_id="b'SOTG000000000014AA'",
        title="b'Two Genres'",
        track_7digitalid=122,
        track_id="b'TRTG000000000014AA'",
        year=2012,
        spotify_id="CtwoGenresSpotifyId000",
        audio=(0.05, 0.75, 205000.0, 0.85, 0.7, 10.0, 0.35, -5.0, 0.0, 0.06, 126.0, 4.0, 0.7),
    ),
    # Second row of S_DUP: different track, title and features; dropped by drop_duplicates.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-000000000010'",
        artist_name="b'Twice Told'",
        artist_playmeid=100,
        release="b'Remasters'",
        release_7digitalid=23,
        song_hotttnesss=0.71,
        song_id="b'SODP000000000010AA'",
        title="b'Remastered Take'",
        track_7digitalid=123,
        track_id="b'TRDP000000000015AA'",
        year=2015,
        spotify_id="DdupSecondSpotifyId000",
        audio=(0.01, 0.95, 120000.0, 0.99, 0.9, 2.0, 0.9, -1.0, 0.0, 0.3, 180.0, 5.0, 0.99),
    ),
    # A song played 5000 times by one user (big weight in MUSIC).
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-000000000016'",
        artist_name="b'Repeat Offender'",
        artist_playmeid=-1,
        release="b'On Loop'",
        release_7digitalid=24,
        song_hotttnesss=0.9,
        song_id="b'SOBG000000000016AA'",
        title="b'Again'",
        track_7digitalid=124,
        track_id="b'TRBG000000000016AA'",
        year=2011,
        spotify_id="EbigCountSpotifyId0000",
        audio=(0.15, 0.85, 215000.0, 0.8, 0.02, 7.0, 0.08, -3.5, 1.0, 0.1, 122.0, 4.0, 0.8),
    ),
    # Title already plain text (the notebook's slice gives 'ready Plain Titl'); sorts first.
    _song(
        artist_mbid="b'1a2b3c4d-0000-4000-8000-000000000017'",
        artist_name="b'Aardvark'",
        artist_playmeid=105,
        release="b'Alphabet'",
        release_7digitalid=25,
        song_hotttnesss=0.33,
        song_id="b'SOAA000000000017AA'",
        title="Already Plain Title",
        track_7digitalid=125,
        track_id="b'TRAA000000000017AA'",
        year=1990,
        spotify_id="FaaSpotifyId0000000000",
        audio=(0.45, 0.5, 185000.0, 0.45, 0.15, 11.0, 0.18, -10.0, 0.0, 0.045, 99.0, 4.0, 0.5),
    ),
]

# msd-MAGD-genreAssignment.cls: "track_id<TAB>genre" lines, no header.
GENRE_LINES = [
    "TRZG000000000001AA\tPop_Rock",
    "TRBY000000000002AA\tRnB",
    "TRQT000000000003AA\tStage ",  # trailing space, as the real file has it
    "TRBS000000000004AA\tNew Age",  # genre with a space
    # (no line for TRCJ000000000005AA: genre NaN)
    "TRPL000000000006AA\tFolk",
    "TRNF000000000007AA\tJazz",
    "TRHN000000000008AA\tLatin",
    "TRTN000000000009AA\tBlues",
    "TRDP000000000010AA\tRap",  # S_DUP's first track: its genre wins
    "TRNOTINCATALOG0001\tClassical",  # track not in the h5: ignored by the left merge
    "TRHO000000000011AA\tReggae",
    "TRHP000000000012AA\tVocal",
    "TRUP000000000013AA\tComedy_Spoken",
    "TRTG000000000014AA\tElectronic",  # duplicated track id: this first line wins
    "TRTG000000000014AA\tPop_Rock",  # ... and this one is dropped
    "TRDP000000000015AA\tJazz",  # track of S_DUP's second (dropped) row
    "TRBG000000000016AA\tCountry",
    "TRAA000000000017AA\tInternational",
]

# train_triplets.txt: user, song, play count.
TRAIN_TRIPLETS = [
    (U_A, S_GOOD, 1),  # very first line: U_A and S_GOOD appear first but sort last
    (U_A, S_BEYONCE, 3),
    (U_A, S_UNKNOWN_1, 4),  # song not in the h5: dropped by the inner join
    (U_A, S_CJK, 2),
    (U_A, S_BEYONCE, 2),  # duplicated (user, song): matrix sums to 5, user_df counts 2 rows
    (U_B, S_QUOTES, 1),
    (U_B, S_BIG, 5000),  # big play count
    (U_B, S_NANFEAT, 2),  # NaN-feature song: notebook MUSIC NaN for U_B
    (U_DROPPED, S_UNKNOWN_2, 1),  # every play of U_DROPPED is of an unknown song
    (U_DROPPED, S_UNKNOWN_1, 7),
    (U_BOTH, S_GOOD, 2),  # U_BOTH's earliest row is a train row: is_test False
    (U_BOTH, S_PLAIN, 1),
    (U_SINGLE, S_BACKSLASH, 7),  # single song: MUSIC == that song's MUSIC vector
    (U_NAN_ONLY, S_NANFEAT, 3),  # only a NaN-feature song: MUSIC all NaN everywhere
    (U_B, S_AA, 1),  # S_AA sorts first but is first played here
    (U_A, S_DUP, 1),
]

# EvalDataYear1MSDWebsite/year1_test_triplets_visible.txt
VISIBLE_TRIPLETS = [
    (U_TEST_C, S_BEYONCE, 2),
    (U_TEST_C, S_HALFNAN, 1),  # liveness NaN: notebook MUSIC NaN for U_TEST_C
    (U_BOTH, S_GOOD, 1),  # same (user, song) as a train line: the train matrix sums 2 + 1
    (U_BOTH, S_HALFNAN, 1),
    (U_TEST_D, S_DUP, 4),  # the duplicated song: features of its first h5 row
    (U_TEST_D, S_TWO_GENRES, 1),
    (U_TEST_D, S_TEMPONAN, 2),  # NaN only outside the MUSIC features
    (U_HIDDEN_E, S_UNKNOWN_3, 2),  # U_HIDDEN_E's only visible play: unknown song, dropped
    (U_TEST_G, S_PLAIN, 1),  # U_TEST_G has no hidden plays at all
    (U_TEST_G, S_AA, 1),
]

# EvalDataYear1MSDWebsite/year1_test_triplets_hidden.txt
HIDDEN_TRIPLETS = [
    (U_TEST_C, S_HIDDEN_PLAY, 3),  # the only play of S_HIDDEN_PLAY: it still gets an index
    (U_TEST_C, S_BEYONCE, 1),  # also a visible play of U_TEST_C: one entry in each matrix
    (U_TEST_C, S_GOOD, 1),
    (U_TEST_D, S_UNKNOWN_4, 1),  # hidden play of a song not in the catalog: dropped
    (U_TEST_D, S_BACKSLASH, 2),
    (U_HIDDEN_E, S_HIDDEN_ONLY_SONG, 1),  # blacklisted user: S_HIDDEN_ONLY_SONG vanishes
    (U_HIDDEN_E, S_GOOD, 2),
    (U_HIDDEN_F, S_QUOTES, 1),  # U_HIDDEN_F has no visible line: blacklisted
    (U_HIDDEN_F, S_CJK, 1),
    (U_BOTH, S_TWO_GENRES, 1),  # hidden play of a train+test user
]


def _is_canonical_bytes_literal(text: str) -> bool:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return isinstance(value, bytes) and repr(value) == text


def _check_rows() -> None:
    """Guard against typos: literals must be exactly repr(bytes); ids must be well formed."""
    plain_text = {
        ("artist_name", "Plain Artist"),
        ("release", "Plain Release"),
        ("title", "Already Plain Title"),
    }
    for row in SONG_ROWS:
        for column in TEXT_COLUMNS:
            value = row[column]
            assert isinstance(value, str), (column, value)
            if (column, value) not in plain_text:
                assert _is_canonical_bytes_literal(value), (column, value)
    for user, song, count in TRAIN_TRIPLETS + VISIBLE_TRIPLETS + HIDDEN_TRIPLETS:
        assert len(user) == 40 and set(user) <= set("0123456789abcdef"), user
        assert len(song) == 18 and song.startswith("SO"), song
        assert isinstance(count, int) and count > 0
    for line in GENRE_LINES:
        track, genre = line.split("\t")
        assert len(track) == 18 and track.startswith("TR") and genre, line


def _write_triplets(path: Path, triplets: list[tuple[str, str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{u}\t{s}\t{c}\n" for u, s, c in triplets), encoding="utf-8")


def write_handmade(raw_dir: Path) -> None:
    """Write the five raw inputs under raw_dir in the real files' formats."""
    _check_rows()
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)

    columns = {}
    for column in H5_COLUMNS:
        values = [row[column] for row in SONG_ROWS]
        if column in INT_COLUMNS:
            columns[column] = pd.Series(values, dtype="int64")
        elif column in TEXT_COLUMNS or column == "spotify_id":
            # object dtype of plain str (and None), as the real file holds; not pandas 3's str
            columns[column] = pd.Series(values, dtype=object)
        else:
            columns[column] = pd.Series(values, dtype="float64")
    msd = pd.DataFrame(columns)[H5_COLUMNS]
    with warnings.catch_warnings():
        # PyTables pickles object columns; that is the real file's layout too.
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        msd.to_hdf(raw_dir / "full_msd_with_audio_features.h5", key="df", mode="w")

    (raw_dir / "msd-MAGD-genreAssignment.cls").write_text(
        "".join(line + "\n" for line in GENRE_LINES), encoding="utf-8"
    )
    _write_triplets(raw_dir / "train_triplets.txt", TRAIN_TRIPLETS)
    eval_dir = raw_dir / "EvalDataYear1MSDWebsite"
    _write_triplets(eval_dir / "year1_test_triplets_visible.txt", VISIBLE_TRIPLETS)
    _write_triplets(eval_dir / "year1_test_triplets_hidden.txt", HIDDEN_TRIPLETS)


# --- facts a test can assert from first principles ---------------------------------------------

# Hidden-plays-only users: blacklisted by the notebook, in no output.
HIDDEN_ONLY_USERS = {U_HIDDEN_E, U_HIDDEN_F}
# Users whose every play is of a song missing from the h5.
ALL_PLAYS_DROPPED_USERS = {U_DROPPED}
EXPECTED_USERS = {U_A, U_B, U_BOTH, U_SINGLE, U_NAN_ONLY, U_TEST_C, U_TEST_D, U_TEST_G}
NUM_USERS = 8
# Sparse user index = rank of the id among EXPECTED_USERS (category codes of sorted values).
EXPECTED_USER_INDEX = {user: i for i, user in enumerate(sorted(EXPECTED_USERS))}

EXPECTED_SONGS = {
    S_GOOD,
    S_BEYONCE,
    S_QUOTES,
    S_BACKSLASH,
    S_CJK,
    S_PLAIN,
    S_NANFEAT,
    S_HALFNAN,
    S_TEMPONAN,
    S_DUP,
    S_HIDDEN_PLAY,
    S_TWO_GENRES,
    S_BIG,
    S_AA,
}
NUM_SONGS = 14
EXPECTED_SONG_INDEX = {song: i for i, song in enumerate(sorted(EXPECTED_SONGS))}
# Songs that must not get a sparse index.
VANISHED_SONGS = {
    S_HIDDEN_ONLY_SONG,  # only played by a blacklisted user
    S_UNPLAYED,
    S_UNKNOWN_1,
    S_UNKNOWN_2,
    S_UNKNOWN_3,
    S_UNKNOWN_4,
}

# train_sparse.npz (rows = songs, columns = users): summed visible (train + visible test) plays.
EXPECTED_TRAIN_PLAYS = {
    (U_A, S_GOOD): 1,
    (U_A, S_BEYONCE): 5,  # 3 + 2, the duplicated line
    (U_A, S_CJK): 2,
    (U_A, S_DUP): 1,
    (U_B, S_QUOTES): 1,
    (U_B, S_BIG): 5000,
    (U_B, S_NANFEAT): 2,
    (U_B, S_AA): 1,
    (U_BOTH, S_GOOD): 3,  # 2 (train) + 1 (visible test)
    (U_BOTH, S_PLAIN): 1,
    (U_BOTH, S_HALFNAN): 1,
    (U_SINGLE, S_BACKSLASH): 7,
    (U_NAN_ONLY, S_NANFEAT): 3,
    (U_TEST_C, S_BEYONCE): 2,
    (U_TEST_C, S_HALFNAN): 1,
    (U_TEST_D, S_DUP): 4,
    (U_TEST_D, S_TWO_GENRES): 1,
    (U_TEST_D, S_TEMPONAN): 2,
    (U_TEST_G, S_PLAIN): 1,
    (U_TEST_G, S_AA): 1,
}
# test_sparse.npz: hidden plays of kept users.
EXPECTED_TEST_PLAYS = {
    (U_TEST_C, S_HIDDEN_PLAY): 3,
    (U_TEST_C, S_BEYONCE): 1,
    (U_TEST_C, S_GOOD): 1,
    (U_TEST_D, S_BACKSLASH): 2,
    (U_BOTH, S_TWO_GENRES): 1,
}

# user_df: number of visible rows after the join (duplicated lines count twice).
EXPECTED_NUM_SONGS = {
    U_A: 5,
    U_B: 4,
    U_BOTH: 4,
    U_SINGLE: 1,
    U_NAN_ONLY: 1,
    U_TEST_C: 2,
    U_TEST_D: 3,
    U_TEST_G: 2,
}
EXPECTED_IS_TEST = {
    U_A: False,
    U_B: False,
    # U_BOTH is in train and in the visible test set. The notebook takes is_test from the user's
    # first row in its song-grouped join order (pandas 1 merge), not from the user's first line:
    # here that row is a train play of S_GOOD, the first song of all, so both readings give False.
    # A user whose test song first appeared (globally) before all of their train songs gets True.
    U_BOTH: False,
    U_SINGLE: False,
    U_NAN_ONLY: False,
    U_TEST_C: True,
    U_TEST_D: True,
    U_TEST_G: True,
}
# The notebook's np.average gives NaN MUSIC to anyone who played a song with a NaN MUSIC feature.
NOTEBOOK_NAN_MUSIC_USERS = {U_B, U_BOTH, U_NAN_ONLY, U_TEST_C}
# ... and the pipeline, which skips such songs, still has all-NaN MUSIC for these.
ALL_NAN_MUSIC_USERS = {U_NAN_ONLY}
# U_SINGLE's MUSIC is the MUSIC vector of this single song.
SINGLE_SONG_USER = (U_SINGLE, S_BACKSLASH)

# song_df text after a proper decode (first h5 row of each song).
EXPECTED_DECODED = {
    S_GOOD: {"title": "It's So Good", "release": "Super Colossal", "artist_name": "Joe Satriani"},
    S_BEYONCE: {"artist_name": "Beyoncé", "release": "I Am... Sasha Fierce"},
    S_QUOTES: {"title": "Say 'hi' \"now\"", "release": "Rock 'n' Roll"},
    S_BACKSLASH: {"title": "Back\\slash"},
    S_CJK: {
        "artist_mbid": "",
        "artist_name": "坂本龍一",
        "title": "🎹 Merry Christmas Mr. Lawrence",
    },
    S_PLAIN: {"artist_name": "Plain Artist", "release": "Plain Release"},
    S_AA: {"title": "Already Plain Title"},
    S_DUP: {"title": "Original Take", "track_id": T_DUP_FIRST, "release": "Original"},
}
# The same cells as the notebook leaves them (blind [2:-1] slice; release untouched).
EXPECTED_NOTEBOOK_TEXT = {
    S_GOOD: {"title": "It's So Good", "release": "b'Super Colossal'"},
    S_BEYONCE: {"artist_name": "Beyonc\\xc3\\xa9"},
    S_QUOTES: {"title": "Say \\'hi\\' \"now\"", "release": "b\"Rock 'n' Roll\""},
    S_BACKSLASH: {"title": "Back\\\\slash"},
    S_CJK: {"artist_mbid": ""},
    S_PLAIN: {"artist_name": "ain Artis", "release": "Plain Release"},
    S_AA: {"title": "ready Plain Titl"},
}
# Genre as the notebook stores it (None = NaN); the pipeline strips the whitespace.
EXPECTED_NOTEBOOK_GENRE = {
    S_GOOD: "Pop_Rock",
    S_QUOTES: "Stage ",
    S_BACKSLASH: "New Age",
    S_CJK: None,
    S_DUP: "Rap",
    S_TWO_GENRES: "Electronic",
}

# Row order of the notebook's outputs. pandas 1's inner merge grouped the joined plays by song, in
# order of each song's first appearance in train + visible + hidden (file order within a song).
# After the blacklist filter the 27 joined rows are, by position:
#   0-3 S_GOOD (U_A, U_BOTH, U_BOTH visible, U_TEST_C hidden)   4-7 S_BEYONCE (U_A, U_A, U_TEST_C,
#   U_TEST_C hidden)   8 S_CJK (U_A)   9 S_QUOTES (U_B)   10 S_BIG (U_B)   11-12 S_NANFEAT (U_B,
#   U_NAN_ONLY)   13-14 S_PLAIN (U_BOTH, U_TEST_G)   15-16 S_BACKSLASH (U_SINGLE, U_TEST_D hidden)
#   17-18 S_AA (U_B, U_TEST_G)   19-20 S_DUP (U_A, U_TEST_D)   21-22 S_HALFNAN (U_TEST_C, U_BOTH)
#   23-24 S_TWO_GENRES (U_TEST_D, U_BOTH hidden)   25 S_TEMPONAN (U_TEST_D)   26 S_HIDDEN_PLAY
# The mappings keep each id's first row: (row label, id) in file order.
NOTEBOOK_USER_MAPPING_ROWS = [
    (0, U_A),
    (1, U_BOTH),
    (3, U_TEST_C),
    (9, U_B),
    (12, U_NAN_ONLY),
    (14, U_TEST_G),
    (15, U_SINGLE),
    (16, U_TEST_D),
]
NOTEBOOK_SONG_MAPPING_ROWS = [
    (0, S_GOOD),
    (4, S_BEYONCE),
    (8, S_CJK),
    (9, S_QUOTES),
    (10, S_BIG),
    (11, S_NANFEAT),
    (13, S_PLAIN),
    (15, S_BACKSLASH),
    (17, S_AA),
    (19, S_DUP),
    (21, S_HALFNAN),
    (23, S_TWO_GENRES),
    (25, S_TEMPONAN),
    (26, S_HIDDEN_PLAY),
]
# Each user's visible songs in the notebook's song_sparse_indices order (same grouping).
NOTEBOOK_SONG_ORDER = {
    U_A: [S_GOOD, S_BEYONCE, S_BEYONCE, S_CJK, S_DUP],  # file order would be GOOD, BEY, CJK, BEY
    U_B: [S_QUOTES, S_BIG, S_NANFEAT, S_AA],
    U_BOTH: [S_GOOD, S_GOOD, S_PLAIN, S_HALFNAN],
    U_SINGLE: [S_BACKSLASH],
    U_NAN_ONLY: [S_NANFEAT],
    U_TEST_C: [S_BEYONCE, S_HALFNAN],
    U_TEST_D: [S_DUP, S_TWO_GENRES, S_TEMPONAN],
    U_TEST_G: [S_PLAIN, S_AA],
}
