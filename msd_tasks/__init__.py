"""msd_tasks: the Million Song Dataset side files as recommender inputs, built by Luigi.

`luigi --module msd_tasks BuildAll` finds the tasks here.
"""

import gc

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

# Luigi runs each task in a forked child of the scheduling process. Frozen, the objects of the
# modules imported so far are left alone by the children's garbage collector, which would
# otherwise walk them all and so copy every page they sit on ("gc.freeze" in Python's docs).
gc.freeze()
