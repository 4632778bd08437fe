"""The store's compressor: zlib on the encoded state of each stored event and snapshot, before encryption.

eventsourcing's mapper encodes a state (JSON), compresses it, then encrypts it; reading, the reverse. Stores
written before states were compressed hold plain JSON states, and a state that zlib would not shrink is
kept as it is: both begin with `{` (a JSON object; the transcoder writes every state as one), which a zlib
stream never does (its first byte is 0x78 for the 32 KiB window used here), so such a state is passed
through when read. Nothing else in the store reads a state without the mapper.
"""

from __future__ import annotations

import zlib

from eventsourcing.persistence import Compressor

PLAIN_JSON = 0x7B  # "{": a state stored uncompressed
LEVEL = 6  # zlib's default: within a few bytes of 9 on 1-2 KiB states, at a fraction of its CPU


class PassThroughZlibCompressor(Compressor):
    def compress(self, data: bytes) -> bytes:
        compressed = zlib.compress(data, LEVEL)
        return compressed if len(compressed) < len(data) else data

    def decompress(self, data: bytes) -> bytes:
        if data[:1] == b"{":
            return data
        return zlib.decompress(data)
