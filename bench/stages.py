"""The store's share of a delivery: the pipeline's stages run synchronously, without HTTP or threads.

    .venv/bin/python -m bench.stages                 # 3 000 events to 1 webhook, batches of 100
    .venv/bin/python -m bench.stages --webhooks 20   # fan-out

The real application (SQLite store, encryption, read models, audit trail) in a temporary directory:
each round publishes a batch of events, lets the read models follow, fans the events out, follows,
prepares the deliveries, records a made-up successful attempt for each (nothing is sent), and follows.
Prints one JSON line: the CPU time (time.process_time, this one thread) of each stage per delivery,
in microseconds, and their total. What `bench.e2e` measures beyond this total per delivery is HTTP
(the gateway's and the sends), GraphQL, the event loop and the hand-offs between threads.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench.publisher import EVENT_TYPE, payload
from domain.application import PreparedDelivery
from domain.deliveries import Attempt
from domain.events import Publication
from domain.roles import Role
from domain.webhooks import WebhookSpec
from hookline.settings import Settings
from hookline.wiring import open_application

T = TypeVar("T")


def run(events: int, webhooks: int, batch: int, directory: Path) -> dict[str, Any]:
    settings = Settings(database_url=f"sqlite:///{directory}/hookline.sqlite3", allow_private_targets=True)
    app, views = (opened := open_application(settings)).app, opened.read_model
    app.saved_listeners.append(views.recorded)  # as `serve` does: its follower takes what it saved
    spent: dict[str, float] = {}

    def timed(stage: str, work: Callable[..., T], *args: Any) -> T:
        began = time.process_time()
        result = work(*args)
        spent[stage] = spent.get(stage, 0.0) + time.process_time() - began
        return result

    try:
        principal = app.authenticate(app.issue_key("bench", Role.ADMIN))
        for number in range(webhooks):
            spec = WebhookSpec(
                name=f"bench {number}", event_types=(EVENT_TYPE,), target_url=f"http://127.0.0.1:9/{number}"
            )
            app.create_webhook(principal, spec, active=True, allow_duplicate=True)
        views.catch_up()
        delivered = 0
        for first in range(0, events, batch):
            count = min(batch, events - first)
            publications = [
                Publication(type=EVENT_TYPE, payload=payload(first + k, "stages", time.time()))
                for k in range(count)
            ]
            published = timed("publish", app.publish_events, principal, publications)
            timed("follow published", views.catch_up)
            planned = timed("fan out", app.fan_out_many, [event_id for event_id, _ in published])
            timed("follow fanned out", views.catch_up)
            jobs = [(delivery_id, None) for ids in planned for delivery_id in ids]
            prepared = timed("prepare", app.prepare_deliveries, jobs)
            now = datetime.now(UTC)
            attempts = [
                (p.delivery, Attempt(p.delivery.next_attempt_number, now, 1.0, 200, None, "ok"))
                for p in prepared
                if isinstance(p, PreparedDelivery)
            ]
            assert len(attempts) == count * webhooks, (len(attempts), count * webhooks)
            timed("record", app.record_attempts, attempts)
            timed("follow recorded", views.catch_up)
            delivered += len(attempts)
    finally:
        app.close()
    per_delivery = {stage: round(seconds / delivered * 1e6, 1) for stage, seconds in spent.items()}
    return {
        "events": events,
        "webhooks": webhooks,
        "batch": batch,
        "deliveries": delivered,
        "us_per_delivery": per_delivery,
        "total_us_per_delivery": round(sum(spent.values()) / delivered * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--webhooks", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100, help="events per round")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hookline-stages-") as directory:
        print(json.dumps(run(options.events, options.webhooks, options.batch, Path(directory))))


if __name__ == "__main__":
    main()
