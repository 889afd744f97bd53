"""Match keys as the hub stores them, unpacked for the linker over a whole column at once.

Why: ``records.match_keys`` holds each row's present keys concatenated in cascade order, with
``match_key_mask`` saying which are present (``privacy.matchkeys.pack_match_keys``): the first
8 bytes of each HMAC digest, or whole 32-byte digests in rows stored before that. The linker
needs only each digest's 64-bit fingerprint (:func:`privacy.linkage.cascade.fingerprints`: the
same first 8 bytes), so this reads them straight out of the Arrow buffer: no Python work per
row, which matters when the linker is rebuilt from a million stored records at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from privacy.matchkeys import MATCH_KEYS, STORED_WIDTHS

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["stored_fingerprints"]


def stored_fingerprints(
    mask: npt.ArrayLike, blobs: pl.Series | pa.Array | pa.ChunkedArray
) -> pl.DataFrame:
    """One ``pl.UInt64`` column per match key (0 where the key is absent), from the stored
    ``match_key_mask`` values and ``match_keys`` blobs (same length, same order). A real
    digest whose first 8 bytes are zero is read as 1, as :func:`fingerprints` does."""
    # imported here: this module is imported by every hub process, and pyarrow alone costs
    # ~80 MB of memory, which the API process (ingest, queries) would otherwise carry
    import pyarrow as pa

    masks = np.asarray(mask, dtype=np.int64)
    array = blobs.to_arrow() if isinstance(blobs, pl.Series) else blobs
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], pa.large_binary())
    if not pa.types.is_large_binary(array.type):
        array = array.cast(pa.large_binary())
    n = len(array)
    if masks.shape != (n,):
        raise ValueError("match_key_mask and match_keys must have the same length")
    out: dict[str, npt.NDArray[np.uint64]] = {}
    if n == 0:
        return pl.DataFrame({s.name: np.zeros(0, np.uint64) for s in MATCH_KEYS})
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + n + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else None
    counts = np.zeros(n, dtype=np.int64)
    for bit in range(len(MATCH_KEYS)):
        counts += (masks >> bit) & 1
    lengths = offsets[1:] - offsets[:-1]
    # each row's key width: 8 bytes, or 32 in rows stored before keys were truncated
    width = np.where(counts > 0, lengths // np.maximum(counts, 1), STORED_WIDTHS[0])
    if not (np.isin(width, STORED_WIDTHS) & (width * counts == lengths)).all():
        raise ValueError("a match key blob does not match its mask")
    before = np.zeros(n, dtype=np.int64)  # digests stored before this key's, per row
    for bit, spec in enumerate(MATCH_KEYS):
        has = ((masks >> bit) & 1).astype(bool)
        fp = np.zeros(n, dtype=np.uint64)
        rows = np.flatnonzero(has)
        if rows.size and data is not None:
            start = offsets[rows] + before[rows] * width[rows]
            raw = data[start[:, None] + np.arange(8)]
            fp[rows] = np.ascontiguousarray(raw).view("<u8").ravel()
            fp[rows[fp[rows] == 0]] = 1
        out[spec.name] = fp
        before += has
    return pl.DataFrame(out)
