"""Who may do what, and nothing across organisations: the contract's role table, operation by operation."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.queries import (
    CREATE_WEBHOOK,
    DELETE_WEBHOOK,
    DELIVERIES,
    DELIVERY,
    PUBLISH,
    ROTATE,
    SET_ACTIVE,
    UPDATE_WEBHOOK,
    WEBHOOK,
    WEBHOOKS,
    webhook_input,
)
from tests.support import GraphQLResult, Receiver, Server, wait_until

ROLES = ("admin", "publisher", "auditor", "viewer")
DELIVERED_TYPE = "access.delivered"  # the type the setup's delivery is of
UNUSED_TYPE = "access.unused"  # webhooks made per test subscribe to it, so that no event reaches them
PUBLISHED_TYPE = "access.published"  # what publishEvent sends here; nothing subscribes to it


@dataclass
class World:
    """Organisation A with a key of every role, one webhook and one delivered event; organisation B."""

    server: Server
    receiver: Receiver
    org: str
    keys: dict[str, str]
    webhook_id: str
    event_id: str
    delivery_id: str
    other_org: str
    other_admin: str
    other_publisher: str

    @property
    def admin(self) -> str:
        return self.keys["admin"]


@pytest.fixture(scope="module")
def world(open_server: Server) -> Iterator[World]:
    with Receiver() as receiver:
        org = f"org-a-{uuid.uuid4().hex[:12]}"
        keys = {role: open_server.key(org, role) for role in ROLES}
        webhook = open_server.gql(
            keys["admin"],
            CREATE_WEBHOOK,
            {"input": webhook_input(receiver.url + "/a", eventTypes=[DELIVERED_TYPE])},
        ).ok()["createWebhook"]
        event = open_server.gql(
            keys["publisher"], PUBLISH, {"input": {"type": DELIVERED_TYPE, "payload": {"n": 1}}}
        ).ok()["publishEvent"]

        def delivered() -> str | None:
            page = open_server.gql(keys["admin"], DELIVERIES, {"eventId": event["eventId"]}).ok()
            edges = page["deliveries"]["edges"]
            if edges and edges[0]["node"]["status"] == "SUCCEEDED":
                return str(edges[0]["node"]["id"])
            return None

        delivery_id = wait_until(delivered)
        other_org = f"org-b-{uuid.uuid4().hex[:12]}"
        yield World(
            server=open_server,
            receiver=receiver,
            org=org,
            keys=keys,
            webhook_id=webhook["id"],
            event_id=event["eventId"],
            delivery_id=delivery_id,
            other_org=other_org,
            other_admin=open_server.key(other_org, "admin"),
            other_publisher=open_server.key(other_org, "publisher"),
        )


@pytest.fixture
def target(world: World) -> dict[str, Any]:
    """A webhook of organisation A of its own, as its admin sees it, for a test to act on."""
    created = world.server.gql(
        world.admin,
        CREATE_WEBHOOK,
        {
            "input": webhook_input(
                f"{world.receiver.url}/t/{uuid.uuid4().hex}",
                eventTypes=[UNUSED_TYPE],
                description="kept as it is",
            )
        },
    ).ok()["createWebhook"]
    assert isinstance(created, dict)
    return created


def read_webhook(world: World, webhook_id: str) -> Any:
    return world.server.gql(world.admin, WEBHOOK, {"id": webhook_id}).ok()["webhook"]


def total(world: World, key: str, document: str, name: str, variables: dict[str, Any] | None = None) -> int:
    return int(world.server.gql(key, document, variables).ok()[name]["totalCount"])


def node_ids(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]


def raw_gql(
    server: Server, authorization: str | None, query: str, variables: dict[str, Any]
) -> GraphQLResult:
    """A GraphQL request with exactly the given Authorization header (or none)."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(server.url + "/graphql", body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return GraphQLResult(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    assert status < 500, f"HTTP {status} from the gateway: {payload!r}"
    return GraphQLResult(json.loads(payload))


def field_value(result: GraphQLResult, name: str) -> Any:
    """The root field's value; None when the error nulled it or the whole `data`."""
    return (result.data or {}).get(name)


# -- the operations that exist now ------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    world: World
    webhook: dict[str, Any]  # the target webhook as its admin saw it before the call
    idempotency_key: str


@dataclass(frozen=True)
class Operation:
    name: str  # the root field
    document: str
    kind: str  # "read", "manage" or "publish"
    variables: Callable[[Case], dict[str, Any]]
    succeeded: Callable[[Any, Case], None]  # checks the root field's value when the call was allowed


