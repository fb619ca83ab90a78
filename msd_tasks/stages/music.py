"""The five MUSIC dimensions from Spotify audio features, as in Rentfrow et al. (2012).

A song's MUSIC vector is its six features times a fixed 6x5 matrix; a user's is the
play-count-weighted mean of the vectors of the songs they played.
"""

from __future__ import annotations

import numpy as np

FEATURES = ("danceability", "energy", "instrumentalness", "liveness", "loudness", "valence")
DIMENSIONS = ("mellow", "unpretentious", "sophisticated", "intense", "contemporary")

# Rows follow FEATURES, columns DIMENSIONS; values from the notebook (Rentfrow et al. 2012).
FEATURE_TO_MUSIC = np.array(
    [
        [-0.37, 0.05, -0.35, 0.08, 0.43],
        [-0.64, -0.46, -0.13, 0.66, -0.03],
        [0.20, -0.47, 0.28, 0.09, -0.01],
        [-0.69, -0.12, -0.07, 0.43, 0.02],
        [-0.58, -0.19, -0.44, 0.79, -0.21],
        [-0.04, 0.18, 0.24, -0.34, 0.18],
    ]
)


def song_vectors(features: np.ndarray, scaling: str = "raw") -> np.ndarray:
    """Songs x 5 MUSIC vectors from songs x 6 features; a song missing any feature gets NaN.

    A feature that is not finite (NaN, inf, -inf) counts as missing.

    `zscore` standardises each feature over the songs given (NaN ignored) before the mapping,
    so that loudness in dB does not outweigh features that live in [0, 1].
    """
    features = np.array(features, dtype=np.float64)  # a copy: missing values are set below
    features[~np.isfinite(features)] = np.nan
    if scaling == "zscore":
        spread = np.nanstd(features, axis=0)
        spread[~(spread > 0)] = 1.0  # a constant feature centres to 0 instead of dividing by 0
        features = (features - np.nanmean(features, axis=0)) / spread
    elif scaling != "raw":
        raise ValueError(f"music scaling must be 'raw' or 'zscore', not {scaling!r}")
    # numpy's own loop for this 6x5 product: BLAS would wake its thread pool, whose threads then
    # spin for a while on the core the other Luigi worker is using.
    return np.einsum("sf,fm->sm", features, FEATURE_TO_MUSIC)


def weighted_means(
    groups: np.ndarray,
    weights: np.ndarray,
    items: np.ndarray,
    item_vectors: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """Per group, the weight-weighted mean of its rows' item vectors, leaving out the items whose
    vector holds a NaN.

    groups, weights, items: per row (a group code 0..n_groups-1, a weight, an item index);
    item_vectors: items x k. A group with no row left is all NaN.
    """
    # A left-out item weighs 0 and counts as a zero vector: adding 0.0 leaves a float sum exactly
    # as it was, so this equals dropping its rows, without copying every row.
    usable = ~np.isnan(item_vectors).any(axis=1)
    weights = np.where(usable[items], weights, 0).astype(np.float64)
    vectors = np.where(usable[:, None], item_vectors, 0.0)
    total_weight = np.bincount(groups, weights=weights, minlength=n_groups)
    sums = np.column_stack(
        [
            np.bincount(groups, weights=weights * vectors[:, k][items], minlength=n_groups)
            for k in range(vectors.shape[1])
        ]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / total_weight[:, None]
