"""The store's compressor: zlib on the encoded state of each stored event and snapshot, before encryption.

eventsourcing's mapper encodes a state (JSON), compresses it, then encrypts it; reading, the reverse.

- Most states are small (a delivery's attempt: 700 bytes of JSON, mostly keys, topics and type tags), where
  zlib alone finds little to repeat. So states are compressed with a preset dictionary (`DICTIONARY`: the
  JSON that Hookline's own states are made of, nothing of any payload), which halves them again: zlib
  records the dictionary's Adler-32 in the stream (header flag FDICT), and reading looks it up in
  `DICTIONARIES`. A dictionary is never changed once states were written with it: a new one is added
  there, under its own Adler-32, and the old ones stay for reading.
- Stores written before states were compressed hold plain JSON states, and a state that zlib would not
  shrink is kept as it is: both begin with `{` (the transcoder writes every state as a JSON object), which
  a zlib stream never does (its first byte is 0x78 for the 32 KiB window used here), so such a state is
  passed through when read. Nothing else in the store reads a state without the mapper.
"""

from __future__ import annotations

import zlib

from eventsourcing.persistence import Compressor

LEVEL = 6  # zlib's default: within a few bytes of 9 on 1-2 KiB states, at a fraction of its CPU
FDICT = 0x20  # the flag of a zlib stream's second byte: a preset dictionary's Adler-32 follows

DICTIONARY = (  # version 1: the states of a webhook, an event, its fan-out and a delivery's attempt
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-08T02:51:21.504839+00:00"},'
    b'"originator_topic":"domain.webhooks:Webhook",'
    b'"spec":{"name":"","event_types":[],"target_url":"https://","description":null,"method":"POST",'
    b'"headers":[],"credential_id":null,"payload_template":null,"filters":[],"rate_limit_per_second":null,'
    b'"ordered":false},"active":true,"signing_secret":"whsec_'
    b'"originator_topic":"domain.events:Event","organization_id":{"_type_":"uuid_hex","_data_":"'
    b'"},"type":"","payload":{},"occurred_at":{"_type_":"datetime_iso","_data_":"2026-"},'
    b'"idempotency_key":null,"actor":"","trace_parent":null}'
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-"},'
    b'"webhook_ids":[{"_type_":"uuid_hex","_data_":""}],"webhook_versions":[1]}'
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-"},"originator_topic":"domain.deliveries:Delivery",'
    b'"event_id":{"_type_":"uuid_hex","_data_":""},"webhook_id":{"_type_":"uuid_hex","_data_":""},'
    b'"organization_id":{"_type_":"uuid_hex","_data_":""},"event_type":"",'
    b'"owed_since":{"_type_":"datetime_iso","_data_":"2026-"},'
    b'"attempt":{"number":1,"started_at":{"_type_":"datetime_iso","_data_":"2026-"},"duration_ms":,'
    b'"status_code":200,"error":null,"response_body":"","retry_after":null},"next_attempt_at":null}'
)
DICTIONARIES = {zlib.adler32(DICTIONARY): DICTIONARY}  # every dictionary ever written with, for reading


class PassThroughZlibCompressor(Compressor):
    def compress(self, data: bytes) -> bytes:
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, 8, zdict=DICTIONARY)
        compressed = compressor.compress(data) + compressor.flush()
        return compressed if len(compressed) < len(data) else data

    def decompress(self, data: bytes) -> bytes:
        if data[:1] == b"{":
            return data
        if len(data) > 6 and data[1] & FDICT:
            dictionary = DICTIONARIES.get(int.from_bytes(data[2:6], "big"))
            if dictionary is None:
                raise ValueError("A stored state compressed with an unknown dictionary")
            decompressor = zlib.decompressobj(zdict=dictionary)
            return decompressor.decompress(data) + decompressor.flush()
        return zlib.decompress(data)
