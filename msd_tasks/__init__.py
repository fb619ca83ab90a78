"""msd_tasks: the Million Song Dataset side files as recommender inputs, built by Luigi.

`luigi --module msd_tasks BuildAll` finds the tasks here.
"""

import gc

# Importing pandas, pyarrow and the tasks creates some 75,000 objects that all live on; the
# garbage collector, running meanwhile, would only walk them again and again (0.04 s of 0.39 s).
_collecting = gc.isenabled()
gc.disable()
try:
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
finally:
    if _collecting:
        gc.enable()

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
