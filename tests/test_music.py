"""MUSIC arithmetic: the notebook's np.average per user, vectorised; NaN songs left out; zscore."""

from __future__ import annotations

import numpy as np
import pytest

from msd_tasks.stages.music import FEATURE_TO_MUSIC, FEATURES, song_vectors, weighted_means
from tests import notebook_port


def test_matrix_is_the_notebooks():
    notebook_matrix = np.array([notebook_port.feature_MUSIC_dict[name] for name in FEATURES])
    np.testing.assert_array_equal(FEATURE_TO_MUSIC, notebook_matrix)
    assert tuple(notebook_port.feature_MUSIC_dict) == FEATURES


def test_user_means_equal_notebook_average():
    rng = np.random.default_rng(3)
    n_plays, n_songs, n_users = 400, 30, 12
    features = rng.uniform(0, 1, (n_songs, 6))
    features[:, 4] = rng.uniform(-30, 0, n_songs)  # loudness in dB
    songs = rng.integers(0, n_songs, n_plays)
    users = rng.integers(0, n_users, n_plays)
    counts = rng.integers(1, 50, n_plays)
    got = weighted_means(users, counts, songs, song_vectors(features), n_users)
    for user in range(n_users):
        mine = users == user
        expected = np.average(
            features[songs[mine]] @ FEATURE_TO_MUSIC, weights=counts[mine], axis=0
        )
        np.testing.assert_allclose(got[user], expected, rtol=0, atol=1e-12)


def test_hand_computed_single_song():
    features = np.array([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0]], dtype=float)
    vectors = song_vectors(features)
    # user 0 plays danceability-only song 3 times and loudness-only song once
    got = weighted_means(np.array([0, 0]), np.array([3, 1]), np.array([0, 1]), vectors, 1)
    expected = (
        3 * np.array([-0.37, 0.05, -0.35, 0.08, 0.43])
        + np.array([-0.58, -0.19, -0.44, 0.79, -0.21])
    ) / 4
    np.testing.assert_allclose(got[0], expected, atol=1e-15)


def test_songs_without_features_are_left_out():
    features = np.array([[0.5] * 6, [np.nan] * 6, [0.1, np.nan, 0.1, 0.1, 0.1, 0.1]])
    vectors = song_vectors(features)
    assert np.isnan(vectors[1]).all() and np.isnan(vectors[2]).all()
    users = np.array([0, 0, 1, 1])
    got = weighted_means(users, np.array([2, 9, 4, 4]), np.array([0, 1, 1, 2]), vectors, 2)
    np.testing.assert_allclose(got[0], vectors[0])  # the NaN song weighs nothing
    assert np.isnan(got[1]).all()  # nothing left


def test_zscore_standardises_each_feature_before_mapping():
    rng = np.random.default_rng(5)
    features = rng.normal(size=(50, 6)) * [1, 2, 3, 4, 40, 0.1] + [0, 0, 0, 0, -10, 0.5]
    features[3] = np.nan
    z = (features - np.nanmean(features, axis=0)) / np.nanstd(features, axis=0)
    np.testing.assert_allclose(song_vectors(features, "zscore"), z @ FEATURE_TO_MUSIC)
    np.testing.assert_allclose(np.nanmean(song_vectors(features, "zscore"), axis=0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="music scaling"):
        song_vectors(features, "minmax")


def test_zscore_of_a_constant_feature_centres_it_instead_of_dividing_by_zero():
    features = np.column_stack([np.linspace(0, 1, 5)] * 5 + [np.full(5, 0.3)])
    vectors = song_vectors(features, "zscore")
    assert np.isfinite(vectors).all()
    z = (features[:, :5] - features[:, :5].mean(axis=0)) / features[:, :5].std(axis=0)
    np.testing.assert_allclose(vectors, z @ FEATURE_TO_MUSIC[:5])
