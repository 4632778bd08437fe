"""Every query, mutation and subscription of schema.graphql, with a key of each role of the organisation
and with a key of each role of another organisation, against the contract's role table.

- A role the table allows, in its own organisation: the operation works (checked on its answer).
- A role it does not allow: FORBIDDEN, and nothing changes.
- Another organisation's key naming this organisation's ids: null, NOT_FOUND or an empty list (or,
  for operations that name no id, something of its own organisation), never data of this one, and
  nothing of this one changes.

The table must name every operation of the schema: a new operation without a row fails here.
Three organisations per mode: "frozen", which only refused or foreign calls reach (so any change in its
audit trail is a leak); "playground", where the allowed calls act; and "other", whose keys probe.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import graphql
import pytest

from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, WEBHOOK, webhook_input
from tests.support import GraphQLResult, Receiver, Server, wait_until

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"
ROLES = ("admin", "publisher", "auditor", "viewer")
EVERYONE = frozenset(ROLES)
ADMIN = frozenset({"admin"})
PUBLISHERS = frozenset({"admin", "publisher"})
READERS = frozenset({"admin", "auditor", "viewer"})  # webhooks (without secrets) and deliveries
AUDITORS = frozenset({"admin", "auditor"})  # and the audit log, credentials
DELIVERED = "iso.delivered"
GONE = "iso.gone"
DEFINED = "iso.defined"
EPOCH = "2000-01-01T00:00:00+00:00"

WEBHOOK_FIELDS = "id name version active signingSecret"
SET_RETENTION = (
    "mutation($i: RetentionPolicyInput!) { setRetentionPolicy(input: $i) { payloads deliveries } }"
)
SETTLED_RETENTION = {"payloads": "P11D", "deliveries": "P22D"}
MATRIX_RETENTION = {"payloads": "PT6H", "deliveries": "P2W"}


@dataclass
class World:
    """One organisation and its things, all settled: W delivered E (delivery D, SUCCEEDED), G answered
    410 to F (delivery F, FAILED; G switched off), a credential, a defined event type."""

    name: str
    keys: dict[str, str]
    webhook: str = ""
    gone_webhook: str = ""
    credential: str = ""
    event: str = ""
    delivery: str = ""
    failed_delivery: str = ""
    idempotency_key: str = ""

    @property
    def admin(self) -> str:
        return self.keys["admin"]


@dataclass
class Worlds:
    server: Server
    receiver: Receiver
    frozen: World
    playground: World
    other: World

    def fresh_webhook(self, event_type: str = "iso.unused") -> str:
        """A webhook of the playground of its own, for an allowed call to change."""
        spec = webhook_input(
            f"{self.receiver.url}/playground/fresh/{uuid.uuid4().hex}",
            eventTypes=[event_type],
            allowDuplicate=True,
        )
        created = self.server.gql(self.playground.admin, CREATE_WEBHOOK, {"input": spec}).ok()[
            "createWebhook"
        ]
        return str(created["id"])


def settle(server: Server, receiver: Receiver, world: World) -> None:
    admin = world.admin
    world.credential = server.gql(
        admin,
        "mutation($i: CreateCredentialInput!) { createCredential(input: $i) { id } }",
        {"i": {"name": "iso", "kind": "BEARER", "token": f"tok-{uuid.uuid4().hex}"}},
    ).ok()["createCredential"]["id"]
    server.gql(
        admin,
        "mutation($i: DefineEventTypeInput!) { defineEventType(input: $i) { name } }",
        {"i": {"name": DEFINED, "description": world.name, "samplePayload": {"owner": world.name}}},
    ).ok()
    world.webhook = server.gql(
        admin,
        CREATE_WEBHOOK,
        {
            "input": webhook_input(
                f"{receiver.url}/{world.name}/w", eventTypes=[DELIVERED], credentialId=world.credential
            )
        },
    ).ok()["createWebhook"]["id"]
    world.gone_webhook = server.gql(
        admin,
        CREATE_WEBHOOK,
        {"input": webhook_input(f"{receiver.url}/{world.name}/gone", eventTypes=[GONE])},
    ).ok()["createWebhook"]["id"]
    server.gql(admin, SET_RETENTION, {"i": SETTLED_RETENTION}).ok()
    world.idempotency_key = f"e-{uuid.uuid4().hex}"
    world.event = server.gql(
        world.keys["publisher"],
        PUBLISH,
        {
            "input": {
                "type": DELIVERED,
                "payload": {"owner": world.name},
                "idempotencyKey": world.idempotency_key,
            }
        },
    ).ok()["publishEvent"]["eventId"]
    server.gql(world.keys["publisher"], PUBLISH, {"input": {"type": GONE, "payload": {}}}).ok()

    def finished(webhook: str, status: str) -> str | None:
        edges = server.gql(admin, DELIVERIES, {"webhookId": webhook}).ok()["deliveries"]["edges"]
        return str(edges[0]["node"]["id"]) if edges and edges[0]["node"]["status"] == status else None

    world.delivery = wait_until(lambda: finished(world.webhook, "SUCCEEDED"))
    world.failed_delivery = wait_until(lambda: finished(world.gone_webhook, "FAILED"))
    # Switched off by the 410, as `system`: after that, nothing in this organisation moves by itself.
    wait_until(
        lambda: server.gql(admin, WEBHOOK, {"id": world.gone_webhook}).ok()["webhook"]["active"] is False
    )


@pytest.fixture(scope="module")
def worlds(open_server: Server) -> Iterator[Worlds]:
    with Receiver() as receiver:
        receiver.respond = lambda r: (410, {}, "gone") if r.path.endswith("/gone") else (200, {}, "ok")
        names = {kind: f"{kind}-{uuid.uuid4().hex[:10]}" for kind in ("frozen", "playground", "other")}
        # One after the other: the store takes one writer at a time in embedded mode.
        made = {
            kind: World(name=name, keys={role: open_server.key(name, role) for role in ROLES})
            for kind, name in names.items()
        }
        settle(open_server, receiver, made["frozen"])
        settle(open_server, receiver, made["playground"])
        yield Worlds(open_server, receiver, made["frozen"], made["playground"], made["other"])


# -- how each operation is called and judged ---------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One cell of the matrix: whose key calls, on which organisation's things."""

    worlds: Worlds
    role: str
    target: World  # the organisation whose ids are named
    caller: World  # the organisation of the key

    @property
    def key(self) -> str:
        return self.caller.keys[self.role]


