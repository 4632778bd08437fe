"""What `verifyAuditLog` costs, through a real `hookline serve`: a caller pays for its own organisation's
history only, and asking many times at once (aliases) runs one verification. Counted on `/metrics`:
`hookline_audit_verifications_total` and `hookline_audit_records_read_total` (stored events decrypted)."""

from __future__ import annotations

import re
import urllib.request

from tests.queries import CREATE_WEBHOOK, webhook_input
from tests.support import Server, wait_until

VERIFY = "{ verifyAuditLog { valid checked firstInvalidPosition } }"
PUBLISH_MANY = "mutation($input: [PublishEventInput!]!) { publishEvents(input: $input) { eventId } }"
HISTORY = 300  # records of the organisation whose history the other one must not pay for
ALIASES = 30  # the gateway's limit; with the field itself, 31 verifications asked in one request


def counters(server: Server) -> tuple[float, float]:
    """(verifications run, stored events they read) as `serve` counts them."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        text = response.read().decode()

    def value(name: str) -> float:
        found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        assert found, f"{name} missing from /metrics"
        return float(found.group(1))

    return value("hookline_audit_verifications_total"), value("hookline_audit_records_read_total")


def a_large_history(server: Server, org: str) -> str:
    admin = server.key(org, "admin")
    publisher = server.key(org, "publisher")
    events = [{"type": "cost.noise", "payload": {"n": n}} for n in range(HISTORY)]
    server.gql(publisher, PUBLISH_MANY, {"input": events}).ok()

    def settled() -> bool:  # each event is recorded Published, then FannedOut
        log = server.gql(admin, "{ auditLog(first: 1) { totalCount } }").ok()["auditLog"]
        return bool(log["totalCount"] >= 2 * HISTORY)

    wait_until(settled, timeout=30)
    return admin


def test_verifying_one_organisation_does_not_decrypt_another_organisations_history(
    open_server: Server, org: str
) -> None:
    large = a_large_history(open_server, f"{org}-large")
    small = open_server.key(f"{org}-small", "admin")
    open_server.gql(small, CREATE_WEBHOOK, {"input": webhook_input("http://127.0.0.1:9/small")}).ok()
    assert open_server.gql(large, VERIFY).ok()["verifyAuditLog"]["checked"] >= HISTORY

    verifications, read = counters(open_server)
    verification = open_server.gql(small, VERIFY).ok()["verifyAuditLog"]
    verifications_after, read_after = counters(open_server)

    assert verification["valid"] is True, verification
    assert verification["firstInvalidPosition"] is None
    own = open_server.gql(small, "{ auditLog(first: 1) { totalCount } }").ok()["auditLog"]["totalCount"]
    assert verification["checked"] == own > 0
    assert verifications_after - verifications == 1
    # what it decrypted is its own records, none of the other organisation's hundreds
    assert read_after - read == verification["checked"], (read_after - read, verification)


def test_thirty_one_verifications_asked_in_one_request_run_one(open_server: Server, org: str) -> None:
    admin = a_large_history(open_server, org)
    fields = "valid checked firstInvalidPosition"
    aliased = " ".join(f"v{n}: verifyAuditLog {{ {fields} }}" for n in range(ALIASES))
    query = f"{{ verifyAuditLog {{ {fields} }} {aliased} }}"
    expected = open_server.gql(admin, VERIFY).ok()["verifyAuditLog"]
    assert expected["valid"] is True, expected
    assert expected["checked"] > HISTORY, expected

    verifications, read = counters(open_server)
    answers = open_server.gql(admin, query).ok()
    verifications_after, read_after = counters(open_server)

    assert len(answers) == ALIASES + 1
    assert all(answer == expected for answer in answers.values()), answers
    assert verifications_after - verifications <= 1
    assert read_after - read <= expected["checked"]
