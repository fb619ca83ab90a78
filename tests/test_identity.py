"""One identity per task: the parameters a task shows are those that change its output, and a
changed parameter or raw file reaches exactly the checkpoints downstream of it."""

from __future__ import annotations

import pytest

from msd_tasks import BuildAll, CleanSongs, ImportTriplets, JoinPlays, PerUserMusic, UserTable
from msd_tasks.formats.raw import fingerprints
from msd_tasks.graph.base import graph_tasks
from tests.conftest import copy_raw

JOIN = {"on_bad_lines": "error", "drop_mismatches": False, "n_shards": 3}
SHOWN = {  # what the scheduler (and its UI) shows of each task, written out by hand
    "CleanSongs": {},
    "ImportTriplets": {"kind": "train", "on_bad_lines": "error"},
    "JoinPlays": JOIN,
    "RawDigests": {"on_bad_lines": "error", "drop_mismatches": False},
    "IndexMappings": JOIN,
    "PlayMatrices": JOIN,
    "PlaysTable": JOIN,
    "SongTable": JOIN,
    "PerUserMusic": {**JOIN, "music_scaling": "raw", "shard": 0},
    "UserTable": {**JOIN, "music_scaling": "raw"},
    "BuildReport": {**JOIN, "music_scaling": "raw"},
}


@pytest.fixture
def graph(handmade, pipeline_in, tmp_path):
    """The tasks of BuildAll's graph for some parameters, by task id."""
    pipeline_in(copy_raw(handmade, tmp_path), n_shards=3)

    def tasks(**parameters):
        return {task.task_id: task for task in graph_tasks(BuildAll(**parameters).requires())}

    return tasks


def shown(task) -> dict[str, str]:
    return task.to_str_params(only_significant=True, only_public=True)


def test_each_task_shows_the_parameters_that_change_its_output_and_no_others(graph):
    tasks = graph().values()
    seen = {}
    for task in tasks:
        if (getattr(task, "kind", "train"), getattr(task, "shard", 0)) != ("train", 0):
            continue  # one import and one shard stand for the others
        seen[task.get_task_family()] = shown(task)
    expected = {
        family: {name: str(value) for name, value in params.items()}
        for family, params in SHOWN.items()
    }
    assert seen == expected
    # The raw fingerprints travel with every task, hidden from the scheduler.
    assert all("fingerprints" in task.to_str_params() for task in tasks)


@pytest.mark.parametrize(
    ("parameters", "changed"),
    [
        ({"music_scaling": "zscore"}, {"PerUserMusic", "UserTable", "BuildReport"}),
        (
            {"on_bad_lines": "skip"},
            set(SHOWN) - {"CleanSongs"},
        ),
        ({"drop_mismatches": True}, set(SHOWN) - {"CleanSongs", "ImportTriplets"}),
        ({"n_shards": 5}, set(SHOWN) - {"CleanSongs", "ImportTriplets", "RawDigests"}),
    ],
)
def test_a_parameter_changes_the_folders_of_the_tasks_downstream_of_it_only(
    graph, parameters, changed
):
    before = {task.get_task_family(): task.folder() for task in graph().values()}
    after = {}
    for task in graph(**parameters).values():
        after.setdefault(task.get_task_family(), set()).add(task.folder())
    different = {family for family, folders in after.items() if before[family] not in folders}
    assert different == changed


def test_a_raw_file_changes_the_digest_not_the_task_id(handmade, pipeline_in, tmp_path):
    pipeline = pipeline_in(copy_raw(handmade, tmp_path))
    planned = fingerprints(pipeline.raw_dir)
    edited = {**planned, "genres": "1:2"}
    songs, songs_edited = CleanSongs(fingerprints=planned), CleanSongs(fingerprints=edited)
    assert songs.task_id == songs_edited.task_id
    assert songs.folder() != songs_edited.folder()
    # ... and every folder downstream of it, not those beside it.
    train = {"kind": "train"}
    assert (
        ImportTriplets(fingerprints=planned, **train).folder()
        == ImportTriplets(fingerprints=edited, **train).folder()
    )
    assert JoinPlays(fingerprints=planned).folder() != JoinPlays(fingerprints=edited).folder()


def test_a_stage_started_alone_is_the_same_task_as_in_build_all(handmade, pipeline_in, tmp_path):
    pipeline_in(copy_raw(handmade, tmp_path), n_shards=4)
    in_build = {task.task_id: task for task in graph_tasks(BuildAll().requires())}
    for alone in (UserTable(), PerUserMusic(shard=3), JoinPlays()):
        assert alone.task_id in in_build
        assert alone.folder() == in_build[alone.task_id].folder()