Variables = Callable[[Call], dict[str, Any]]
Check = Callable[[GraphQLResult, Call], None]


@dataclass(frozen=True)
class Operation:
    name: str
    document: str
    allowed: frozenset[str]
    variables: Variables
    works: Check  # an allowed role in its own organisation
    foreign: Check  # an allowed role of another organisation, naming this one's ids


def value(result: GraphQLResult, name: str) -> Any:
    return (result.data or {}).get(name)


def ok(result: GraphQLResult, name: str) -> Any:
    assert not result.errors, result.errors
    return result.data[name]


def null(name: str) -> Check:
    def check(result: GraphQLResult, call: Call) -> None:
        assert ok(result, name) is None

    return check


def not_found(name: str) -> Check:
    def check(result: GraphQLResult, call: Call) -> None:
        assert result.codes == ["NOT_FOUND"], result.errors
        assert value(result, name) is None

    return check


def secret_for_admins_only(webhook: dict[str, Any], call: Call) -> None:
    if call.role == "admin":
        assert webhook["signingSecret"].startswith("whsec_")
    else:
        assert webhook["signingSecret"] is None


def node_ids(connection: dict[str, Any]) -> set[str]:
    return {edge["node"]["id"] for edge in connection["edges"]}


def frozen_ids(call: Call) -> set[str]:
    t = call.target
    return {t.webhook, t.gone_webhook, t.credential, t.event, t.delivery, t.failed_delivery}


