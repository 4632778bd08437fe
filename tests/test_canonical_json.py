"""The audit hash's canonical JSON is the same text whether orjson or the json module writes it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.audit import GENESIS, canonical, canonical_bytes, chain_hash

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats()  # tiny, huge, NaN and infinities too
    | st.text(),  # control characters, non-ASCII, lone surrogates
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, max_size=2)
    ),  # keys the json module turns into text
    max_leaves=25,
)


def json_module(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@settings(max_examples=1000, deadline=None)
@given(json_values)
def test_the_fast_canonical_text_is_the_json_modules_to_the_byte(value: Any) -> None:
    try:
        expected = json_module(value)
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8: no record can hold one
        return
    assert canonical_bytes(value) == expected


def test_floats_below_1e_4_keep_the_json_modules_exponent() -> None:
    record = {"data": {"ratio": 1e-05, "tiny": [2.5e-07], "big": 1e16, "zero": 0.0}}
    assert canonical_bytes(record) == b'{"data":{"big":1e+16,"ratio":1e-05,"tiny":[2.5e-07],"zero":0.0}}'
    assert canonical_bytes(record) == canonical(record).encode("utf-8")


def test_the_chain_hash_is_the_documented_one() -> None:
    record = {"position": 1, "data": {"name": "Störung", "ratio": 0.25, "n": 2**70}}
    text = GENESIS + json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert chain_hash(GENESIS, record) == hashlib.sha256(text.encode("utf-8")).hexdigest()
