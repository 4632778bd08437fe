"""A value nested past the limit is refused where it comes in, so that nothing stored can stop the log.

A payload accepted 253 levels deep was written again inside its audit record, past orjson's 255 levels:
the log follower failed on it every second from then on, and no read model moved for any organisation.
Through a real `hookline serve` (and, distributed, its workers) with a real receiver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from domain.events import Event
from domain.nesting import MAX_NESTING
from domain.roles import Role
from hookline.wiring import utcnow
from tests.apps import opened
from tests.queries import CREATE_WEBHOOK, PUBLISH, webhook_input
from tests.support import Receiver, Server, wait_until

AUDIT_LOG = "query { auditLog(first: 500) { edges { node { eventType } } } }"


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_a_payload_nested_253_levels_is_refused_and_deliveries_keep_flowing(
    open_server: Server, org: str, receiver: Receiver
) -> None:
    admin, publisher = open_server.key(org, "admin"), open_server.key(org, "publisher")
    open_server.gql(
        admin, CREATE_WEBHOOK, {"input": webhook_input(receiver.url, eventTypes=["deep.event"])}
    ).ok()

    refused = open_server.gql(publisher, PUBLISH, {"input": {"type": "deep.event", "payload": nested(253)}})
    assert refused.codes == ["BAD_USER_INPUT"], refused
    assert refused.fields == ["payload"]
    assert f"at most {MAX_NESTING} levels" in refused.errors[0]["extensions"]["fields"][0]["message"]

    open_server.gql(
        publisher, PUBLISH, {"input": {"type": "deep.event", "payload": nested(MAX_NESTING)}}
    ).ok()
    open_server.gql(publisher, PUBLISH, {"input": {"type": "deep.event", "payload": {"n": 1}}}).ok()
    receiver.wait_for(2)

    def recorded() -> int:  # the follower applies the log: both events are in the audit trail
        edges = open_server.gql(admin, AUDIT_LOG).ok()["auditLog"]["edges"]
        return sum(1 for edge in edges if edge["node"]["eventType"] == "Event.Published") >= 2

    wait_until(recorded, timeout=10)


def test_a_filter_value_nested_253_levels_is_refused_naming_the_condition(
    open_server: Server, org: str, receiver: Receiver
) -> None:
    admin = open_server.key(org, "admin")
    condition = {"field": "ticket", "operator": "EQ", "values": [nested(253)]}
    webhook = webhook_input(receiver.url, filters=[{"conditions": [condition]}])

    refused = open_server.gql(admin, CREATE_WEBHOOK, {"input": webhook})

    assert refused.codes == ["BAD_USER_INPUT"], refused
    assert refused.fields == ["filters[0].conditions[0].values"]


def test_an_event_stored_before_the_limit_does_not_stop_the_log_follower(tmp_path: Path) -> None:
    """Payloads were refused only past orjson's own limit before: a store may hold one nested 253 levels,
    which its audit record nests deeper still. The follower applies it and goes on."""
    app, read_model = (both := opened(tmp_path)).app, both.read_model
    try:
        principal = app.authenticate(app.issue_key("acme", Role.ADMIN))
        app.save(Event(principal.organization_id, "deep.event", nested(253), utcnow(), None, principal.actor))
        app.save(Event(principal.organization_id, "deep.event", {"n": 1}, utcnow(), None, principal.actor))

        read_model.catch_up()

        assert read_model.position == app.recorder.max_notification_id()
        assert app.views.verify_audit(principal.organization_id).valid
    finally:
        app.close()