# Queries


def _webhooks_work(result: GraphQLResult, call: Call) -> None:
    connection = ok(result, "webhooks")
    assert call.target.webhook in node_ids(connection)
    for edge in connection["edges"]:
        secret_for_admins_only(edge["node"], call)


def _webhooks_foreign(result: GraphQLResult, call: Call) -> None:
    assert not node_ids(ok(result, "webhooks")) & frozen_ids(call)


def _webhook_work(result: GraphQLResult, call: Call) -> None:
    webhook = ok(result, "webhook")
    assert webhook["id"] == call.target.webhook
    secret_for_admins_only(webhook, call)


def _as_of_work(result: GraphQLResult, call: Call) -> None:
    webhook = ok(result, "webhookAsOf")
    assert webhook["id"] == call.target.webhook
    assert webhook["version"] == 1
    secret_for_admins_only(webhook, call)


def _credentials_work(result: GraphQLResult, call: Call) -> None:
    credentials = ok(result, "credentials")
    assert call.target.credential in {c["id"] for c in credentials}
    assert all(c["maskedSecret"].startswith("••••") for c in credentials)


def _credentials_foreign(result: GraphQLResult, call: Call) -> None:
    assert call.target.credential not in {c["id"] for c in ok(result, "credentials")}


def _event_types_work(result: GraphQLResult, call: Call) -> None:
    types = {t["name"]: t for t in ok(result, "eventTypes")}
    assert "alert.activated" in types
    assert types[DEFINED]["description"] == call.target.name


def _event_types_foreign(result: GraphQLResult, call: Call) -> None:
    types = {t["name"]: t for t in ok(result, "eventTypes")}
    assert DEFINED not in types or types[DEFINED]["description"] != call.target.name


def _delivery_work(result: GraphQLResult, call: Call) -> None:
    delivery = ok(result, "delivery")
    assert delivery["id"] == call.target.delivery
    assert delivery["webhookId"] == call.target.webhook


def _deliveries_work(result: GraphQLResult, call: Call) -> None:
    assert call.target.delivery in node_ids(ok(result, "deliveries"))


def _deliveries_foreign(result: GraphQLResult, call: Call) -> None:
    connection = ok(result, "deliveries")
    assert connection["edges"] == []
    assert connection["totalCount"] == 0


def _audit_work(result: GraphQLResult, call: Call) -> None:
    records = [edge["node"] for edge in ok(result, "auditLog")["edges"]]
    assert {r["aggregateId"] for r in records} == {call.target.webhook}
    assert records[0]["eventType"] == "Webhook.Created"


def _audit_foreign(result: GraphQLResult, call: Call) -> None:
    connection = ok(result, "auditLog")
    assert connection["edges"] == []
    assert connection["totalCount"] == 0


def _verify_work(result: GraphQLResult, call: Call) -> None:
    verification = ok(result, "verifyAuditLog")
    assert verification["valid"] is True
    assert verification["checked"] > 0


def _verify_foreign(result: GraphQLResult, call: Call) -> None:
    verification = ok(result, "verifyAuditLog")
    assert verification["valid"] is True
    own = call.worlds.server.gql(call.key, "{ auditLog(first: 1) { totalCount } }")
    assert verification["checked"] == ok(own, "auditLog")["totalCount"]  # its own records, no more


# Mutations


def _created_work(result: GraphQLResult, call: Call) -> None:
    webhook = ok(result, "createWebhook")
    assert webhook["version"] == 1
    secret_for_admins_only(webhook, call)


def _created_foreign(result: GraphQLResult, call: Call) -> None:
    # It names the other organisation's credential, which does not exist for this one.
    assert result.codes == ["BAD_USER_INPUT"], result.errors
    assert result.fields == ["credentialId"]


