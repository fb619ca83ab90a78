"""msd_tasks: the Million Song Dataset side files as recommender inputs, built by Luigi.

`luigi --module msd_tasks BuildAll` finds the tasks here.
"""

from msd_tasks.tasks import (
    BuildAll,
    CleanSongs,
    ImportTriplets,
    IndexMappings,
    JoinPlays,
    PerUserMusic,
    PlayMatrices,
    Publish,
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
