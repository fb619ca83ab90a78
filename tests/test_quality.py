"""The quality gates' arithmetic and messages, on hand-made facts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from msd_tasks.stages.quality import JoinFacts, genre_warnings, join_problems, same_lines
from msd_tasks.stages.triplets import Triplets

GOOD = JoinFacts(
    train_lines=1000,
    train_plays_joined=350,
    users=40,
    songs=30,
    unmatched_song_ids=["SOX1", "SOX2"],
    catalog_song_ids=["SOA", "SOB"],
    test_users_in_train=0,
    test_pairs_in_both=0,
)


def facts(**changes) -> JoinFacts:
    return JoinFacts(**{**GOOD.__dict__, **changes})


def test_a_plausible_join_passes():
    assert join_problems(GOOD, 0.2, "warn") == ([], [])


def test_an_empty_join_names_counts_and_ids():
    errors, _ = join_problems(facts(users=0, songs=0, train_plays_joined=0), 0.2, "warn")
    assert errors == [
        "The join kept 0 users and 0 songs (0 of 1,000 train plays). Train song ids that match "
        "no catalogue song: 'SOX1', 'SOX2'; catalogue song ids look like 'SOA', 'SOB'."
    ]


def test_a_share_below_the_minimum_fails_and_one_at_it_passes():
    errors, _ = join_problems(facts(train_plays_joined=199), 0.2, "warn")
    assert len(errors) == 1
    assert "kept 199 of 1,000 train plays (a share of 0.199), below the minimum 0.2" in errors[0]
    assert join_problems(facts(train_plays_joined=200), 0.2, "warn") == ([], [])


def test_test_users_in_train_follow_the_policy():
    found = facts(test_users_in_train=3)
    errors, warnings = join_problems(found, 0.2, "warn")
    assert errors == [] and len(warnings) == 1 and warnings[0].startswith("3 users of the test")
    errors, warnings = join_problems(found, 0.2, "error")
    assert len(errors) == 1 and warnings == []


def test_repeated_and_copied_test_files_warn():
    _, warnings = join_problems(
        facts(test_pairs_in_both=5, test_files_equal_to_train=("visible",)), 0.2, "warn"
    )
    assert warnings[0] == "the visible test file holds exactly the lines of the train file"
    assert warnings[1].startswith("5 (user, song) pairs are in both the visible and the hidden")


def test_same_lines_compares_content_not_identity():
    def make(counts):
        return Triplets(
            user_code=np.array([0, 1], np.int32),
            song_code=np.array([1, 0], np.int32),
            play_count=np.array(counts, np.int32),
            user_ids=pa.array(["u1", "u2"]),
            song_ids=pa.array(["s1", "s2"]),
        )

    assert same_lines(make([1, 2]), make([1, 2]))
    assert not same_lines(make([1, 2]), make([1, 3]))


def test_a_genre_file_matching_nothing_warns():
    assert genre_warnings(10, 0, "g.cls") == [
        "g.cls matches no track of the metadata file: every genre is missing"
    ]
    assert genre_warnings(10, 1, "g.cls") == []
    assert genre_warnings(0, 0, "g.cls") == []
