"""The cycle collector after start-up: `serve` and every worker freeze what start-up made."""

from __future__ import annotations

import contextlib
import gc
import json
import weakref

from hookline.runtime import YOUNG_GC_THRESHOLD, settle_heap
from tests.support import Server


class _Node:
    peer: _Node


def test_settling_the_heap_freezes_what_exists_and_raises_the_young_threshold() -> None:
    threshold = gc.get_threshold()
    node = _Node()
    node.peer = node  # a cycle: garbage that the collection before the freeze frees
    garbage = weakref.ref(node)
    del node
    try:
        frozen = settle_heap()
        assert garbage() is None
        assert frozen == gc.get_freeze_count() > 1000  # pytest's and the project's modules, at least
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, threshold[1], threshold[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def _logged(text: str, event: str) -> dict[str, object]:
    """The first JSON log line of an event."""
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("event") == event:
                return entry
    raise AssertionError(f"nothing logged as {event!r}")


def test_serve_and_its_workers_settle_the_heap_once_started(open_server: Server) -> None:
    serve = _logged(open_server.output(), "start-up objects frozen for the cycle collector")
    assert isinstance(serve["objects"], int)
    assert serve["objects"] > 10_000
    if open_server.mode == "distributed":
        assert open_server.worker_processes
    for number in range(len(open_server.worker_processes)):
        text = (open_server.directory / f"worker-{number}.log").read_text(errors="replace")
        worker = _logged(text, "worker ready")
        assert isinstance(worker["frozen_objects"], int)
        assert worker["frozen_objects"] > 10_000
