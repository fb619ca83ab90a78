"""msd_tasks: the Million Song Dataset side files as recommender inputs, built by Luigi.

`luigi --module msd_tasks BuildAll` finds the tasks here.
"""

from msd_tasks.graph.gc_pause import gc_paused

# Importing pandas, pyarrow and the tasks creates some 75,000 objects that all live on; the
# garbage collector, running meanwhile, would only walk them again and again (0.04 s of 0.39 s).
with gc_paused():
    from msd_tasks.graph.build import BuildAll, Publish
    from msd_tasks.graph.tasks import (
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