def _updated_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "updateWebhook")["name"] == "renamed by the matrix"


def _activity_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "setWebhookActive")["active"] is False


def _deleted_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "deleteWebhook") is True


def _rotated_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "rotateSigningSecret")["signingSecret"].startswith("whsec_")


def _published_work(result: GraphQLResult, call: Call) -> None:
    published = ok(result, "publishEvent")
    assert published["duplicate"] is False


def _published_foreign(result: GraphQLResult, call: Call) -> None:
    # The frozen organisation's idempotency key names another event in another organisation (a
    # repeat there is a duplicate of that organisation's own event, never of the frozen one's).
    published = ok(result, "publishEvent")
    assert published["eventId"] != call.target.event


def _published_many_work(result: GraphQLResult, call: Call) -> None:
    assert [p["duplicate"] for p in ok(result, "publishEvents")] == [False, False]


def _published_many_foreign(result: GraphQLResult, call: Call) -> None:
    published = ok(result, "publishEvents")
    assert len(published) == 2
    assert call.target.event not in {p["eventId"] for p in published}


def _credential_work(result: GraphQLResult, call: Call) -> None:
    credential = ok(result, "createCredential")
    assert credential["maskedSecret"].startswith("••••")


def _defined_work(result: GraphQLResult, call: Call) -> None:
    assert "caller" in ok(result, "defineEventType")["variables"]


def _tested_work(result: GraphQLResult, call: Call) -> None:
    tested = ok(result, "sendTest")
    assert tested["success"] is True, tested


def _redelivered_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "redeliver")["id"] == call.target.delivery


def _recovered_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "recoverDeliveries") >= 0


def _replayed_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "replayEvents") == 1  # E, published before the webhook existed


# The caller and API keys


def key_ids(world: World) -> set[str]:
    return {str(uuid.UUID(key.split("_")[1])) for key in world.keys.values()}


def _me_work(result: GraphQLResult, call: Call) -> None:
    me = ok(result, "me")
    assert (me["role"], me["organizationName"]) == (call.role.upper(), call.target.name)


def _me_foreign(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "me")["organizationName"] == call.caller.name  # its own, whatever it names


def _api_keys_work(result: GraphQLResult, call: Call) -> None:
    listed = {k["id"] for k in ok(result, "apiKeys")}
    assert key_ids(call.target) <= listed
    assert not listed & (key_ids(call.worlds.frozen) | key_ids(call.worlds.other))


def _api_keys_foreign(result: GraphQLResult, call: Call) -> None:
    assert not {k["id"] for k in ok(result, "apiKeys")} & key_ids(call.target)


def _created_key_work(result: GraphQLResult, call: Call) -> None:
    created = ok(result, "createApiKey")
    assert created["key"].startswith("hkl_")
    assert created["apiKey"]["role"] == "VIEWER"


def _revoked_key_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "revokeApiKey")["revoked"] is True


# The retention policy: each organisation has its own; the settled ones hold SETTLED_RETENTION.


def _retention_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "retentionPolicy") in (SETTLED_RETENTION, MATRIX_RETENTION)


def _retention_foreign(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "retentionPolicy") in ({"payloads": None, "deliveries": None}, MATRIX_RETENTION)


def _set_retention_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "setRetentionPolicy") == MATRIX_RETENTION  # (another's key: its own policy)


def fresh_event(call: Call) -> str:
    """The event to erase: a new playground event for an allowed call, else the frozen E."""
    if call.target is call.worlds.playground:
        published = call.worlds.server.gql(
            call.target.keys["publisher"], PUBLISH, {"input": {"type": "iso.erased", "payload": {"n": 1}}}
        )
        return str(ok(published, "publishEvent")["eventId"])
    return call.target.event


def _erased_work(result: GraphQLResult, call: Call) -> None:
    assert ok(result, "eraseEvent") is True


