"""The input side of the graph: the song catalogue, the triplet imports, the join, and the
raw files' digests. Each task reads its inputs through `self.input()`, calls the pure stage
functions (msd_tasks/stages) and writes its checkpoint (msd_tasks/formats/checkpoints.py).

The stage modules (numpy, pyarrow, pandas) are imported in `build()`, where they are used:
planning and a no-op build need none of them. `BuildAll` imports them once, before Luigi forks
its task processes (graph/base.py, `import_stage_libraries`).
"""

from __future__ import annotations

import logging

import luigi

from msd_tasks.formats import raw
from msd_tasks.formats.checkpoints import JoinedCheckpoint, SongsCheckpoint, TripletsCheckpoint
from msd_tasks.graph.base import PRIORITY, CheckpointTask, RawFile, ShardCount
from msd_tasks.graph.config import paths, quality

logger = logging.getLogger("luigi-interface")


class CleanSongs(CheckpointTask):
    """songs.parquet: one row per song_id (first in file order), text decoded, plus `genre`."""

    checkpoint = SongsCheckpoint

    def requires(self):
        return {"msd": RawFile(key="msd"), "genres": RawFile(key="genres")}

    def build(self, out: SongsCheckpoint):
        from msd_tasks.stages.quality import genre_warnings
        from msd_tasks.stages.songs import clean_songs, read_genres, read_msd

        msd = read_msd(self.raw_path("msd"))
        genres = read_genres(self.raw_path("genres"))
        songs = clean_songs(msd, genres)
        self.check_unchanged("msd")
        self.check_unchanged("genres")
        out.write_songs(songs)
        songs_with_genre = songs.num_rows - songs.column("genre").null_count
        return {
            "msd_rows": len(msd),
            "genre_lines": genres.num_rows,
            "songs": songs.num_rows,
            "songs_with_genre": songs_with_genre,
            "warnings": genre_warnings(genres.num_rows, songs_with_genre, raw.RAW_FILES["genres"]),
        }


class ImportTriplets(CheckpointTask):
    """plays.parquet (user_code, song_code, play_count per line) with user_ids/song_ids.parquet."""

    kind = luigi.ChoiceParameter(choices=list(raw.TRIPLET_KINDS))
    on_bad_lines = luigi.ChoiceParameter(
        choices=["error", "skip"], default="error", description="Malformed triplet lines"
    )

    checkpoint = TripletsCheckpoint

    @property
    def priority(self):
        return PRIORITY["train import"] if self.kind == "train" else 0

    def requires(self):
        return RawFile(key=self.kind)

    def build(self, out: TripletsCheckpoint):
        from msd_tasks.stages.triplets import read_triplets

        path = raw.raw_source(paths().raw_dir, self.kind)  # a file, or a member of an archive
        triplets = read_triplets(path, self.on_bad_lines)
        self.check_unchanged(self.kind)
        if triplets.skipped_lines:
            logger.warning("%s: skipped %d malformed lines", path, triplets.skipped_lines)
        out.write_triplets(triplets)
        return {
            "lines": len(triplets),
            "skipped_lines": triplets.skipped_lines,
            "users": len(triplets.user_ids),
            "songs": len(triplets.song_ids),
        }


