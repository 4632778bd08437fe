"""Publishing without GraphQL, for source systems that can only send a webhook of their own.

`POST /events` takes `{"type", "payload", "idempotencyKey"?, "occurredAt"?}` or a list of up to 500 of
them; `POST /events/{type}` takes the payload itself as the body, with an optional `Idempotency-Key`
header. Both answer 202 with `{"eventId", "duplicate"}` (a list for a list) and go through the same
batched `publish` as `publishEvent`: the same roles, limits and idempotency, counted alike. The key comes
as `Authorization: Bearer <key>`, or as the password of HTTP Basic (any user name).

Errors are `{"error": {"code", "message", "fields"?}}`: 400 for a body of the wrong shape, 401, 403, 413
for a payload over `HOOKLINE_MAX_PAYLOAD_BYTES` (the body's own cap is `BodyLimit`'s, before this), 415
for a body that is not JSON. The checks here are of shape only; what an event may hold is the domain's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import structlog
from opentelemetry.trace import Tracer
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition

from domain.errors import HooklineError, InvalidInput, Problem
from domain.events import Publication
from domain.roles import Permission
from domain.service.publishing import Published, Publishing
from gateway.auth import Authenticator
from gateway.context import Publish
from gateway.errors import INTERNAL, error_body, plain_error
from gateway.inputs import utc
from gateway.limits import is_json, plain_refusal
from gateway.tracing import publishing

log = structlog.get_logger("hookline.gateway")

EVENT_FIELDS = frozenset({"type", "payload", "idempotencyKey", "occurredAt"})
# The status of each code a publication may be refused with (see gateway.errors.CODES).
STATUS = {"BAD_USER_INPUT": 400, "UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "CONFLICT": 409}


class AnyText(Convertor[str]):
    """`{type:path}` without its one gap: Starlette's `.*` stops at a line break, so `/events/%0A` would be
    a plain-text 404; every type reaches the endpoint and is answered in JSON (refused, when not a name)."""

    regex = "[\\s\\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", AnyText())


class EventsEndpoint:
    """The two routes; `max_payload_bytes` tells a payload too large (413) from other bad input."""

    def __init__(
        self,
        authenticator: Authenticator,
        publish: Publish,
        max_payload_bytes: int,
        tracer: Tracer | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.publish = publish
        self.max_payload_bytes = max_payload_bytes
        self.tracer = tracer  # None: traces off

    async def events(self, request: Request) -> Response:
        """`POST /events`: one event object, or a list of them."""
        return await self._answer(request, typed=False)

    async def typed(self, request: Request) -> Response:
        """`POST /events/{type}`: the body is the payload."""
        return await self._answer(request, typed=True)

    async def _answer(self, request: Request, typed: bool) -> Response:
        try:
            principal = await self.authenticator.principal(request.headers.get("authorization"), basic=True)
            principal.require(Permission.PUBLISH_EVENTS)
            if not is_json(request.headers.get("content-type")):
                given = request.headers.get("content-type") or "none"
                message = f"the request body must be JSON (Content-Type: application/json), not {given}"
                return plain_refusal(415, message)
            body = orjson.loads(await request.body())  # BodyLimit has read it, capped, and checked it parses
            if typed:
                publications = [_typed_publication(request, body)]
                many, numbered = False, False
            else:
                many = isinstance(body, list)
                publications = _publications(body)
                numbered = many
            if too_large := self._too_large(publications, numbered):
                return _response(413, plain_error(InvalidInput(too_large)))
            if self.tracer is None:
                published = await self.publish(Publishing(principal, publications, numbered=numbered))
            else:
                with publishing(self.tracer, request.headers.get("traceparent"), publications) as traced:
                    published = await self.publish(Publishing(principal, traced, numbered=numbered))
        except HooklineError as error:
            answer = plain_error(_as_sent(error) if typed else error)
            return _response(STATUS.get(answer["error"]["code"], 500), answer)
        except orjson.JSONDecodeError as error:  # an empty body with a JSON type: nothing for BodyLimit
            return plain_refusal(400, f"the request body is not JSON a server can read: {error}")
        except Exception:  # the store failed, or a fault of ours: logged, and answered without details
            log.exception("unexpected error in POST /events")
            return _response(500, error_body(INTERNAL, "internal error; it has been logged"))
        return _response(202, _published(published) if many else _published(published)[0])

    def _too_large(self, publications: Sequence[Publication], numbered: bool) -> list[Problem]:
        limit = self.max_payload_bytes
        problems = []
        for index, publication in enumerate(publications):
            if isinstance(publication.payload, dict):
                size = len(orjson.dumps(publication.payload))
                if size > limit:
                    prefix = f"input[{index}]." if numbered else ""
                    message = f"is {size} bytes; at most {limit} are accepted (HOOKLINE_MAX_PAYLOAD_BYTES)"
                    problems.append(Problem(f"{prefix}payload", message))
        return problems


def _typed_publication(request: Request, payload: Any) -> Publication:
    key = request.headers.get("idempotency-key")
    if key is not None and not key.strip():
        raise InvalidInput([Problem("Idempotency-Key", "must not be empty when given")])
    return Publication(type=request.path_params["type"], payload=payload, idempotency_key=key)


def _as_sent(error: HooklineError) -> HooklineError:
    """The problems of `POST /events/{type}` named as it was sent: the key came as a header."""
    if not isinstance(error, InvalidInput):
        return error
    header = [
        Problem("Idempotency-Key", p.message) if p.field == "idempotencyKey" else p for p in error.problems
    ]
    return InvalidInput(header)


def _publications(body: Any) -> list[Publication]:
    """The events of a `POST /events` body, once every one has the expected shape (all problems at once);
    how many a request may hold is the domain's rule."""
    if isinstance(body, dict):
        return [_publication(body, "")]
    if not isinstance(body, list):
        raise InvalidInput([Problem("body", "must be an event object or a list of event objects")])
    problems: list[Problem] = []
    publications = []
    for index, item in enumerate(body):
        try:
            publications.append(_publication(item, f"input[{index}]."))
        except InvalidInput as error:
            problems.extend(error.problems)
    if problems:
        raise InvalidInput(problems)
    return publications