def fresh_key(call: Call) -> str:
    """The key to revoke: a new playground key for an allowed call, else the frozen viewer's."""
    if call.target is call.worlds.playground:
        created = call.worlds.server.gql(
            call.target.admin,
            "mutation { createApiKey(input: {role: VIEWER}) { apiKey { id } } }",
        )
        return str(ok(created, "createApiKey")["apiKey"]["id"])
    return str(uuid.UUID(call.target.keys["viewer"].split("_")[1]))


def _foreign_create(name: str) -> Check:
    def check(result: GraphQLResult, call: Call) -> None:
        assert ok(result, name)

    return check


def fresh(call: Call, event_type: str = "iso.unused") -> str:
    """The id to act on: a fresh playground webhook for an allowed call, else the frozen W."""
    if call.target is call.worlds.playground:
        return call.worlds.fresh_webhook(event_type)
    return call.target.webhook


OPERATIONS = [
    Operation(
        "webhooks",
        f"{{ webhooks(first: 500) {{ totalCount edges {{ node {{ {WEBHOOK_FIELDS} }} }} }} }}",
        READERS,
        lambda c: {},
        _webhooks_work,
        _webhooks_foreign,
    ),
    Operation(
        "webhook",
        f"query($id: ID!) {{ webhook(id: $id) {{ {WEBHOOK_FIELDS} }} }}",
        READERS,
        lambda c: {"id": c.target.webhook},
        _webhook_work,
        null("webhook"),
    ),
    Operation(
        "webhookAsOf",
        f"query($id: ID!) {{ webhookAsOf(id: $id, version: 1) {{ {WEBHOOK_FIELDS} }} }}",
        READERS,
        lambda c: {"id": c.target.webhook},
        _as_of_work,
        null("webhookAsOf"),
    ),
    Operation(
        "credentials",
        "{ credentials { id name kind maskedSecret } }",
        AUDITORS,
        lambda c: {},
        _credentials_work,
        _credentials_foreign,
    ),
    Operation(
        "eventTypes",
        "{ eventTypes { name description variables } }",
        EVERYONE,
        lambda c: {},
        _event_types_work,
        _event_types_foreign,
    ),
    Operation(
        "delivery",
        "query($id: ID!) { delivery(id: $id) { id webhookId eventId status } }",
        READERS,
        lambda c: {"id": c.target.delivery},
        _delivery_work,
        null("delivery"),
    ),
    Operation(
        "deliveries",
        "query($w: ID) { deliveries(webhookId: $w, first: 500) { totalCount edges { node { id } } } }",
        READERS,
        lambda c: {"w": c.target.webhook},
        _deliveries_work,
        _deliveries_foreign,
    ),
    Operation(
        "auditLog",
        "query($a: ID) { auditLog(aggregateId: $a, first: 500) "
        "{ totalCount edges { node { aggregateId eventType data } } } }",
        AUDITORS,
        lambda c: {"a": c.target.webhook},
        _audit_work,
        _audit_foreign,
    ),
    Operation(
        "verifyAuditLog",
        "{ verifyAuditLog { valid checked firstInvalidPosition } }",
        AUDITORS,
        lambda c: {},
        _verify_work,
        _verify_foreign,
    ),
    Operation(
        "createWebhook",
        f"mutation($i: CreateWebhookInput!) {{ createWebhook(input: $i) {{ {WEBHOOK_FIELDS} }} }}",
        ADMIN,
        lambda c: {
            "i": webhook_input(
                f"{c.worlds.receiver.url}/{c.caller.name}/new/{uuid.uuid4().hex}",
                eventTypes=["iso.unused"],
                credentialId=c.target.credential,
            )
        },
        _created_work,
        _created_foreign,
    ),
    Operation(
        "updateWebhook",
        f'mutation($id: ID!) {{ updateWebhook(id: $id, input: {{name: "renamed by the matrix"}}) '
        f"{{ {WEBHOOK_FIELDS} }} }}",
        ADMIN,
        lambda c: {"id": fresh(c)},
        _updated_work,
        not_found("updateWebhook"),
    ),
    Operation(
        "setWebhookActive",
        f"mutation($id: ID!) {{ setWebhookActive(id: $id, active: false) {{ {WEBHOOK_FIELDS} }} }}",
        ADMIN,
        lambda c: {"id": fresh(c)},
        _activity_work,
        not_found("setWebhookActive"),
    ),
    Operation(
        "deleteWebhook",
        "mutation($id: ID!) { deleteWebhook(id: $id) }",
        ADMIN,
        lambda c: {"id": fresh(c)},
        _deleted_work,
        not_found("deleteWebhook"),
    ),
    Operation(
        "rotateSigningSecret",
        f"mutation($id: ID!) {{ rotateSigningSecret(id: $id) {{ {WEBHOOK_FIELDS} }} }}",
        ADMIN,
        lambda c: {"id": fresh(c)},
        _rotated_work,
        not_found("rotateSigningSecret"),
    ),
    Operation(
        "publishEvent",
        "mutation($i: PublishEventInput!) { publishEvent(input: $i) { eventId duplicate } }",
        PUBLISHERS,
        lambda c: {
            "i": {
                "type": "iso.published",
                "payload": {},
                "idempotencyKey": c.target.idempotency_key if c.caller is not c.target else uuid.uuid4().hex,
            }
        },
        _published_work,
        _published_foreign,
    ),
    Operation(
        "publishEvents",
        "mutation($i: [PublishEventInput!]!) { publishEvents(input: $i) { eventId duplicate } }",
        PUBLISHERS,
        lambda c: {
            "i": [
                {"type": "iso.published", "payload": {"n": 1}, "idempotencyKey": c.target.idempotency_key},
                {"type": "iso.published", "payload": {"n": 2}, "idempotencyKey": uuid.uuid4().hex},
            ]
            if c.caller is not c.target
            else [{"type": "iso.published", "payload": {"n": n}} for n in (1, 2)]
        },
        _published_many_work,
        _published_many_foreign,
    ),
    Operation(
        "createCredential",
        "mutation($i: CreateCredentialInput!) { createCredential(input: $i) { id maskedSecret } }",
        ADMIN,
        lambda c: {"i": {"name": "matrix", "kind": "BEARER", "token": f"tok-{uuid.uuid4().hex}"}},
        _credential_work,
        _foreign_create("createCredential"),
    ),
    Operation(
        "defineEventType",
        "mutation($i: DefineEventTypeInput!) { defineEventType(input: $i) { name variables } }",
        ADMIN,
        # The frozen organisation's own type name: defined again, but only for the caller.
        lambda c: {"i": {"name": DEFINED, "description": c.caller.name, "samplePayload": {"caller": 1}}},
        _defined_work,
        _foreign_create("defineEventType"),
    ),
    Operation(
        "sendTest",
        "mutation($id: ID!) { sendTest(webhookId: $id) { success statusCode errors } }",
        ADMIN,
        lambda c: {"id": fresh(c)},
        _tested_work,
        not_found("sendTest"),
    ),
    Operation(
        "redeliver",
        "mutation($id: ID!) { redeliver(deliveryId: $id) { id status } }",
        ADMIN,
        lambda c: {"id": c.target.delivery},
        _redelivered_work,
        not_found("redeliver"),
    ),
    Operation(
        "recoverDeliveries",
        f'mutation($id: ID!) {{ recoverDeliveries(webhookId: $id, since: "{EPOCH}") }}',
        ADMIN,
        lambda c: {"id": c.target.gone_webhook},
        _recovered_work,
        not_found("recoverDeliveries"),
    ),
    Operation(
        "replayEvents",
        f'mutation($id: ID!) {{ replayEvents(webhookId: $id, from: "{EPOCH}") }}',
        ADMIN,
        lambda c: {"id": fresh(c, DELIVERED)},
        _replayed_work,
        not_found("replayEvents"),
    ),
    Operation(
        "me",
        "{ me { keyId role organizationId organizationName } }",
        EVERYONE,
        lambda c: {},
        _me_work,
        _me_foreign,
    ),
    Operation(
        "apiKeys",
        "{ apiKeys { id name role createdAt lastUsedAt revoked } }",
        ADMIN,
        lambda c: {},
        _api_keys_work,
        _api_keys_foreign,
    ),
    Operation(
        "createApiKey",
        "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { key apiKey { id role } } }",
        ADMIN,
        lambda c: {"i": {"name": "matrix", "role": "VIEWER"}},
        _created_key_work,
        _foreign_create("createApiKey"),
    ),
    Operation(
        "revokeApiKey",
        "mutation($id: ID!) { revokeApiKey(id: $id) { id revoked } }",
        ADMIN,
        lambda c: {"id": fresh_key(c)},
        _revoked_key_work,
        not_found("revokeApiKey"),
    ),
    Operation(
        "retentionPolicy",
        "{ retentionPolicy { payloads deliveries } }",
        AUDITORS,
        lambda c: {},
        _retention_work,
        _retention_foreign,
    ),
    Operation(
        "setRetentionPolicy",
        SET_RETENTION,
        ADMIN,
        lambda c: {"i": MATRIX_RETENTION},
        _set_retention_work,
        _set_retention_work,
    ),
    Operation(
        "eraseEvent",
        'mutation($id: ID!) { eraseEvent(id: $id, reason: "the matrix") }',
        ADMIN,
        lambda c: {"id": fresh_event(c)},
        _erased_work,
        not_found("eraseEvent"),
    ),
]
BY_NAME = {operation.name: operation for operation in OPERATIONS}
SUBSCRIPTIONS = {"deliveryUpdates": READERS}


