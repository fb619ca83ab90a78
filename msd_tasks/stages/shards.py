"""How many user-hash shards PerUserMusic fans out over, when `[pipeline] n_shards = 0`.

Plain Python: the graph sizes its tasks when it plans, before any library is imported.
"""

from __future__ import annotations

# With `[pipeline] n_shards = 0`: one shard per 384 MiB of train text (about 6M plays, 8 shards
# for the real 2.9 GB file), and at least two, one for each of two workers.
SHARD_TEXT_BYTES = 384 << 20
MIN_SHARDS = 2


def automatic_shard_count(train_text_bytes: int) -> int:
    """Shards sized to the data: small builds are not split into tasks smaller than their cost."""
    return max(MIN_SHARDS, -(-train_text_bytes // SHARD_TEXT_BYTES))
