"""Integer codes for fixed-width ids (the MSD's: 40-byte user ids, 18-byte song ids), one column
at a time: every distinct id gets a code, and the same id the same code in every chunk.

Why not Arrow's dictionary encoding: the train file's 48M song ids have 384K distinct values, so
a lookup in one hash table of them misses the caches, and the misses depend on each other (a
dependent read costs 130 ns at 4 MB on the benchmark machine). The CSV reader's dictionaries
and their unification cost 23 CPU-s for the song column alone (RESULTS.md, session 7). Here:

1. Each id is read as 64-bit words straight from Arrow's buffer (the last one overlapping the
   one before, so the words cover the id exactly) and hashed (`_hash_words`).
2. The ids are copied, hash and words, into PARTS partitions by the hash's top bits: a radix
   partition, so that the table slots one partition uses stay in the L2 cache (`_scatter`).
3. Partition after partition, each id is looked up by its hash and compared word for word with
   the key in the slot; a new id gets the next code (`_look_up`). The same hash with other
   words raises HashCollision, and the caller reads the file the general way (exact, slower);
   a collision of 64-bit hashes needs about 4 billion distinct ids to be likely.

With `runs`, an id equal to the one on the line before reuses its code without a lookup (the
train file lists each user's lines together). Codes are deterministic (partition after
partition, chunk after chunk) but not in order of first appearance.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

PART_BITS = 8
PARTS = 1 << PART_BITS
_TOP = np.uint64(64 - PART_BITS)
_INITIAL_SLOTS = 1 << 6  # per partition; doubled when a partition is half full
WORD = 8  # ids narrower than a word are not coded here


class HashCollision(Exception):
    """Two different ids of a column have the same 64-bit hash."""


@njit(nogil=True, cache=True)
def _hash_words(leading, last, runs, mask, words, repeat, counts):
    """words[row] = hash, then the id's words; with `runs`, repeat[row] when the id equals the
    one before. counts[p + 1]: how many rows (not repeats) fall in partition p.

    leading[row] are the id's first words, last[row] its last 8 bytes: views of the Arrow
    buffer (unaligned loads, 8x faster than assembling words from bytes)."""
    n_words = words.shape[1] - 1
    for row in range(len(words)):
        h = np.uint64(0x9E3779B97F4A7C15)
        same = runs and row > 0
        for w in range(n_words):
            word = leading[row, w] if w < n_words - 1 else last[row]
            same = same and word == words[row - 1, 1 + w]
            words[row, 1 + w] = word
            h = (h ^ word) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(29)
        h &= mask
        words[row, 0] = h
        repeat[row] = same
        if not same:
            counts[(h >> _TOP) + 1] += 1


@njit(nogil=True, cache=True)
def _scatter(words, repeat, starts, part_rows, part_words):
    """The rows that are not repeats, partition after partition, in row order within each."""
    fill = starts[:-1].copy()
    for row in range(len(words)):
        if not repeat[row]:
            p = words[row, 0] >> _TOP
            k = fill[p]
            fill[p] += 1
            part_rows[k] = row
            for w in range(words.shape[1]):
                part_words[k, w] = words[row, w]


@njit(nogil=True, cache=True)
def _look_up(part_rows, part_words, k, part_codes, slots, slot_codes, used, n_ids, new_rows):
    """Code the rows k.. of partition order; a slot holds a row of part_words (hash, words) and
    its code. Returns (k reached, n_ids, collision): k short of the end when row k's partition
    is half full; collision when row k has the hash, not the words, of a key."""
    size = len(slot_codes) // PARTS
    mask = np.uint64(size - 1)
    first_new = n_ids
    while k < len(part_rows):
        h = part_words[k, 0]
        p = h >> _TOP
        slot = p * size + (h & mask)
        while True:
            code = slot_codes[slot]
            if code < 0:
                if 2 * used[p] >= size:
                    return k, n_ids, False
                for w in range(slots.shape[1]):
                    slots[slot, w] = part_words[k, w]
                slot_codes[slot] = n_ids
                used[p] += 1
                new_rows[n_ids - first_new] = part_rows[k]
                part_codes[k] = n_ids
                n_ids += 1
                break
            if slots[slot, 0] == h:
                for w in range(1, slots.shape[1]):
                    if slots[slot, w] != part_words[k, w]:
                        return k, n_ids, True
                part_codes[k] = code
                break
            slot = p * size + ((slot + 1) & mask)
        k += 1
    return k, n_ids, False


@njit(nogil=True, cache=True)
def _rehash(slots, slot_codes, new_slots, new_codes, used):
    size = len(new_codes) // PARTS
    mask = np.uint64(size - 1)
    for old in range(len(slot_codes)):
        if slot_codes[old] < 0:
            continue
        h = slots[old, 0]
        p = h >> _TOP
        slot = p * size + (h & mask)
        while new_codes[slot] >= 0:
            slot = p * size + ((slot + 1) & mask)
        for w in range(slots.shape[1]):
            new_slots[slot, w] = slots[old, w]
        new_codes[slot] = slot_codes[old]
        used[p] += 1


@njit(nogil=True, cache=True)
def _unpartition(part_codes, part_rows, repeat, codes):
    """Codes back in row order; a repeat takes the code of the row before it."""
    for k in range(len(part_rows)):
        codes[part_rows[k]] = part_codes[k]
    for row in range(1, len(codes)):
        if repeat[row]:
            codes[row] = codes[row - 1]


class FixedWidthCoder:
    """Codes for one column of ids of `width` bytes, chunk after chunk (`encode`); `ids()` gives
    the distinct ids in code order. `hash_bits` is for tests: with a few, collisions are sure."""

    def __init__(self, width: int, runs: bool = False, hash_bits: int = 64):
        if width < WORD:
            raise ValueError(f"ids of {width} bytes: {WORD} or more are coded here")
        self.width, self.runs = width, runs
        # The partition is the hash's top bits: a narrow hash keeps its bits at the top.
        self.mask = np.uint64(((1 << hash_bits) - 1) << (64 - hash_bits))
        self.n_words = -(-width // WORD)
        self.slots = np.zeros((PARTS * _INITIAL_SLOTS, 1 + self.n_words), np.uint64)
        self.slot_codes = np.full(PARTS * _INITIAL_SLOTS, -1, np.int32)
        self.used = np.zeros(PARTS, np.int64)
        self.n_ids = 0
        self.new_ids: list[pa.Array] = []
        self._scratch: dict[str, np.ndarray] = {}

    def encode(self, ids: pa.FixedSizeBinaryArray) -> np.ndarray:
        """int32 codes of a chunk of ids (no nulls); raises HashCollision."""
        n, width, buffer = len(ids), self.width, ids.buffers()[1]
        start = ids.offset * width
        leading = np.ndarray((n, self.n_words - 1), np.uint64, buffer, start, (width, WORD))
        last = np.ndarray((n,), np.uint64, buffer, start + width - WORD, (width,))
        words = self._reused("words", n, np.uint64, 1 + self.n_words)
        repeat, counts = self._reused("repeat", n, np.bool_), np.zeros(PARTS + 1, np.int64)
        _hash_words(leading, last, self.runs, self.mask, words, repeat, counts)
        starts = np.cumsum(counts)
        kept = int(starts[-1])
        part_rows = self._reused("part_rows", kept, np.int32)
        part_words = self._reused("part_words", kept, np.uint64, 1 + self.n_words)
        _scatter(words, repeat, starts, part_rows, part_words)
        part_codes = self._reused("part_codes", kept, np.int32)
        new_rows = self._reused("new_rows", kept, np.int32)
        first_new, k = self.n_ids, 0
        while True:
            k, n_ids, collision = _look_up(
                part_rows, part_words, k, part_codes, self.slots, self.slot_codes, self.used,
                self.n_ids, new_rows[self.n_ids - first_new :],
            )  # fmt: skip
            self.n_ids = n_ids
            if collision:
                raise HashCollision(f"two ids with one hash, one of them in row {part_rows[k]}")
            if k == len(part_rows):
                break
            self._grow()
        codes = np.empty(n, np.int32)
        _unpartition(part_codes, part_rows, repeat, codes)
        self.new_ids.append(ids.take(pa.array(new_rows[: self.n_ids - first_new])))
        return codes

    def _reused(self, name: str, n: int, dtype, columns: int = 0) -> np.ndarray:
        """n rows of a scratch array kept from chunk to chunk: fresh arrays for every chunk of
        a 48M-line file cost page faults (seconds of system time)."""
        array = self._scratch.get(name)
        if array is None or len(array) < n:
            array = np.empty((n, columns) if columns else n, dtype)
            self._scratch[name] = array
        return array[:n]

    def _grow(self) -> None:
        slots = np.zeros((2 * len(self.slots), self.slots.shape[1]), np.uint64)
        slot_codes = np.full(2 * len(self.slot_codes), -1, np.int32)
        self.used[:] = 0
        _rehash(self.slots, self.slot_codes, slots, slot_codes, self.used)
        self.slots, self.slot_codes = slots, slot_codes

    def ids(self) -> pa.Array:
        """The distinct ids in code order, as binary."""
        return pa.concat_arrays([pa.array([], pa.binary(self.width)), *self.new_ids])