def _listed_webhook(value: Any, case: Case) -> None:
    assert case.webhook["id"] in node_ids(value)


def _the_webhook(value: Any, case: Case) -> None:
    assert value["id"] == case.webhook["id"]
    assert value["name"] == case.webhook["name"]


def _the_delivery(value: Any, case: Case) -> None:
    assert value["id"] == case.world.delivery_id
    assert value["eventId"] == case.world.event_id


def _listed_delivery(value: Any, case: Case) -> None:
    assert case.world.delivery_id in node_ids(value)


def _created(value: Any, case: Case) -> None:
    assert value["id"]
    assert value["id"] != case.webhook["id"]
    assert value["version"] == 1


def _renamed(value: Any, case: Case) -> None:
    assert value["id"] == case.webhook["id"]
    assert value["name"] == "Renamed by the test"
    assert value["version"] == case.webhook["version"] + 1


def _deactivated(value: Any, case: Case) -> None:
    assert value["active"] is False
    assert value["version"] == case.webhook["version"] + 1


def _deleted(value: Any, case: Case) -> None:
    assert value is True
    assert read_webhook(case.world, case.webhook["id"]) is None


def _rotated(value: Any, case: Case) -> None:
    assert value["signingSecret"].startswith("whsec_")
    assert value["signingSecret"] != case.webhook["signingSecret"]


def _published(value: Any, case: Case) -> None:
    assert value["eventId"]
    assert value["duplicate"] is False


OPERATIONS = [
    Operation("webhooks", WEBHOOKS, "read", lambda c: {}, _listed_webhook),
    Operation("webhook", WEBHOOK, "read", lambda c: {"id": c.webhook["id"]}, _the_webhook),
    Operation("delivery", DELIVERY, "read", lambda c: {"id": c.world.delivery_id}, _the_delivery),
    Operation("deliveries", DELIVERIES, "read", lambda c: {}, _listed_delivery),
    Operation(
        "createWebhook",
        CREATE_WEBHOOK,
        "manage",
        lambda c: {
            "input": webhook_input(
                f"{c.world.receiver.url}/new/{c.idempotency_key}", eventTypes=[UNUSED_TYPE]
            )
        },
        _created,
    ),
    Operation(
        "updateWebhook",
        UPDATE_WEBHOOK,
        "manage",
        lambda c: {"id": c.webhook["id"], "input": {"name": "Renamed by the test"}},
        _renamed,
    ),
    Operation(
        "setWebhookActive",
        SET_ACTIVE,
        "manage",
        lambda c: {"id": c.webhook["id"], "active": False},
        _deactivated,
    ),
    Operation("deleteWebhook", DELETE_WEBHOOK, "manage", lambda c: {"id": c.webhook["id"]}, _deleted),
    Operation("rotateSigningSecret", ROTATE, "manage", lambda c: {"id": c.webhook["id"]}, _rotated),
    Operation(
        "publishEvent",
        PUBLISH,
        "publish",
        lambda c: {
            "input": {"type": PUBLISHED_TYPE, "payload": {"n": 1}, "idempotencyKey": c.idempotency_key}
        },
        _published,
    ),
]
BY_NAME = {operation.name: operation for operation in OPERATIONS}
ALLOWED = {
    "read": {"admin", "auditor", "viewer"},
    "manage": {"admin"},
    "publish": {"admin", "publisher"},
}
MUTATIONS_ON_A_WEBHOOK = ["updateWebhook", "setWebhookActive", "deleteWebhook", "rotateSigningSecret"]


def assert_nothing_changed(case: Case, webhooks_before: int) -> None:
    """The target webhook is as it was, no webhook was added, and the idempotency key is still unused."""
    world = case.world
    assert read_webhook(world, case.webhook["id"]) == case.webhook
    assert total(world, world.admin, WEBHOOKS, "webhooks") == webhooks_before
    again = world.server.gql(
        world.admin,
        PUBLISH,
        {"input": {"type": PUBLISHED_TYPE, "payload": {"n": 2}, "idempotencyKey": case.idempotency_key}},
    ).ok()["publishEvent"]
    assert again["duplicate"] is False, "the refused call recorded an event"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
