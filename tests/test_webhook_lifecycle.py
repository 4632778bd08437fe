"""A webhook's life through the gateway: create, update, switch, rotate, delete; lists, pages, filters."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.queries import (
    CREATE_WEBHOOK,
    DELETE_WEBHOOK,
    DELIVERIES,
    PUBLISH,
    ROTATE,
    SET_ACTIVE,
    UPDATE_WEBHOOK,
    WEBHOOK,
    WEBHOOKS,
    webhook_input,
)
from tests.support import Receiver, Server, wait_until

# The fields a change of one other field must leave as they are.
UNTOUCHED = ("id", "signingSecret", "createdAt", "active", "disabledReason")


def create(server: Server, key: str, target: str, **overrides: object) -> dict[str, Any]:
    created = server.gql(key, CREATE_WEBHOOK, {"input": webhook_input(target, **overrides)}).ok()
    webhook = created["createWebhook"]
    assert isinstance(webhook, dict)
    return webhook


def read(server: Server, key: str, webhook_id: str) -> Any:
    return server.gql(key, WEBHOOK, {"id": webhook_id}).ok()["webhook"]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def without(webhook: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in webhook.items() if k not in names}


def secret_bytes(secret: str) -> bytes:
    assert secret.startswith("whsec_"), secret
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as error:
        raise AssertionError(f"not base64 after the prefix: {secret!r}") from error


FULL = {
    "description": "Sends P1 alerts to the on-call tool",
    "eventTypes": ["alert.activated", "ticket.created"],
    "method": "PUT",
    "headers": [{"name": "X-Team", "value": "ops"}],
    "payloadTemplate": '{"event": "{{event_id}}"}',  # envelope variables: declared by every type
    "filters": [{"conditions": [{"field": "severity", "operator": "GTE", "values": [3]}]}],
    "rateLimitPerSecond": 10,
}


# -- create ----------------------------------------------------------------------------------------


def test_a_created_webhook_is_at_version_1_with_a_fresh_signing_secret(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")

    first = create(open_server, admin, "https://example.com/hooks/1", **FULL)
    second = create(open_server, admin, "https://example.com/hooks/2", **FULL)

    assert first["version"] == 1
    assert first["active"] is True
    assert first["disabledReason"] is None
    assert len(secret_bytes(first["signingSecret"])) >= 24
    assert first["signingSecret"] != second["signingSecret"]
    assert first["id"] != second["id"]
    assert instant(first["createdAt"]) <= instant(first["updatedAt"])
    for name, value in FULL.items():
        assert first[name] == value, name
    assert read(open_server, admin, first["id"]) == first


# -- update ----------------------------------------------------------------------------------------


def test_an_update_changes_only_the_given_fields_and_adds_a_version(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    before = create(open_server, admin, "https://example.com/hooks", **FULL)

    after = open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": before["id"], "input": {"name": "Renamed", "rateLimitPerSecond": 5}}
    ).ok()["updateWebhook"]

    assert after["name"] == "Renamed"
    assert after["rateLimitPerSecond"] == 5
    assert after["version"] == before["version"] + 1
    assert instant(after["updatedAt"]) > instant(before["updatedAt"])
    assert without(after, "name", "rateLimitPerSecond", "version", "updatedAt") == without(
        before, "name", "rateLimitPerSecond", "version", "updatedAt"
    )
    assert read(open_server, admin, before["id"]) == after


def test_each_updatable_field_changes_alone(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    current = create(open_server, admin, "https://example.com/hooks", **FULL)
    changes: dict[str, Any] = {
        "name": "Another name",
        "description": "Another description",
        "eventTypes": ["ticket.updated"],
        "targetUrl": "https://example.com/elsewhere",
        "method": "PATCH",
        "headers": [{"name": "X-Other", "value": "1"}],
        "payloadTemplate": '{"kind": "{{event_type}}"}',
        "filters": [],
        "rateLimitPerSecond": None,
    }
    for name, value in changes.items():
        updated = open_server.gql(admin, UPDATE_WEBHOOK, {"id": current["id"], "input": {name: value}}).ok()[
            "updateWebhook"
        ]

        assert updated[name] == value, name
        assert updated["version"] == current["version"] + 1, name
        assert without(updated, name, "version", "updatedAt") == without(
            current, name, "version", "updatedAt"
        )
        current = updated


def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = create(open_server, admin, "https://example.com/hooks", description="first")
    at_2 = open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": "Second"}, "expectedVersion": 1}
    ).ok()["updateWebhook"]
    assert at_2["version"] == 2

    stale = open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": "Lost"}, "expectedVersion": 1}
    )
    ahead = open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": "Lost"}, "expectedVersion": 3}
    )

    assert stale.codes == ["CONFLICT"]
    assert ahead.codes == ["CONFLICT"]
    assert stale.data is None
    assert read(open_server, admin, created["id"]) == at_2

    current = open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"name": "Third"}, "expectedVersion": 2}
    ).ok()["updateWebhook"]
    assert current["name"] == "Third"
    assert current["version"] == 3


def test_a_null_description_clears_it(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = create(open_server, admin, "https://example.com/hooks", **FULL)

    cleared = open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"description": None}}
    ).ok()["updateWebhook"]

    assert cleared["description"] is None
    assert cleared["version"] == 2
    assert without(cleared, "description", "version", "updatedAt") == without(
        created, "description", "version", "updatedAt"
    )
    assert read(open_server, admin, created["id"])["description"] is None


# -- switching on and off --------------------------------------------------------------------------


def test_set_active_toggles_and_a_repeat_changes_nothing(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = create(open_server, admin, "https://example.com/hooks")

    def set_active(active: bool) -> Any:
        return open_server.gql(admin, SET_ACTIVE, {"id": created["id"], "active": active}).ok()[
            "setWebhookActive"
        ]

    off = set_active(False)
    assert off["active"] is False
    assert off["disabledReason"] is None  # switched by an admin
    assert off["version"] == 2
    assert instant(off["updatedAt"]) > instant(created["updatedAt"])
    assert without(off, "active", "version", "updatedAt") == without(
        created, "active", "version", "updatedAt"
    )

    off_again = set_active(False)
    assert off_again == off

    on = set_active(True)
    assert on["active"] is True
    assert on["version"] == 3

    on_again = set_active(True)
    assert on_again == on
    assert read(open_server, admin, created["id"]) == on


# -- delete ----------------------------------------------------------------------------------------


def test_a_deleted_webhook_is_gone_for_every_operation(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    kept = create(open_server, admin, "https://example.com/kept")
    deleted = create(open_server, admin, "https://example.com/deleted")

    assert open_server.gql(admin, DELETE_WEBHOOK, {"id": deleted["id"]}).ok() == {"deleteWebhook": True}

    assert read(open_server, admin, deleted["id"]) is None
    listed = open_server.gql(admin, WEBHOOKS, {}).ok()["webhooks"]
    assert [edge["node"]["id"] for edge in listed["edges"]] == [kept["id"]]
    assert listed["totalCount"] == 1
    inactive = open_server.gql(admin, WEBHOOKS, {"active": False}).ok()["webhooks"]
    assert inactive["totalCount"] == 0
    assert inactive["edges"] == []
    for document, variables in [
        (UPDATE_WEBHOOK, {"id": deleted["id"], "input": {"name": "Back"}}),
        (SET_ACTIVE, {"id": deleted["id"], "active": True}),
        (ROTATE, {"id": deleted["id"]}),
        (DELETE_WEBHOOK, {"id": deleted["id"]}),
    ]:
        assert open_server.gql(admin, document, variables).codes == ["NOT_FOUND"], document
    assert read(open_server, admin, kept["id"]) == kept


def test_a_deleted_webhooks_configuration_may_be_created_again(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    deleted = create(open_server, admin, "https://example.com/hooks")
    open_server.gql(admin, DELETE_WEBHOOK, {"id": deleted["id"]}).ok()

    again = create(open_server, admin, "https://example.com/hooks")

    assert again["id"] != deleted["id"]


# -- rotation --------------------------------------------------------------------------------------


def test_after_rotation_deliveries_carry_signatures_of_the_new_and_the_old_secret(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    admin = open_server.key(org, "admin")
    publisher = open_server.key(org, "publisher")
    created = create(open_server, admin, receiver.url + "/rotated")
    old = created["signingSecret"]

    rotated = open_server.gql(admin, ROTATE, {"id": created["id"]}).ok()["rotateSigningSecret"]
    new = rotated["signingSecret"]

    assert new != old
    assert len(secret_bytes(new)) >= 24
    assert rotated["version"] == created["version"] + 1
    assert without(rotated, "signingSecret", "version", "updatedAt") == without(
        created, "signingSecret", "version", "updatedAt"
    )
    assert read(open_server, admin, created["id"])["signingSecret"] == new

    published = open_server.gql(
        publisher, PUBLISH, {"input": {"type": "alert.activated", "payload": {"alert_name": "Disk full"}}}
    ).ok()["publishEvent"]
    (request,) = receiver.wait_for(1)

    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    for secret in (new, old):
        body = StandardWebhook(secret).verify(request.body, request.headers)
        assert body["id"] == published["eventId"]
        assert body["data"] == {"alert_name": "Disk full"}
    with pytest.raises(WebhookVerificationError):
        StandardWebhook("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()).verify(
            request.body, request.headers
        )


# -- the webhooks list -----------------------------------------------------------------------------


def test_webhooks_page_newest_first_through_every_page(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = [
        create(open_server, admin, "https://example.com/same", name=f"Hook {i}", allowDuplicate=True)["id"]
        for i in range(7)
    ]

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = open_server.gql(admin, WEBHOOKS, {"first": 3, "after": after}).ok()["webhooks"]
        pages.append(page)
        assert page["totalCount"] == 7
        assert page["edges"], "an empty page before the end"
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert len(pages) < 5, "paging does not end"

    assert [len(p["edges"]) for p in pages] == [3, 3, 1]
    assert seen == list(reversed(created))
    assert len(set(seen)) == 7


def test_a_page_of_exactly_the_rest_has_no_next_page(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    for i in range(4):
        create(open_server, admin, f"https://example.com/{i}")

    first = open_server.gql(admin, WEBHOOKS, {"first": 2}).ok()["webhooks"]
    second = open_server.gql(admin, WEBHOOKS, {"first": 2, "after": first["pageInfo"]["endCursor"]}).ok()[
        "webhooks"
    ]

    assert first["pageInfo"]["hasNextPage"] is True
    assert len(second["edges"]) == 2
    assert second["pageInfo"]["hasNextPage"] is False
    assert second["totalCount"] == 4


@pytest.fixture(scope="module")
def assorted(open_server: Server) -> tuple[str, list[dict[str, Any]]]:
    """Seven webhooks of an organisation of their own (only read): 0, 3, 6 inactive; 0, 2, 4, 6 tickets."""
    admin = open_server.key(f"org-{uuid.uuid4().hex[:12]}", "admin")
    webhooks = [
        create(
            open_server,
            admin,
            f"https://example.com/{i}",
            active=i % 3 != 0,
            eventTypes=["ticket.created", "ticket.updated"] if i % 2 == 0 else ["alert.activated"],
        )
        for i in range(7)
    ]
    return admin, webhooks


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"active": False}, [6, 3, 0]),
        ({"active": True}, [5, 4, 2, 1]),
        ({"eventType": "ticket.created"}, [6, 4, 2, 0]),
        ({"eventType": "ticket.updated"}, [6, 4, 2, 0]),
        ({"eventType": "alert.activated"}, [5, 3, 1]),
        ({"eventType": "ticket.created", "active": False}, [6, 0]),
        ({"eventType": "ticket"}, []),
        ({"eventType": "nothing.here"}, []),
        ({}, [6, 5, 4, 3, 2, 1, 0]),
    ],
    ids=str,
)
def test_webhooks_filters_return_exactly_the_matching_ones(
    open_server: Server,
    assorted: tuple[str, list[dict[str, Any]]],
    filters: dict[str, Any],
    expected: list[int],
) -> None:
    admin, webhooks = assorted

    page = open_server.gql(admin, WEBHOOKS, filters).ok()["webhooks"]

    assert [edge["node"]["id"] for edge in page["edges"]] == [webhooks[i]["id"] for i in expected]
    assert page["totalCount"] == len(expected)
    assert page["pageInfo"]["hasNextPage"] is False


def test_a_filtered_list_pages_with_the_filters_total(
    open_server: Server, assorted: tuple[str, list[dict[str, Any]]]
) -> None:
    admin, webhooks = assorted

    first = open_server.gql(admin, WEBHOOKS, {"first": 2, "eventType": "ticket.created"}).ok()["webhooks"]
    rest = open_server.gql(
        admin,
        WEBHOOKS,
        {"first": 2, "eventType": "ticket.created", "after": first["pageInfo"]["endCursor"]},
    ).ok()["webhooks"]

    ids = [edge["node"]["id"] for page in (first, rest) for edge in page["edges"]]
    assert ids == [webhooks[i]["id"] for i in (6, 4, 2, 0)]
    assert first["totalCount"] == rest["totalCount"] == 4
    assert first["pageInfo"]["hasNextPage"] is True
    assert rest["pageInfo"]["hasNextPage"] is False


def test_switching_a_webhook_off_moves_it_between_the_active_filters(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    created = create(open_server, admin, "https://example.com/hooks")
    open_server.gql(admin, SET_ACTIVE, {"id": created["id"], "active": False}).ok()

    def totals() -> tuple[int, int]:
        on = open_server.gql(admin, WEBHOOKS, {"active": True}).ok()["webhooks"]["totalCount"]
        off = open_server.gql(admin, WEBHOOKS, {"active": False}).ok()["webhooks"]["totalCount"]
        return on, off

    assert totals() == (0, 1)
    open_server.gql(admin, SET_ACTIVE, {"id": created["id"], "active": True}).ok()
    assert totals() == (1, 0)


def test_changing_event_types_moves_a_webhook_between_the_event_type_filters(
    open_server: Server, org: str
) -> None:
    admin = open_server.key(org, "admin")
    created = create(open_server, admin, "https://example.com/hooks", eventTypes=["ticket.created"])
    open_server.gql(
        admin, UPDATE_WEBHOOK, {"id": created["id"], "input": {"eventTypes": ["ticket.deleted"]}}
    ).ok()

    def listed(event_type: str) -> list[str]:
        page = open_server.gql(admin, WEBHOOKS, {"eventType": event_type}).ok()["webhooks"]
        return [edge["node"]["id"] for edge in page["edges"]]

    assert listed("ticket.created") == []
    assert listed("ticket.deleted") == [created["id"]]


@pytest.mark.parametrize("first", [0, -1, 501])
@pytest.mark.parametrize("document", [WEBHOOKS, DELIVERIES], ids=["webhooks", "deliveries"])
def test_a_page_size_outside_1_to_500_is_bad_user_input(
    open_server: Server, assorted: tuple[str, list[dict[str, Any]]], document: str, first: int
) -> None:
    admin, _ = assorted

    result = open_server.gql(admin, document, {"first": first})

    assert result.codes == ["BAD_USER_INPUT"]
    assert result.fields == ["first"]


@pytest.mark.parametrize("document", [WEBHOOKS, DELIVERIES], ids=["webhooks", "deliveries"])
def test_page_sizes_1_and_500_are_accepted(
    open_server: Server, assorted: tuple[str, list[dict[str, Any]]], document: str
) -> None:
    admin, _ = assorted
    for first in (1, 500):
        open_server.gql(admin, document, {"first": first}).ok()


# -- the deliveries list ---------------------------------------------------------------------------


def test_deliveries_filter_by_webhook_event_and_status(
    open_server: Server, receiver: Receiver, org: str
) -> None:
    # 410 Gone is the one failure that is final at once (no retries), whatever the retry schedule.
    receiver.respond = lambda r: (410, {}, "gone") if r.path.startswith("/gone") else (200, {}, "ok")
    admin = open_server.key(org, "admin")
    publisher = open_server.key(org, "publisher")
    good = create(open_server, admin, receiver.url + "/working")["id"]
    gone = create(open_server, admin, receiver.url + "/gone")["id"]

    def publish(n: int) -> str:
        event = {"type": "alert.activated", "payload": {"n": n}}
        return str(open_server.gql(publisher, PUBLISH, {"input": event}).ok()["publishEvent"]["eventId"])

    def finished(count: int) -> Callable[[], list[dict[str, Any]] | None]:
        def check() -> list[dict[str, Any]] | None:
            page = open_server.gql(admin, DELIVERIES, {}).ok()["deliveries"]
            nodes = [edge["node"] for edge in page["edges"]]
            done = len(nodes) == count and all(n["status"] in ("SUCCEEDED", "FAILED") for n in nodes)
            return nodes if done else None

        return check

    first = publish(1)
    wait_until(finished(2))
    # Switched off (if the 410 has not done it already), so the second event goes to `good` only.
    open_server.gql(admin, SET_ACTIVE, {"id": gone, "active": False}).ok()
    second = publish(2)
    everything = wait_until(finished(3))
    assert {(n["webhookId"], n["eventId"]) for n in everything} == {
        (good, first),
        (gone, first),
        (good, second),
    }

    def listed(**filters: Any) -> set[tuple[str, str, str]]:
        page = open_server.gql(admin, DELIVERIES, filters).ok()["deliveries"]
        found = {(e["node"]["webhookId"], e["node"]["eventId"], e["node"]["status"]) for e in page["edges"]}
        assert page["totalCount"] == len(page["edges"]) == len(found)
        return found

    ok, failed = "SUCCEEDED", "FAILED"
    assert listed(webhookId=good) == {(good, first, ok), (good, second, ok)}
    assert listed(webhookId=gone) == {(gone, first, failed)}
    assert listed(eventId=first) == {(good, first, ok), (gone, first, failed)}
    assert listed(eventId=second) == {(good, second, ok)}
    assert listed(status=ok) == {(good, first, ok), (good, second, ok)}
    assert listed(status=failed) == {(gone, first, failed)}
    assert listed(webhookId=good, eventId=second) == {(good, second, ok)}
    assert listed(webhookId=gone, eventId=second) == set()
    assert listed(webhookId=gone, status=ok) == set()
    assert listed(eventId=first, status=failed) == {(gone, first, failed)}
    assert listed(status="PENDING") == set()
    assert listed(status="RETRYING") == set()
