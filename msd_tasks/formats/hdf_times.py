"""Clearing the write times HDF5 keeps in its object headers, so that the same frame written twice
gives the same bytes.

pandas' fixed format writes through PyTables, whose datasets record a modification time
(HDF5 object header message 0x0012) whatever `track_times` says at the pandas level. Here every
object's header is walked and each such time set to 0 (1970), in place. The files use version 1
object headers (HDF5's default, earliest format), which carry no checksum; any other header
version is refused, rather than left half done.
"""

from __future__ import annotations

import struct
from pathlib import Path

import h5py

MODIFICATION_TIME = 0x0012  # seconds since the epoch, after a version byte and 3 reserved
CONTINUATION = 0x0010  # more messages: address and length of the next block
V1_PREFIX = 16  # version, reserved, message count, reference count, header size (+ padding)


def clear_modification_times(path: Path) -> int:
    """Set every object modification time in the file at `path` to 0; returns how many."""
    with h5py.File(path, "r") as file:
        addresses = {h5py.h5o.get_info(file.id).addr}
        file.visititems(lambda _, item: addresses.add(h5py.h5o.get_info(item.id).addr))
    cleared = 0
    with open(path, "r+b") as raw:
        for address in sorted(addresses):
            for offset in _time_fields(raw, address):
                raw.seek(offset)
                raw.write(b"\0\0\0\0")
                cleared += 1
    return cleared


def _time_fields(raw, address: int) -> list[int]:
    """File offsets of the 4-byte times in the version 1 object header at `address`."""
    raw.seek(address)
    version, _, count, _, size = struct.unpack("<BBHII", raw.read(12))
    if version != 1:
        raise ValueError(f"object header at {address}: version {version}, expected 1")
    blocks = [(address + V1_PREFIX, size)]
    fields = []
    seen = 0
    while blocks and seen < count:
        start, length = blocks.pop(0)
        position = start
        while position + 8 <= start + length and seen < count:
            raw.seek(position)
            kind, data_size = struct.unpack("<HH", raw.read(4))
            data = position + 8
            if kind == MODIFICATION_TIME:
                fields.append(data + 4)
            elif kind == CONTINUATION:
                raw.seek(data)
                blocks.append(struct.unpack("<QQ", raw.read(16)))
            position = data + data_size
            seen += 1
    return fields
