"""The retention policy through a real `hookline serve`: an admin sets it and admins and auditors read it
back; other roles are refused; bad durations are named by field, all at once; each change is in the audit
log with the key that made it; one organisation's policy is not another's."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support import Server

POLICY = "{ retentionPolicy { payloads deliveries } }"
SET_POLICY = "mutation($i: RetentionPolicyInput!) { setRetentionPolicy(input: $i) { payloads deliveries } }"
AUDIT = "query($id: ID) { auditLog(aggregateId: $id) { edges { node { eventType actor data } } } }"
ME = "{ me { keyId organizationId } }"
FOREVER = {"payloads": None, "deliveries": None}


def policy(server: Server, key: str) -> Any:
    return server.gql(key, POLICY).ok()["retentionPolicy"]


def set_policy(server: Server, key: str, payloads: str | None, deliveries: str | None) -> Any:
    return server.gql(key, SET_POLICY, {"i": {"payloads": payloads, "deliveries": deliveries}})


def test_an_admin_sets_the_policy_and_admins_and_auditors_read_it_back(open_server: Server, org: str) -> None:
    admin, auditor = open_server.key(org, "admin"), open_server.key(org, "auditor")
    assert policy(open_server, admin) == FOREVER, "kept forever until a policy is set"

    answered = set_policy(open_server, admin, "PT2S", "PT6S").ok()["setRetentionPolicy"]

    assert answered == {"payloads": "PT2S", "deliveries": "PT6S"}
    assert policy(open_server, admin) == answered
    assert policy(open_server, auditor) == answered
    set_policy(open_server, admin, "P30D", None).ok()
    assert policy(open_server, auditor) == {"payloads": "P30D", "deliveries": None}, "null keeps forever"


def test_only_admins_set_it_and_only_admins_and_auditors_read_it(open_server: Server, org: str) -> None:
    admin = open_server.key(org, "admin")
    set_policy(open_server, admin, "P1D", "P2D").ok()

    for role in ("publisher", "auditor", "viewer"):
        refused = set_policy(open_server, open_server.key(org, role), "PT1S", "PT1S")
        assert (refused.codes, refused.data) == (["FORBIDDEN"], None), role
    for role in ("publisher", "viewer"):
        assert open_server.gql(open_server.key(org, role), POLICY).codes == ["FORBIDDEN"], role
    assert open_server.gql(None, POLICY).codes == ["UNAUTHENTICATED"]
    assert policy(open_server, admin) == {"payloads": "P1D", "deliveries": "P2D"}


def test_bad_durations_are_refused_naming_each_field_at_once_and_change_nothing(
    open_server: Server, org: str
) -> None:
    admin = open_server.key(org, "admin")
    set_policy(open_server, admin, "P7D", "P14D").ok()

    both = set_policy(open_server, admin, "P1M", "soon")
    shorter = set_policy(open_server, admin, "P30D", "P7D")
    zero = set_policy(open_server, admin, None, "PT0S")

    assert (both.codes, both.fields) == (["BAD_USER_INPUT"], ["payloads", "deliveries"])
    fields = {f["field"]: f["message"] for f in both.errors[0]["extensions"]["fields"]}
    assert "months and years are not accepted" in fields["payloads"]
    assert "ISO 8601 duration" in fields["deliveries"]
    assert (shorter.codes, shorter.fields) == (["BAD_USER_INPUT"], ["deliveries"])
    assert "at least as long as payloads" in shorter.errors[0]["message"]
    assert (zero.codes, zero.fields) == (["BAD_USER_INPUT"], ["deliveries"])
    assert policy(open_server, admin) == {"payloads": "P7D", "deliveries": "P14D"}


def test_each_change_is_in_the_audit_log_with_the_key_that_made_it(open_server: Server, org: str) -> None:
    admin, auditor = open_server.key(org, "admin"), open_server.key(org, "auditor")
    me = open_server.gql(admin, ME).ok()["me"]

    set_policy(open_server, admin, "PT2S", "PT6S").ok()
    set_policy(open_server, admin, "PT2S", "PT6S").ok()  # the same again: nothing to record
    set_policy(open_server, admin, None, None).ok()

    edges = open_server.gql(auditor, AUDIT, {"id": me["organizationId"]}).ok()["auditLog"]["edges"]
    records = [(e["node"]["eventType"], e["node"]["actor"], e["node"]["data"]) for e in edges]
    assert records[1:] == [
        ("Organization.RetentionPolicySet", me["keyId"], {"payloads": "PT2S", "deliveries": "PT6S"}),
        ("Organization.RetentionPolicySet", me["keyId"], {"payloads": None, "deliveries": None}),
    ]
    assert records[0][0] == "Organization.Created"
    verified = open_server.gql(auditor, "{ verifyAuditLog { valid } }").ok()["verifyAuditLog"]
    assert verified["valid"] is True


def test_one_organisations_policy_is_invisible_to_another(open_server: Server, org: str) -> None:
    other = f"other-{uuid.uuid4().hex[:10]}"
    admin, other_admin = open_server.key(org, "admin"), open_server.key(other, "admin")

    set_policy(open_server, admin, "PT2S", "PT6S").ok()

    assert policy(open_server, other_admin) == FOREVER
    assert policy(open_server, open_server.key(other, "auditor")) == FOREVER
    set_policy(open_server, other_admin, "P90D", None).ok()
    assert policy(open_server, admin) == {"payloads": "PT2S", "deliveries": "PT6S"}
    assert policy(open_server, other_admin) == {"payloads": "P90D", "deliveries": None}