def _publication(item: Any, prefix: str) -> Publication:
    if not isinstance(item, dict):
        raise InvalidInput([Problem(prefix.rstrip(".") or "body", "must be an event object")])
    problems = [
        Problem(f"{prefix}{name}", "is not a field of an event") for name in item if name not in EVENT_FIELDS
    ]
    event_type, key, occurred = item.get("type"), item.get("idempotencyKey"), item.get("occurredAt")
    if not isinstance(event_type, str):
        problems.append(Problem(f"{prefix}type", "is required, a string"))
    if "payload" not in item:
        problems.append(Problem(f"{prefix}payload", "is required, a JSON object"))
    if key is not None and not isinstance(key, str):
        problems.append(Problem(f"{prefix}idempotencyKey", "must be a string"))
    moment = _moment(occurred)
    if occurred is not None and moment is None:
        problems.append(Problem(f"{prefix}occurredAt", "must be an ISO 8601 date and time"))
    if problems:
        raise InvalidInput(problems)
    assert isinstance(event_type, str)
    return Publication(type=event_type, payload=item["payload"], idempotency_key=key, occurred_at=moment)


def _moment(value: Any) -> datetime | None:
    """An `occurredAt` read as GraphQL's DateTime reads it (no offset: UTC); None if it is not one."""
    assert DateTimeDefinition.parse_value is not None
    try:
        moment = DateTimeDefinition.parse_value(value)
        return utc(moment) if isinstance(moment, datetime) else None
    except (StrawberryInputCoercionError, ValueError, OverflowError):
        return None


def _published(published: Published) -> list[dict[str, Any]]:
    return [{"eventId": str(event_id), "duplicate": duplicate} for event_id, duplicate in published]


def _response(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