def schema_operations() -> dict[str, set[str]]:
    schema = graphql.build_schema(SCHEMA_FILE.read_text())
    roots = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }
    return {kind: set(root.fields) if root else set() for kind, root in roots.items()}


def test_the_matrix_covers_every_operation_of_the_schema() -> None:
    in_schema = schema_operations()
    in_matrix = set(BY_NAME) | set(SUBSCRIPTIONS)

    assert in_schema["query"] | in_schema["mutation"] <= set(BY_NAME), "operations without a row"
    assert in_schema["subscription"] <= set(SUBSCRIPTIONS), "subscriptions without a row"
    assert in_matrix == set().union(*in_schema.values()), "rows for operations the schema lacks"


# -- the matrix --------------------------------------------------------------------------------------


def audit_count(server: Server, world: World) -> int:
    return int(
        server.gql(world.admin, "{ auditLog(first: 1) { totalCount } }").ok()["auditLog"]["totalCount"]
    )


def frozen_requests(worlds: Worlds) -> int:
    return sum(r.path.startswith(f"/{worlds.frozen.name}/") for r in worlds.receiver.requests)


CELLS = [(name, role, where) for name in BY_NAME for role in ROLES for where in ("own", "other")]


@pytest.mark.parametrize(("name", "role", "where"), CELLS, ids=[f"{n}-{r}-{w}" for n, r, w in CELLS])
def test_every_operation_with_every_role_of_this_and_another_organisation(
    worlds: Worlds, name: str, role: str, where: str
) -> None:
    operation = BY_NAME[name]
    allowed = role in operation.allowed
    if where == "own":
        target = worlds.playground if allowed else worlds.frozen
        call = Call(worlds, role, target=target, caller=target)
    else:
        call = Call(worlds, role, target=worlds.frozen, caller=worlds.other)
    frozen_before = audit_count(worlds.server, worlds.frozen)
    requests_before = frozen_requests(worlds)
    variables = operation.variables(call)

    result = worlds.server.gql(call.key, operation.document, variables)

    assert "INTERNAL_SERVER_ERROR" not in result.codes, result.errors
    if not allowed:
        assert result.codes == ["FORBIDDEN"], result.errors
        assert value(result, name) is None
    elif where == "own":
        operation.works(result, call)
    else:
        operation.foreign(result, call)
    text = json.dumps(result)
    if where == "other":
        for thing in (worlds.frozen.webhook, worlds.frozen.delivery, worlds.frozen.credential):
            assert thing not in text or thing in json.dumps(variables), "frozen data leaked"
    assert audit_count(worlds.server, worlds.frozen) == frozen_before, "the frozen organisation changed"
    time.sleep(0.05 if name in ("sendTest", "redeliver", "recoverDeliveries") else 0)
    assert frozen_requests(worlds) == requests_before, "a frozen webhook's target was called"