def test_each_role_may_do_exactly_what_the_role_table_allows(
    world: World, target: dict[str, Any], operation: Operation, role: str
) -> None:
    case = Case(world=world, webhook=target, idempotency_key=uuid.uuid4().hex)
    webhooks_before = total(world, world.admin, WEBHOOKS, "webhooks")

    result = world.server.gql(world.keys[role], operation.document, operation.variables(case))

    if role in ALLOWED[operation.kind]:
        value = result.ok()[operation.name]
        operation.succeeded(value, case)
    else:
        assert result.codes == ["FORBIDDEN"], result.errors
        assert field_value(result, operation.name) is None
        assert_nothing_changed(case, webhooks_before)


FORBIDDEN_WITH_AN_ID = [
    (name, role)
    for name in ["webhook", "delivery", *MUTATIONS_ON_A_WEBHOOK]
    for role in ROLES
    if role not in ALLOWED[BY_NAME[name].kind]
]


@pytest.mark.parametrize("given_id", ["nope", "00000000-0000-4000-8000-000000000000"])
@pytest.mark.parametrize(("name", "role"), FORBIDDEN_WITH_AN_ID)
def test_a_role_without_the_permission_is_forbidden_whatever_id_it_names(
    world: World, name: str, role: str, given_id: str
) -> None:
    """The role is checked before the id: a forbidden caller learns nothing from the id it sends."""
    operation = BY_NAME[name]
    variables: dict[str, Any] = {"id": given_id}
    if name == "updateWebhook":
        variables["input"] = {"name": "x"}
    elif name == "setWebhookActive":
        variables["active"] = False

    result = world.server.gql(world.keys[role], operation.document, variables)

    assert result.codes == ["FORBIDDEN"], result.errors


@pytest.mark.parametrize("role", ["admin", "auditor", "viewer"])
def test_only_admins_read_the_signing_secret(world: World, target: dict[str, Any], role: str) -> None:
    secret = target["signingSecret"]
    assert secret.startswith("whsec_")

    single = world.server.gql(world.keys[role], WEBHOOK, {"id": target["id"]}).ok()["webhook"]
    listed = {
        edge["node"]["id"]: edge["node"]
        for edge in world.server.gql(world.keys[role], WEBHOOKS, {"first": 500}).ok()["webhooks"]["edges"]
    }[target["id"]]

    for seen in (single, listed):
        assert seen["name"] == target["name"]
        if role == "admin":
            assert seen["signingSecret"] == secret
        else:
            assert seen["signingSecret"] is None


# -- authentication ---------------------------------------------------------------------------


def _unknown_key() -> str:
    return f"hkl_{uuid.uuid4().hex}_{secrets.token_urlsafe(32)}"


def _real_id_wrong_secret(world: World) -> str:
    prefix = world.admin[: len("hkl_") + 32 + 1]
    return prefix + secrets.token_urlsafe(32)


AUTHORIZATIONS: dict[str, Callable[[World], str | None]] = {
    "no header": lambda w: None,
    "empty header": lambda w: "",
    "Bearer without a key": lambda w: "Bearer ",
    "malformed key": lambda w: "Bearer not-a-hookline-key",
    "truncated key": lambda w: "Bearer " + w.admin[:-5],
    "unknown well-formed key": lambda w: "Bearer " + _unknown_key(),
    "known key id, wrong secret": lambda w: "Bearer " + _real_id_wrong_secret(w),
    "Basic user:password": lambda w: "Basic " + base64.b64encode(b"admin:password").decode(),
    "Basic with a real key": lambda w: "Basic " + w.admin,
    "a real key without a scheme": lambda w: w.admin,
}


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
@pytest.mark.parametrize("authorization", list(AUTHORIZATIONS))
def test_a_request_without_a_valid_bearer_key_is_unauthenticated(
    world: World, target: dict[str, Any], authorization: str, operation: Operation
) -> None:
    case = Case(world=world, webhook=target, idempotency_key=uuid.uuid4().hex)
    webhooks_before = total(world, world.admin, WEBHOOKS, "webhooks")

    result = raw_gql(
        world.server, AUTHORIZATIONS[authorization](world), operation.document, operation.variables(case)
    )

    assert result.codes == ["UNAUTHENTICATED"], result.errors
    assert field_value(result, operation.name) is None
    assert_nothing_changed(case, webhooks_before)


def test_the_gql_helper_without_a_key_is_unauthenticated(world: World) -> None:
    result = world.server.gql(None, WEBHOOKS, {})
    assert result.codes == ["UNAUTHENTICATED"]
    assert result.data is None


# -- organisations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What organisation B's admin sends about organisation A's things, and what it must see."""

    document: str
    variables: Callable[[World, dict[str, Any]], dict[str, Any]]
    check: Callable[[GraphQLResult, World, dict[str, Any]], None]


