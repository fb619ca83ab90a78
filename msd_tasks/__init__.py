"""msd_tasks: the Million Song Dataset side files as recommender inputs, built by Luigi.

`luigi --module msd_tasks BuildAll` finds the tasks here.
"""

from msd_tasks.graph.benchmark import BenchmarkSplit, MultVaeSplit, PublishBenchmarkSplit
from msd_tasks.graph.build import BuildAll, BuildReport, Publish
from msd_tasks.graph.inputs import CleanSongs, ImportTriplets, JoinPlays, RawDigests
from msd_tasks.graph.outputs import (
    IndexMappings,
    PerUserMusic,
    PlayMatrices,
    PlaysTable,
    SongTable,
    UserTable,
)

__all__ = [
    "BenchmarkSplit",
    "BuildAll",
    "BuildReport",
    "CleanSongs",
    "ImportTriplets",
    "IndexMappings",
    "JoinPlays",
    "MultVaeSplit",
    "PerUserMusic",
    "PlayMatrices",
    "PlaysTable",
    "Publish",
    "PublishBenchmarkSplit",
    "RawDigests",
    "SongTable",
    "UserTable",
]
