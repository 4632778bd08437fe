"""The store's JSON transcoder: eventsourcing's JSON format, written with orjson.

Stored events and snapshots keep the format of eventsourcing's JSONTranscoder (a value of a registered
type is an object `{"_type_": name, "_data_": encoded}`) and are read by it. orjson writes ids and
times natively, as plain strings, so they are tagged first by a walk over the value. A value orjson
would write otherwise than the json module (a float that is not finite, an integer beyond 64 bits, a
key that is not a string, a subclass of dict, list or float) goes through the json module as before.
Reading stays with the json module: with its object hook it is as fast as orjson and a walk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, Transcoding, TranscodingNotRegisteredError

_PLAIN = frozenset({str, int, bool, type(None)})


class _NotPlain(Exception):
    """The value holds something orjson would not write as the json module does."""


class FastJSONTranscoder(JSONTranscoder):
    def __init__(self) -> None:
        super().__init__()
        self._tags: dict[type, tuple[str, Callable[[Any], Any]]] = {}

    def register(self, transcoding: Transcoding) -> None:
        super().register(transcoding)
        self._tags = {  # (the json module writes subclasses of its own types plainly, whatever is registered)
            kind: (t.name, t.encode)
            for kind, t in self.types.items()
            if not issubclass(kind, str | int | float | dict | list | tuple)
        }

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._tagged(obj))
        except (_NotPlain, TypeError):  # orjson.JSONEncodeError is a TypeError
            return super().encode(obj)

    def _tagged(self, value: Any) -> Any:
        """The value with every registered type replaced by its tagged object: plain JSON data."""
        kind = type(value)
        if kind is dict:  # (orjson refuses keys that are not strings: the json module writes those)
            tagged = {}
            tags = self._tags
            for key, item in value.items():
                item_kind = type(item)
                if item_kind in _PLAIN:
                    tagged[key] = item
                elif item_kind in tags:
                    name, encode = tags[item_kind]
                    data = encode(item)
                    if type(data) is not str:
                        data = self._tagged(data)
                    tagged[key] = {"_type_": name, "_data_": data}
                else:
                    tagged[key] = self._tagged(item)
            return tagged
        if kind in _PLAIN:
            return value
        if kind is float:
            if not math.isfinite(value):
                raise _NotPlain
            return value
        if kind is list or kind is tuple:
            return [item if type(item) in _PLAIN else self._tagged(item) for item in value]
        if kind in self._tags:
            name, encode = self._tags[kind]
            return {"_type_": name, "_data_": self._tagged(encode(value))}
        if isinstance(value, str | int):  # a str or int enum: both write its plain value
            return value
        if isinstance(value, dict | list | tuple | float):
            raise _NotPlain
        raise TranscodingNotRegisteredError(
            f"Object of type {kind} is not serializable. Please define and register a custom "
            "transcoding for this type."
        )