def _null(name: str) -> Callable[[GraphQLResult, World, dict[str, Any]], None]:
    def check(result: GraphQLResult, world: World, target: dict[str, Any]) -> None:
        assert result.ok()[name] is None

    return check


def _not_found(result: GraphQLResult, world: World, target: dict[str, Any]) -> None:
    assert result.codes == ["NOT_FOUND"], result.errors


def _no_webhook_of_a(result: GraphQLResult, world: World, target: dict[str, Any]) -> None:
    connection = result.ok()["webhooks"]
    seen = node_ids(connection)
    assert target["id"] not in seen
    assert world.webhook_id not in seen
    assert connection["totalCount"] == len(seen)  # B has only what B created


def _no_delivery_of_a(result: GraphQLResult, world: World, target: dict[str, Any]) -> None:
    connection = result.ok()["deliveries"]
    assert world.delivery_id not in node_ids(connection)
    assert {edge["node"]["webhookId"] for edge in connection["edges"]} & {
        world.webhook_id,
        target["id"],
    } == set()
    assert connection["totalCount"] == len(connection["edges"])  # B has only what B published


def _no_delivery(result: GraphQLResult, world: World, target: dict[str, Any]) -> None:
    connection = result.ok()["deliveries"]
    assert connection["totalCount"] == 0
    assert connection["edges"] == []


ISOLATION = {
    "webhook": Probe(WEBHOOK, lambda w, t: {"id": t["id"]}, _null("webhook")),
    "delivery": Probe(DELIVERY, lambda w, t: {"id": w.delivery_id}, _null("delivery")),
    "updateWebhook": Probe(
        UPDATE_WEBHOOK, lambda w, t: {"id": t["id"], "input": {"name": "Taken over"}}, _not_found
    ),
    "updateWebhook with A's current version": Probe(
        UPDATE_WEBHOOK,
        lambda w, t: {"id": t["id"], "input": {"name": "Taken over"}, "expectedVersion": t["version"]},
        _not_found,
    ),
    "updateWebhook with a stale version": Probe(
        UPDATE_WEBHOOK,
        lambda w, t: {"id": t["id"], "input": {"name": "Taken over"}, "expectedVersion": 99},
        _not_found,  # not CONFLICT: that would tell that the webhook exists
    ),
    "setWebhookActive false": Probe(SET_ACTIVE, lambda w, t: {"id": t["id"], "active": False}, _not_found),
    "setWebhookActive true": Probe(SET_ACTIVE, lambda w, t: {"id": t["id"], "active": True}, _not_found),
    "deleteWebhook": Probe(DELETE_WEBHOOK, lambda w, t: {"id": t["id"]}, _not_found),
    "rotateSigningSecret": Probe(ROTATE, lambda w, t: {"id": t["id"]}, _not_found),
    "webhooks": Probe(WEBHOOKS, lambda w, t: {"first": 500}, _no_webhook_of_a),
    "webhooks of A's event type": Probe(
        WEBHOOKS, lambda w, t: {"first": 500, "eventType": DELIVERED_TYPE}, _no_webhook_of_a
    ),
    "deliveries": Probe(DELIVERIES, lambda w, t: {"first": 500}, _no_delivery_of_a),
    "deliveries that succeeded": Probe(DELIVERIES, lambda w, t: {"status": "SUCCEEDED"}, _no_delivery_of_a),
    "deliveries of A's webhook": Probe(DELIVERIES, lambda w, t: {"webhookId": w.webhook_id}, _no_delivery),
    "deliveries of A's event": Probe(DELIVERIES, lambda w, t: {"eventId": w.event_id}, _no_delivery),
    "deliveries of A's webhook that succeeded": Probe(
        DELIVERIES, lambda w, t: {"webhookId": w.webhook_id, "status": "SUCCEEDED"}, _no_delivery
    ),
}


@pytest.mark.parametrize("probe", list(ISOLATION))
def test_another_organisations_admin_sees_and_changes_nothing_of_it(
    world: World, target: dict[str, Any], probe: str
) -> None:
    deliveries_before = total(world, world.admin, DELIVERIES, "deliveries")
    found = ISOLATION[probe]

    result = world.server.gql(world.other_admin, found.document, found.variables(world, target))

    found.check(result, world, target)
    assert "INTERNAL_SERVER_ERROR" not in result.codes
    assert read_webhook(world, target["id"]) == target
    assert read_webhook(world, world.webhook_id)["version"] == 1
    assert total(world, world.admin, DELIVERIES, "deliveries") == deliveries_before


