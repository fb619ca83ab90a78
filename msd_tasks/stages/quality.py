"""Quality gates: a build whose numbers the data cannot explain stops before anything is published.

The stage that can see a problem checks for it: JoinPlays for the join, CleanSongs for the
genres. An error fails that task (exit 30), so nothing downstream runs and Publish never
replaces the published set; a warning goes into the task's stats, then the log, the manifest
and the report. Thresholds and policies are the `[quality]` settings (msd_tasks/config.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msd_tasks.stages.triplets import Triplets

SAMPLE_IDS = 5  # ids quoted in a message


class QualityError(RuntimeError):
    """Numbers that the data cannot explain: the stage, the counts and a few example ids."""

    def __init__(self, stage: str, problems: list[str]) -> None:
        super().__init__(f"{stage}: quality gate failed: " + " ".join(problems))
        self.stage, self.problems = stage, problems


@dataclass(frozen=True)
class JoinFacts:
    """What JoinPlays knows about its inputs and the join, for the gates."""

    train_lines: int  # lines of train_triplets.txt, skipped malformed ones included
    train_plays_joined: int  # train plays whose song is in the catalogue
    users: int
    songs: int
    unmatched_song_ids: list[str]  # a few train song ids that match no catalogue song
    catalog_song_ids: list[str]  # a few catalogue song ids, to compare with
    test_users_in_train: int  # users of a test file who also have train lines
    test_pairs_in_both: int  # (user, song) pairs in both the visible and the hidden test file
    test_files_equal_to_train: tuple[str, ...] = ()  # test files that hold the train lines


def join_problems(
    facts: JoinFacts, min_train_share: float, test_users_in_train: str
) -> tuple[list[str], list[str]]:
    """(errors, warnings) of a join; `test_users_in_train` is "warn" or "error"."""
    errors, warnings = [], []
    share = facts.train_plays_joined / facts.train_lines if facts.train_lines else 0.0
    unmatched = (
        f"Train song ids that match no catalogue song: {_quote(facts.unmatched_song_ids)}; "
        f"catalogue song ids look like {_quote(facts.catalog_song_ids)}."
    )
    if facts.users == 0 or facts.songs == 0:
        errors.append(
            f"The join kept {facts.users:,} users and {facts.songs:,} songs "
            f"({facts.train_plays_joined:,} of {facts.train_lines:,} train plays). {unmatched}"
        )
    elif share < min_train_share:
        errors.append(
            f"The join kept {facts.train_plays_joined:,} of {facts.train_lines:,} train plays "
            f"(a share of {share:.3f}), below the minimum {min_train_share} "
            f"([quality] min_train_join_share; the real files keep about a third). {unmatched}"
        )
    if facts.test_users_in_train:
        message = (
            f"{facts.test_users_in_train:,} users of the test files also have train lines "
            "(the MSD Challenge split has none); is_test is False for them"
        )
        (errors if test_users_in_train == "error" else warnings).append(
            message + ("." if test_users_in_train == "error" else "")
        )
    for kind in facts.test_files_equal_to_train:
        warnings.append(f"the {kind} test file holds exactly the lines of the train file")
    if facts.test_pairs_in_both:
        warnings.append(
            f"{facts.test_pairs_in_both:,} (user, song) pairs are in both the visible and the "
            "hidden test file, which should split each user's songs"
        )
    return errors, warnings


def same_lines(a: Triplets, b: Triplets) -> bool:
    """Whether two triplet files hold the same lines in the same order."""
    return (
        len(a) == len(b)
        and a.user_ids.equals(b.user_ids)
        and a.song_ids.equals(b.song_ids)
        and np.array_equal(a.user_code, b.user_code)
        and np.array_equal(a.song_code, b.song_code)
        and np.array_equal(a.play_count, b.play_count)
    )


def genre_warnings(genre_lines: int, songs_with_genre: int, genre_file: str) -> list[str]:
    if genre_lines and not songs_with_genre:
        return [f"{genre_file} matches no track of the metadata file: every genre is missing"]
    return []


def _quote(ids: list[str]) -> str:
    return ", ".join(repr(value) for value in ids[:SAMPLE_IDS]) or "none"