# -- the subscription --------------------------------------------------------------------------------

SUBSCRIBE = (
    "subscription($w: ID, $after: String) "
    "{ deliveryUpdates(webhookId: $w, after: $after) { deliveryId webhookId eventId status cursor } }"
)


async def subscribe(
    server: Server, key: str, webhook_id: str, within: float, enough: int = 1
) -> list[dict[str, Any]]:
    """Messages of a deliveryUpdates subscription from the start of the log, until an error,
    completion or `enough` updates, or for `within` seconds."""
    url = server.url.replace("http", "ws", 1) + "/graphql"
    messages: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url, protocols=["graphql-transport-ws"], timeout=aiohttp.ClientWSTimeout(10)
        ) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        ack = await ws.receive_json(timeout=10)
        assert ack["type"] == "connection_ack", ack
        variables = {"w": webhook_id, "after": "0"}
        await ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": variables}}
        )
        deadline = time.monotonic() + within
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = await ws.receive(timeout=remaining)
            except TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data: dict[str, Any] = json.loads(message.data)
            if data["type"] == "ping":
                await ws.send_json({"type": "pong"})
                continue
            messages.append(data)
            if data["type"] in ("error", "complete") or (
                data["type"] == "next" and data["payload"].get("errors")
            ):
                break
            if sum(m["type"] == "next" for m in messages) >= enough:
                break
        await ws.send_json({"id": "1", "type": "complete"})
    return messages