class JoinPlays(CheckpointTask):
    """Plays joined with the catalogue, hidden-only users removed, users and songs numbered,
    and the visible plays split by user-hash shard (JoinedCheckpoint)."""

    on_bad_lines = ImportTriplets.on_bad_lines  # passed down to the imports
    drop_mismatches = luigi.BoolParameter(
        default=False, description="Drop plays of songs listed in sid_mismatches.txt"
    )
    n_shards = ShardCount(
        default=0, description="User-hash shards of PerUserMusic; 0: [pipeline] n_shards"
    )

    checkpoint = JoinedCheckpoint

    def requires(self):
        inputs = {
            "songs": self.clone(CleanSongs),
            **{kind: self.clone(ImportTriplets, kind=kind) for kind in raw.TRIPLET_KINDS},
        }
        if self.drop_mismatches:
            inputs["mismatches"] = RawFile(key="mismatches")
        return inputs

    def build(self, out: JoinedCheckpoint):
        from msd_tasks.stages.join import join_plays, user_shards
        from msd_tasks.stages.quality import (
            SAMPLE_IDS,
            JoinFacts,
            QualityError,
            join_problems,
            same_lines,
        )

        inputs = self.input()
        catalog_ids = inputs["songs"].songs(["song_id"]).column("song_id").combine_chunks()
        files = {kind: inputs[kind].triplets() for kind in raw.TRIPLET_KINDS}
        joined = join_plays(catalog_ids, files, self.mismatched_songs())
        train_stats = inputs["train"].stats()
        facts = JoinFacts(
            train_lines=train_stats["lines"] + train_stats["skipped_lines"],
            train_plays_joined=joined.train_plays_joined,
            users=len(joined.user_ids),
            songs=len(joined.song_ids),
            unmatched_song_ids=joined.unmatched_song_ids,
            catalog_song_ids=catalog_ids[:SAMPLE_IDS].to_pylist(),
            test_users_in_train=joined.test_users_in_train,
            test_pairs_in_both=joined.test_pairs_in_both,
            test_files_equal_to_train=tuple(
                kind for kind in ("visible", "hidden") if same_lines(files["train"], files[kind])
            ),
        )
        del files
        settings = quality()
        errors, warnings = join_problems(
            facts, settings.min_train_join_share, settings.test_users_in_train
        )
        if errors:
            raise QualityError(self.get_task_family(), errors)
        out.write_joined(joined, user_shards(joined.user_ids, self.n_shards), self.n_shards)
        return {
            "users": len(joined.user_ids),
            "songs": len(joined.song_ids),
            "visible_plays": len(joined.visible),
            "hidden_plays": len(joined.hidden),
            "hidden_only_users": joined.hidden_only_users,
            "mismatched_plays_dropped": joined.mismatched_plays_dropped,
            "train_plays_joined": joined.train_plays_joined,
            "test_users_in_train": joined.test_users_in_train,
            "warnings": warnings,
        }

    def mismatched_songs(self):
        from msd_tasks.stages.mismatches import read_mismatched_songs

        """Songs whose plays to drop: none unless asked for and sid_mismatches.txt exists."""
        if not self.drop_mismatches:
            return None
        path = self.raw_path("mismatches")
        if not path.exists():
            logger.warning("--drop-mismatches: %s not found, no plays dropped", path)
            return None
        songs = read_mismatched_songs(path)
        self.check_unchanged("mismatches")
        return songs


class RawDigests(CheckpointTask):
    """stats.json `inputs`: bytes and sha256 of every raw file the build reads, for the
    manifest and for the next build's check by content (formats/raw.py).

    It needs what JoinPlays needs, so it runs beside JoinPlays, which leaves a core idle: the
    CPU-bound imports before it do not pay for the hashing.
    """

    on_bad_lines = ImportTriplets.on_bad_lines
    drop_mismatches = JoinPlays.drop_mismatches

    def requires(self):
        keys = [*raw.RAW_FILES, *(["mismatches"] if self.drop_mismatches else [])]
        return {
            "beside JoinPlays": [
                self.clone(CleanSongs),
                *[self.clone(ImportTriplets, kind=kind) for kind in raw.TRIPLET_KINDS],
            ],
            "raw": [RawFile(key=key) for key in keys],
        }

    def build(self, out):
        digests = {}  # by file name under raw_dir: visible and hidden may share an archive
        for task in self.requires()["raw"]:
            path, name = self.raw_path(task.key), raw.raw_name(paths().raw_dir, task.key)
            if path.exists() and name not in digests:  # sid_mismatches.txt may be absent
                digests[name] = raw.file_digest(path)
                self.check_unchanged(task.key)
        return {"inputs": digests}
