"""msd_tasks: the Million Song Dataset side files as recommender inputs, built by Luigi.

`luigi --module msd_tasks BuildAll` finds the tasks here.
"""

from msd_tasks.build import BuildAll, Publish
from msd_tasks.tasks import (
    CleanSongs,
    ImportTriplets,
    IndexMappings,
    JoinPlays,
    PerUserMusic,
    PlayMatrices,
    SongTable,
    UserTable,
)

__all__ = [
    "BuildAll",
    "CleanSongs",
    "ImportTriplets",
    "IndexMappings",
    "JoinPlays",
    "PerUserMusic",
    "PlayMatrices",
    "Publish",
    "SongTable",
    "UserTable",
]