def subscription_codes(messages: list[dict[str, Any]]) -> list[str]:
    errors: list[dict[str, Any]] = []
    for message in messages:
        if message["type"] == "error":
            errors += message["payload"]
        elif message["type"] == "next":
            errors += message["payload"].get("errors") or []
    return [e.get("extensions", {}).get("code") for e in errors]


@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
def test_delivery_updates_with_every_role_of_this_and_another_organisation(
    worlds: Worlds, role: str, where: str
) -> None:
    allowed = role in SUBSCRIPTIONS["deliveryUpdates"]
    target = worlds.playground if allowed and where == "own" else worlds.frozen
    caller = target if where == "own" else worlds.other

    messages = asyncio.run(
        subscribe(
            worlds.server,
            caller.keys[role],
            target.webhook,
            within=10.0 if allowed and where == "own" else 1.5,
        )
    )

    updates = [
        m["payload"]["data"]["deliveryUpdates"]
        for m in messages
        if m["type"] == "next" and m["payload"].get("data")
    ]
    if not allowed:
        assert subscription_codes(messages) == ["FORBIDDEN"], messages
        assert updates == []
    elif where == "own":
        assert subscription_codes(messages) == [], messages
        assert updates, messages
        assert {u["webhookId"] for u in updates} == {target.webhook}
        assert target.delivery in {u["deliveryId"] for u in updates}
    else:
        assert subscription_codes(messages) == [], messages
        assert updates == [], "another organisation's delivery updates were streamed"
