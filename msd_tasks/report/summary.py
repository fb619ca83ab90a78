"""One build's numbers as a typed record: the manifest, the report and the log all take theirs
from a `BuildSummary`, made once from the stats of the build's checkpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from msd_tasks.formats.raw import RAW_FILES, TRIPLET_KINDS

# The funnel: (stage, key in its stats.json, label); the stages are those of `summarize`.
FUNNEL = (
    ("CleanSongs", "msd_rows", "MSD rows"),
    ("CleanSongs", "songs", "songs after dedupe"),
    ("CleanSongs", "songs_with_genre", "songs with a genre"),
    ("train", "lines", "train triplets"),
    ("visible", "lines", "visible test triplets"),
    ("hidden", "lines", "hidden test triplets"),
    ("JoinPlays", "mismatched_plays_dropped", "plays of mismatched songs dropped"),
    ("JoinPlays", "visible_plays", "visible plays after the join"),
    ("JoinPlays", "hidden_plays", "hidden plays after the join"),
    ("JoinPlays", "hidden_only_users", "hidden-only users removed"),
    ("JoinPlays", "users", "users"),
    ("JoinPlays", "songs", "songs in the index"),
    ("PlayMatrices", "train_nonzeros", "train matrix nonzeros"),
    ("PlayMatrices", "test_nonzeros", "test matrix nonzeros"),
)
# Stages whose stats.json carry quality-gate warnings, in the order they are listed.
WARNING_STAGES = ("CleanSongs", "JoinPlays")
# Counts of users that PerUserMusic's shards each report, summed over the shards.
SHARD_COUNTS = ("users_with_featureless_songs", "users_without_music")


@dataclass(frozen=True)
class FunnelStep:
    key: str  # unique; the report's `funnel.<key>`
    label: str
    count: int


@dataclass(frozen=True)
class TaskRun:
    task: str  # the Luigi task id
    family: str
    wall_seconds: float
    peak_rss_bytes: int


@dataclass(frozen=True)
class BuildSummary:
    build: str  # names the set of deliverables; manifest.json and report.json both carry it
    parameters: dict[str, object]
    fingerprints: dict[str, str]  # of the raw files the build planned with
    inputs: dict[str, dict]  # file name under raw_dir -> bytes and sha256 of what was read
    funnel: tuple[FunnelStep, ...]
    counts: dict[str, object]  # manifest.json's `counts`
    warnings: tuple[str, ...]
    runs: tuple[TaskRun, ...]  # the checkpoints' run.json files, by task id


def summarize(
    build: str,
    parameters: Mapping[str, object],
    fingerprints: Mapping[str, str],
    stages: Mapping[str, Mapping],
    shards: Sequence[Mapping],
    runs: Sequence[TaskRun],
) -> BuildSummary:
    """The summary from the stats of each stage (by family, or by kind for the imports) and of
    each PerUserMusic shard."""
    shard_counts = {key: sum(int(shard[key]) for shard in shards) for key in SHARD_COUNTS}
    return BuildSummary(
        build=build,
        parameters=dict(parameters),
        fingerprints=dict(fingerprints),
        inputs={
            name: digest
            for stage in stages.values()
            for name, digest in sorted(stage.get("inputs", {}).items())
        },
        funnel=tuple(
            FunnelStep(_funnel_key(stage, key), label, int(stages[stage][key]))
            for stage, key, label in FUNNEL
            if key in stages.get(stage, {})
        ),
        counts={
            **{
                key: value
                for key, value in stages["JoinPlays"].items()
                if key not in ("warnings", "inputs")
            },
            **stages["PlayMatrices"],
            **shard_counts,
            "songs_without_features": stages["SongTable"]["songs_without_features"],
            "skipped_lines": {kind: stages[kind]["skipped_lines"] for kind in TRIPLET_KINDS},
        },
        warnings=tuple(_warnings(stages, shard_counts)),
        runs=tuple(sorted(runs, key=lambda run: run.task)),
    )


def _funnel_key(stage: str, key: str) -> str:
    if stage in TRIPLET_KINDS:
        return f"{stage}_lines"
    return "song_index" if (stage, key) == ("JoinPlays", "songs") else key


def _warnings(stages: Mapping[str, Mapping], shard_counts: Mapping[str, int]) -> list[str]:
    warnings = [
        f"{stage}: {warning}"
        for stage in WARNING_STAGES
        for warning in stages.get(stage, {}).get("warnings", [])
    ]
    for kind in TRIPLET_KINDS:
        skipped = stages[kind]["skipped_lines"]
        if skipped:
            warnings.append(f"{RAW_FILES[kind]}: skipped {skipped:,} malformed lines")
    songs_without_features = stages["SongTable"]["songs_without_features"]
    if songs_without_features:
        warnings.append(
            f"{songs_without_features:,} songs have no audio features; they are left out of the "
            f"MUSIC means of {shard_counts['users_with_featureless_songs']:,} users, "
            f"{shard_counts['users_without_music']:,} of whom have no MUSIC (NaN)"
        )
    return warnings
