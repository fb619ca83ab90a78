"""The files of the MSD benchmark split and where they are published (plain Python: the graph
names them when it plans)."""

from __future__ import annotations

from pathlib import Path

# The reference's parts, in the order it writes them.
PARTS = ("train", "validation_tr", "validation_te", "test_tr", "test_te")
# The id lists: file stem -> the id column of its parquet copy.
ID_FILES = {"unique_sid": "song_id", "unique_uid": "user_id"}
# The seven files RecVAE's `get_data` reads, byte for byte as its preprocessing writes them.
CSV_FILES = (*(f"{name}.txt" for name in ID_FILES), *(f"{part}.csv" for part in PARTS))
# The same split for tools that do not read CSV.
COPIES = (
    *(f"{name}.parquet" for name in ID_FILES),
    *(f"{part}.{kind}" for part in PARTS for kind in ("parquet", "npz")),
)
# Under output_dir: the split's folder, with a manifest.json of its own.
SPLIT_FOLDER = Path("benchmark", "msd-multvae")
