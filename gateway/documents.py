"""Parsed and validated GraphQL documents kept for reuse, within a budget of bytes.

Clients send the same few documents again and again: each is parsed and validated once. What any caller
can make the cache hold is bounded: only documents that validated are kept, each weighed by its text and
its parsed form, and a document heavier than a small share of the budget is parsed every time.

Nor may the documents that are not kept pile up in reference cycles, which only a full collection frees
(and Python runs one rarely): graphql-core links a document's tokens both ways (a comment is a token
too), so they are unlinked once parsed; validation leaves the document in a cycle with its rules, so
once the documents let go weigh more than `UNCOLLECTED_BYTES`, a full collection follows.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

from cachetools import LRUCache
from graphql import DocumentNode
from strawberry.extensions import SchemaExtension

# The parsed form of a document costs up to ~550 bytes per token (nodes, locations, tokens).
TOKEN_BYTES = 600
# No one document may take more than this share of the budget: a huge one is parsed each time instead.
LARGEST_SHARE = 32
# Documents let go since the last full collection, in bytes, before the next (tens of milliseconds).
UNCOLLECTED_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class _Entry:
    document: DocumentNode
    weight: int


def unlink_tokens(document: DocumentNode) -> int:
    """Breaks the chain of the document's tokens; returns how many there were."""
    tokens = 0
    token = document.loc.start_token if document.loc else None
    while token is not None:
        tokens += 1
        token.prev, token.next, token = None, None, token.next
    return tokens


def weight(query: str, tokens: int) -> int:
    """Bytes a document holds at most: its text, the tokens' copies of it, its parsed form."""
    return 2 * sys.getsizeof(query) + TOKEN_BYTES * tokens


class DocumentCache:
    """A least-recently-used cache of valid documents, at most `max_bytes` in all (0: none kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: LRUCache[Hashable, _Entry] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda entry: entry.weight
        )
        self._uncollected = 0

    def get(self, key: Hashable) -> DocumentNode | None:
        entry = self._entries.get(key)
        return entry.document if entry else None

    def keep(self, key: Hashable, document: DocumentNode, weight: int) -> bool:
        if weight > self.max_bytes // LARGEST_SHARE:
            return False
        self._entries[key] = _Entry(document, weight)
        return True

    def let_go(self, weight: int) -> None:
        """A parsed document not kept: collected with the others once they weigh enough."""
        self._uncollected += weight
        if self._uncollected > UNCOLLECTED_BYTES:
            self._uncollected = 0
            try:  # once this request is answered and nothing refers to its document any more
                asyncio.get_running_loop().call_soon(gc.collect)
            except RuntimeError:  # executed synchronously: it is answered already
                gc.collect()


class CachedDocuments(SchemaExtension):
    """Skips parsing and validation for a document validated before under the same limits and rules.

    A document not in the cache is parsed and validated by strawberry as usual (and a bad one answered as
    a request error); it is kept once it has validated without errors.
    """

    def __init__(self, cache: DocumentCache) -> None:
        super().__init__()
        self.cache = cache
        self._key: Hashable | None = None
        self._hit = False
        self._parsed = 0  # the weight of the document this request parsed, until it is kept

    def on_operation(self) -> Iterator[None]:
        yield
        if self._parsed:
            self.cache.let_go(self._parsed)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and self.cache.max_bytes:
            self._key = (
                context.query,
                tuple(sorted(context.parse_options.items())),
                tuple(context.validation_rules),
            )
            document = self.cache.get(self._key)
            if document is not None:
                context.graphql_document = document
                self._hit = True
        yield
        if context.query is not None and not self._hit:
            document = context.graphql_document  # None when it did not parse
            self._parsed = weight(context.query, unlink_tokens(document) if document else 0)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self._hit:
            context.pre_execution_errors = []  # validated when it was kept
        yield
        document, key = context.graphql_document, self._key
        if document is None or key is None or not self._parsed or context.pre_execution_errors != []:
            return
        if self.cache.keep(key, document, self._parsed):
            self._parsed = 0