def test_the_same_configuration_in_another_organisation_is_no_duplicate(
    world: World, target: dict[str, Any]
) -> None:
    same = {
        "name": target["name"],
        "eventTypes": target["eventTypes"],
        "targetUrl": target["targetUrl"],
        "description": target["description"],
    }
    assert world.server.gql(world.admin, CREATE_WEBHOOK, {"input": same}).codes == ["CONFLICT"]

    created = world.server.gql(world.other_admin, CREATE_WEBHOOK, {"input": same}).ok()["createWebhook"]

    assert created["id"] != target["id"]
    assert read_webhook(world, target["id"]) == target


def test_an_idempotency_key_of_another_organisation_is_not_a_duplicate(world: World) -> None:
    key = uuid.uuid4().hex
    event = {"type": PUBLISHED_TYPE, "payload": {"n": 1}, "idempotencyKey": key}
    first = world.server.gql(world.keys["publisher"], PUBLISH, {"input": event}).ok()["publishEvent"]

    other = world.server.gql(world.other_publisher, PUBLISH, {"input": event}).ok()["publishEvent"]

    assert other["duplicate"] is False
    assert other["eventId"] != first["eventId"]


def test_an_event_of_another_organisation_reaches_none_of_its_webhooks(world: World) -> None:
    world.server.gql(
        world.other_admin,
        CREATE_WEBHOOK,
        {"input": webhook_input(world.receiver.url + "/b", eventTypes=[DELIVERED_TYPE], allowDuplicate=True)},
    ).ok()
    deliveries_before = total(world, world.admin, DELIVERIES, "deliveries")
    paths_before = [r.path for r in world.receiver.requests]

    world.server.gql(
        world.other_publisher, PUBLISH, {"input": {"type": DELIVERED_TYPE, "payload": {"n": 2}}}
    ).ok()

    # The event's one fan-out makes every delivery at once: B's arriving means A's would exist too.
    wait_until(lambda: "/b" in [r.path for r in world.receiver.requests[len(paths_before) :]])
    new_paths = [r.path for r in world.receiver.requests[len(paths_before) :]]
    assert "/a" not in new_paths
    assert total(world, world.admin, DELIVERIES, "deliveries") == deliveries_before


# -- ids that are not ids -----------------------------------------------------------------------

MALFORMED_IDS = ["nope", "", "12345", "x" * 1000, "../webhooks", "00000000-0000-0000-0000-000000000000"]


def _as_null(name: str) -> Callable[[GraphQLResult], None]:
    def check(result: GraphQLResult) -> None:
        assert result.ok()[name] is None

    return check


def _as_not_found(result: GraphQLResult) -> None:
    assert result.codes == ["NOT_FOUND"], result.errors


def _as_empty(result: GraphQLResult) -> None:
    connection = result.ok()["deliveries"]
    assert connection["totalCount"] == 0
    assert connection["edges"] == []


MALFORMED: dict[str, tuple[str, Callable[[str], dict[str, Any]], Callable[[GraphQLResult], None]]] = {
    "webhook": (WEBHOOK, lambda i: {"id": i}, _as_null("webhook")),
    "delivery": (DELIVERY, lambda i: {"id": i}, _as_null("delivery")),
    "updateWebhook": (UPDATE_WEBHOOK, lambda i: {"id": i, "input": {"name": "x"}}, _as_not_found),
    "setWebhookActive": (SET_ACTIVE, lambda i: {"id": i, "active": False}, _as_not_found),
    "deleteWebhook": (DELETE_WEBHOOK, lambda i: {"id": i}, _as_not_found),
    "rotateSigningSecret": (ROTATE, lambda i: {"id": i}, _as_not_found),
    "deliveries by webhookId": (DELIVERIES, lambda i: {"webhookId": i}, _as_empty),
    "deliveries by eventId": (DELIVERIES, lambda i: {"eventId": i}, _as_empty),
}


@pytest.mark.parametrize("given_id", MALFORMED_IDS, ids=lambda i: repr(i[:20]))
@pytest.mark.parametrize("operation", list(MALFORMED))
def test_an_id_that_names_nothing_is_null_or_not_found_never_an_internal_error(
    world: World, operation: str, given_id: str
) -> None:
    document, variables, check = MALFORMED[operation]

    result = world.server.gql(world.admin, document, variables(given_id))

    assert "INTERNAL_SERVER_ERROR" not in result.codes, result.errors
    check(result)
