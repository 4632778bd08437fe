"""The HTTP request a delivery (or a test) sends: rendered, signed, with credentials; pure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from domain.credentials import Credential, Tls, TokenGrant
from domain.deliveries import Attempt
from domain.signing import signature_header
from domain.templates import event_variables
from domain.webhooks import SavedWebhook

BODYLESS_METHODS = ("GET", "DELETE")
JSON = "application/json"


@dataclass(frozen=True)
class OutgoingRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    token_grant: TokenGrant | None = None  # the sender adds `Authorization: Bearer` with its token
    tls: Tls | None = None


Send = Callable[[OutgoingRequest, int], Awaitable[Attempt]]
"""Sends a request as attempt number N and describes what happened (the workers' sender)."""


@dataclass(frozen=True)
class Message:
    """What a request carries: a published event, or a test event made up for `sendTest`."""

    event_id: str
    event_type: str
    occurred_at: datetime
    organization_id: str
    organization_name: str
    payload: Mapping[str, Any]

    def envelope(self) -> dict[str, Any]:
        """The body when a webhook has no template."""
        return {
            "id": self.event_id,
            "type": self.event_type,
            "occurredAt": _iso(self.occurred_at),
            "organizationId": self.organization_id,
            "data": self.payload,
        }

    def variables(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "organization_id": self.organization_id,
            "organization_name": self.organization_name,
            "timestamp": _iso(self.occurred_at),
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def render_body(
    webhook: SavedWebhook, message: Message, *, max_rendered_bytes: int, unreplaced: bool = False
) -> bytes | None:
    """The body to send; raises RenderedBodyTooLarge when the template would render past the limit."""
    spec = webhook.spec
    if webhook.template is None or spec.payload_template is None:
        if spec.method in BODYLESS_METHODS:
            return None
        return orjson.dumps(message.envelope())
    if unreplaced:
        return spec.payload_template.encode()
    lookup = event_variables(message.variables(), message.payload).lookup
    return webhook.template.render(lookup, max_bytes=max_rendered_bytes)


def build_request(
    webhook: SavedWebhook,
    message: Message,
    *,
    secrets: list[str],
    message_id: str,
    now: datetime,
    user_agent: str,
    max_rendered_bytes: int,
    credential: Credential | None = None,
    unreplaced: bool = False,
) -> OutgoingRequest:
    spec = webhook.spec
    credential_headers = credential.headers() if credential else {}
    body = render_body(webhook, message, max_rendered_bytes=max_rendered_bytes, unreplaced=unreplaced)
    headers: dict[str, str] = {"User-Agent": user_agent}
    if body is not None:
        headers["Content-Type"] = JSON
    for name, value in [*((h.name, h.value) for h in spec.headers), *credential_headers.items()]:
        # The webhook's own headers win over our defaults, and the credential over both.
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value
    timestamp = int(now.timestamp())
    headers["webhook-id"] = message_id
    headers["webhook-timestamp"] = str(timestamp)
    headers["webhook-signature"] = signature_header(secrets, message_id, timestamp, body or b"")
    return OutgoingRequest(
        method=spec.method,
        url=spec.target_url,
        headers=headers,
        body=body,
        token_grant=credential.token_grant() if credential else None,
        tls=credential.tls() if credential else None,
    )
