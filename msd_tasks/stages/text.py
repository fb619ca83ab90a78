"""Decoding of the MSD metadata text columns, which hold the *text* of Python bytes literals.

`"b'Beyonc\\xc3\\xa9'"` becomes `"Beyoncé"`; a value that is not a bytes literal passes through.
"""

from __future__ import annotations

import codecs

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# The columns of full_msd_with_audio_features.h5 that were written as str(bytes).
BYTE_LITERAL_COLUMNS = ("song_id", "track_id", "artist_mbid", "artist_name", "title", "release")

_LITERAL_PATTERN = r"""^b('.*'|".*")$"""


def decode_byte_literal(text: str) -> str:
    """Decode one bytes-literal text (`b'...'` or `b"..."`) to the UTF-8 text it stands for."""
    inner = text[2:-1]
    if "\\" not in inner:
        return inner
    # repr(bytes) only writes ASCII, so escape_decode sees exactly the literal's escapes.
    raw, _ = codecs.escape_decode(inner.encode("ascii", errors="backslashreplace"))
    return raw.decode("utf-8", errors="replace")


def decode_byte_literals(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Decode every bytes-literal value of a string array; nulls and plain text are unchanged.

    Vectorised for the common case (no escapes: strip `b'` and `'`); only values holding a
    backslash escape go through Python, which in the real data is a few percent of rows.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != pa.string():
        values = values.cast(pa.string())
    is_literal = pc.fill_null(pc.match_substring_regex(values, _LITERAL_PATTERN), False)
    inner = pc.utf8_slice_codeunits(values, start=2, stop=-1)
    has_escape = pc.and_(is_literal, pc.fill_null(pc.match_substring(inner, "\\"), False))
    decoded = pc.if_else(is_literal, inner, values)
    escaped_rows = np.flatnonzero(has_escape.to_numpy(zero_copy_only=False))
    if len(escaped_rows) == 0:
        return decoded
    originals = values.take(pa.array(escaped_rows)).to_pylist()
    replacements = pa.array([decode_byte_literal(v) for v in originals], pa.string())
    return pc.replace_with_mask(decoded, has_escape, replacements)
