"""The text inside a .gz file or a zip member, decompressed ahead of its reader.

ISA-L's inflate (`isal`) takes 7.8 s for the 3 GB of train_triplets.txt.zip where zlib takes
20 s, and it runs on a thread of its own, a few chunks ahead of the CSV parser (inflate releases
the GIL): read from the archive, the train import costs little more than from the unpacked file
(benchmarks/RESULTS.md, "Design measurements").
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

from isal import igzip, isal_zlib

from msd_tasks.errors import InputError
from msd_tasks.formats.ahead import Ahead

CHUNK = 16 << 20  # compressed bytes read at a time
AHEAD = 4  # decompressed chunks kept ready
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
RAW_DEFLATE = -15  # zlib window bits for deflate without a header, as zip stores it


def open_gzip(path: Path) -> io.BufferedReader:
    def chunks() -> Iterator[bytes]:
        with igzip.open(path, "rb") as file:
            while chunk := file.read(CHUNK):
                yield chunk

    return io.BufferedReader(ReadAhead(chunks()), CHUNK)


def open_zip_member(path: Path, info: zipfile.ZipInfo) -> io.BufferedReader:
    """The member's text; deflated members are inflated by ISA-L, with their CRC-32 checked,
    others (stored, bzip2, lzma) read by zipfile."""
    if info.compress_type != zipfile.ZIP_DEFLATED:

        def chunks() -> Iterator[bytes]:
            with zipfile.ZipFile(path) as archive, archive.open(info) as member:
                while chunk := member.read(CHUNK):
                    yield chunk

        return io.BufferedReader(ReadAhead(chunks()), CHUNK)

    def inflated() -> Iterator[bytes]:
        with open(path, "rb") as file:
            file.seek(info.header_offset)
            signature, name_length, extra_length = LOCAL_HEADER.unpack(file.read(30))
            if signature != b"PK\x03\x04":
                raise InputError(path, f"member {info.filename}", "a zip local file header")
            file.seek(info.header_offset + 30 + name_length + extra_length)
            inflate, left, crc, size = (
                isal_zlib.decompressobj(RAW_DEFLATE),
                info.compress_size,
                0,
                0,
            )
            while left and (compressed := file.read(min(left, CHUNK))):  # short: a cut file
                left -= len(compressed)
                data = inflate.decompress(compressed)
                crc, size = isal_zlib.crc32(data, crc), size + len(data)
                yield data
            data = inflate.flush()
            crc, size = isal_zlib.crc32(data, crc), size + len(data)
            yield data
        if (crc, size) != (info.CRC, info.file_size):
            raise InputError(
                path,
                f"member {info.filename}",
                f"{info.file_size} bytes with CRC-32 {info.CRC:08x}",
                f"{size} bytes with CRC-32 {crc:08x} (a damaged archive)",
            )

    return io.BufferedReader(ReadAhead(inflated()), CHUNK)


class ReadAhead(io.RawIOBase):
    """A binary stream of `chunks`, produced on a thread up to AHEAD chunks before they are read.
    An error of the producer is raised by the read that reaches it; closing stops the producer."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = Ahead((chunk for chunk in chunks if chunk), AHEAD)
        self._chunk, self._at = memoryview(b""), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._at == len(self._chunk):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk, self._at = memoryview(chunk), 0
        size = min(len(buffer), len(self._chunk) - self._at)
        buffer[:size] = self._chunk[self._at : self._at + size]
        self._at += size
        return size

    def close(self) -> None:
        self._chunks.close()
        super().close()
