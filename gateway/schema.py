"""Queries and mutations of the contract: parse, authorise, call one application method, map."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.types import ExecutionContext

from domain.application import Hookline
from domain.deliveries import DeliveryStatus
from domain.errors import InvalidInput, Problem
from domain.roles import Permission
from gateway.access import AccessMutation, AccessQuery
from gateway.context import Info
from gateway.documents import CachedDocuments, DocumentCache
from gateway.errors import ErrorCodes
from gateway.execution import LeafShortcutExecution
from gateway.health import HEALTH_OF_NODES, selects, webhooks_with_health
from gateway.inputs import (
    CreateCredentialInput,
    CreateWebhookInput,
    DefineEventTypeInput,
    PublishEventInput,
    UpdateWebhookInput,
    id_argument,
    optional_id_argument,
    utc,
)
from gateway.retention import RetentionMutation, RetentionQuery
from gateway.types import (
    AuditRecord,
    AuditVerification,
    Connection,
    Credential,
    Delivery,
    DeliveryUpdate,
    EventType,
    PublishedEvent,
    TestResult,
    Webhook,
)

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 5000
DEFAULT_DOCUMENT_CACHE_BYTES = 16 * 1024 * 1024


@strawberry.type
class Query(AccessQuery, RetentionQuery):
    @strawberry.field
    async def webhooks(
        self,
        info: Info,
        first: int | None = 50,
        after: str | None = None,
        active: bool | None = None,
        event_type: str | None = None,
    ) -> Connection[Webhook]:
        principal, (page, health) = await info.context.run_with_caller(
            webhooks_with_health,
            first=50 if first is None else first,
            after=after,
            active=active,
            event_type=event_type,
            health=any(selects(field.selections, HEALTH_OF_NODES) for field in info.selected_fields),
        )
        return Connection.of(
            page, lambda webhook: Webhook.from_domain(webhook, principal, health.get(webhook.id))
        )

    @strawberry.field
    async def webhook(self, info: Info, id: strawberry.ID) -> Webhook | None:
        principal, found = await info.context.run_with_caller(Hookline.webhook, id_argument(id))
        return Webhook.from_domain(found, principal) if found else None

    @strawberry.field
    async def webhook_as_of(
        self,
        info: Info,
        id: strawberry.ID,
        version: int | None = None,
        at: datetime | None = None,
    ) -> Webhook | None:
        principal, found = await info.context.run_with_caller(
            Hookline.webhook_as_of, id_argument(id), version=version, at=utc(at)
        )
        return Webhook.from_domain(found, principal) if found else None

    @strawberry.field
    async def delivery(self, info: Info, id: strawberry.ID) -> Delivery | None:
        found = await info.context.run(Hookline.delivery, id_argument(id))
        return Delivery.from_domain(found) if found else None

    @strawberry.field
    async def deliveries(
        self,
        info: Info,
        webhook_id: strawberry.ID | None = None,
        event_id: strawberry.ID | None = None,
        status: DeliveryStatus | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> Connection[Delivery]:
        page = await info.context.run(
            Hookline.deliveries,
            webhook_id=optional_id_argument(webhook_id),
            event_id=optional_id_argument(event_id),
            status=status.value if status else None,
            first=50 if first is None else first,
            after=after,
        )
        return Connection.of(page, Delivery.from_domain)

    @strawberry.field
    async def credentials(self, info: Info) -> list[Credential]:
        found = await info.context.run(Hookline.credentials)
        return [Credential.from_domain(c) for c in found]

    @strawberry.field
    async def event_types(self, info: Info) -> list[EventType]:
        found = await info.context.run(Hookline.event_types)
        return [EventType.from_domain(t) for t in found]

    @strawberry.field
    async def audit_log(
        self,
        info: Info,
        aggregate_id: strawberry.ID | None = None,
        first: int | None = 100,
        after: str | None = None,
    ) -> Connection[AuditRecord]:
        page = await info.context.run(
            Hookline.audit_log,
            aggregate_id=optional_id_argument(aggregate_id),
            first=100 if first is None else first,
            after=after,
        )
        return Connection.of(page, AuditRecord.from_entry)

    @strawberry.field
    async def verify_audit_log(self, info: Info) -> AuditVerification:
        return AuditVerification.from_domain(await info.context.run(Hookline.verify_audit_log))


@strawberry.type
class Mutation(AccessMutation, RetentionMutation):
    @strawberry.mutation
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> Webhook:
        principal, webhook = await info.context.run_with_caller(
            Hookline.create_webhook,
            input.to_spec(),
            active=input.active is not False,
            allow_duplicate=input.allow_duplicate is True,
        )
        return Webhook.from_domain(webhook, principal)

    @strawberry.mutation
    async def update_webhook(
        self,
        info: Info,
        id: strawberry.ID,
        input: UpdateWebhookInput,
        expected_version: int | None = None,
    ) -> Webhook:
        principal, webhook = await info.context.run_with_caller(
            Hookline.update_webhook, id_argument(id), input.to_changes(), expected_version
        )
        return Webhook.from_domain(webhook, principal)

    @strawberry.mutation
    async def set_webhook_active(self, info: Info, id: strawberry.ID, active: bool) -> Webhook:
        principal, webhook = await info.context.run_with_caller(
            Hookline.set_webhook_active, id_argument(id), active
        )
        return Webhook.from_domain(webhook, principal)

    @strawberry.mutation  # cannot be undone; its history stays readable
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> bool:
        await info.context.run(Hookline.delete_webhook, id_argument(id))
        return True

    @strawberry.mutation  # the old secret keeps signing alongside for 24 h
    async def rotate_signing_secret(self, info: Info, id: strawberry.ID) -> Webhook:
        principal, webhook = await info.context.run_with_caller(
            Hookline.rotate_signing_secret, id_argument(id)
        )
        return Webhook.from_domain(webhook, principal)

    @strawberry.mutation
    async def publish_event(self, info: Info, input: PublishEventInput) -> PublishedEvent:
        event_id, duplicate = await info.context.publish(input.to_domain())
        return PublishedEvent(event_id=strawberry.ID(str(event_id)), duplicate=duplicate)

    @strawberry.mutation
    async def publish_events(self, info: Info, input: list[PublishEventInput]) -> list[PublishedEvent]:
        published = await info.context.publish_events([i.to_domain() for i in input])
        return [PublishedEvent(event_id=strawberry.ID(str(e)), duplicate=d) for e, d in published]

    @strawberry.mutation
    async def create_credential(self, info: Info, input: CreateCredentialInput) -> Credential:
        credential = await info.context.run(Hookline.create_credential, input.name, input.kind, input.parts())
        return Credential.from_domain(credential)

    @strawberry.mutation
    async def define_event_type(self, info: Info, input: DefineEventTypeInput) -> EventType:
        spec = await info.context.run(
            Hookline.define_event_type, input.name, input.description, input.sample_payload
        )
        return EventType.from_domain(spec)

    @strawberry.mutation
    async def send_test(
        self, info: Info, webhook_id: strawberry.ID, use_sample_data: bool | None = False
    ) -> TestResult:
        request, errors = await info.context.run(
            Hookline.prepare_test, id_argument(webhook_id), use_sample_data=use_sample_data is True
        )
        if request is None:
            return TestResult.refused(errors)
        attempt = await info.context.send(request, 1)
        return TestResult.from_attempt(attempt, request.body)

    @strawberry.mutation
    async def recover_deliveries(self, info: Info, webhook_id: strawberry.ID, since: datetime) -> int:
        return await info.context.run(Hookline.recover_deliveries, id_argument(webhook_id), utc(since))

    @strawberry.mutation
    async def replay_events(
        self,
        info: Info,
        webhook_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime | None = None,
    ) -> int:
        return await info.context.run(Hookline.replay_events, id_argument(webhook_id), utc(from_), utc(to))

    @strawberry.mutation
    async def redeliver(self, info: Info, delivery_id: strawberry.ID) -> Delivery:
        delivery = await info.context.run(Hookline.redeliver, id_argument(delivery_id))
        return Delivery.from_domain(delivery)


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def delivery_updates(
        self, info: Info, webhook_id: strawberry.ID | None = None, after: str | None = None
    ) -> AsyncGenerator[DeliveryUpdate, None]:
        principal = await info.context.principal()
        principal.require(Permission.READ_DELIVERIES)
        position = _cursor_position(after)
        async for update in info.context.live.follow(
            principal.organization_id, optional_id_argument(webhook_id), position
        ):
            yield DeliveryUpdate.from_domain(update)


def _cursor_position(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise InvalidInput([Problem("after", "is not a cursor of deliveryUpdates")])
    return int(cursor)


class HooklineSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logged in `ErrorCodes` when unexpected; expected ones are answers, not incidents."""


# The limits' validation rules, made once: the validation cache is keyed by the rules too, so rule
# classes made anew for each request (as the limiter extensions do) would never hit it.
LIMIT_RULES = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
]


def build_schema(document_cache_bytes: int = DEFAULT_DOCUMENT_CACHE_BYTES) -> strawberry.Schema:
    # Clients send the same few documents again and again: each is parsed and validated once (the
    # cache is keyed by the token limit and the rules too, so the limits still hold).
    documents = DocumentCache(document_cache_bytes)
    # Factories, so that every request gets extensions of its own.
    return HooklineSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        execution_context_class=LeafShortcutExecution,
        extensions=[
            lambda: AddValidationRules(LIMIT_RULES),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: CachedDocuments(documents),
            ErrorCodes,
        ],
    )
