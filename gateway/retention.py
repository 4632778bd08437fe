"""The organisation's retention policy in GraphQL: `retentionPolicy` (admins and auditors) and
`setRetentionPolicy` (admins). Durations stay the text the admin wrote; the domain checks them. And
`eraseEvent` (admins): one event's payload and its deliveries' bodies erased now, irreversibly."""

from __future__ import annotations

import strawberry

from domain.application import Hookline
from domain.retention import RetentionPolicy as DomainRetentionPolicy
from gateway.context import Info
from gateway.inputs import id_argument


@strawberry.type
class RetentionPolicy:
    payloads: str | None  # ISO 8601 duration: older payloads, request and response bodies are erased
    deliveries: str | None  # ISO 8601 duration: older deliveries and their events are removed

    @classmethod
    def from_domain(cls, policy: DomainRetentionPolicy) -> RetentionPolicy:
        return cls(payloads=policy.payloads, deliveries=policy.deliveries)


@strawberry.input
class RetentionPolicyInput:
    payloads: str | None = None  # null: forever
    deliveries: str | None = None  # null: forever; when both are set, deliveries >= payloads


@strawberry.type
class RetentionQuery:
    @strawberry.field
    async def retention_policy(self, info: Info) -> RetentionPolicy:
        return RetentionPolicy.from_domain(await info.context.run(Hookline.retention_policy))


@strawberry.type
class RetentionMutation:
    @strawberry.mutation
    async def set_retention_policy(self, info: Info, input: RetentionPolicyInput) -> RetentionPolicy:
        policy = await info.context.run(Hookline.set_retention_policy, input.payloads, input.deliveries)
        return RetentionPolicy.from_domain(policy)

    @strawberry.mutation
    async def erase_event(self, info: Info, id: strawberry.ID, reason: str) -> bool:
        return await info.context.run(Hookline.erase_event, id_argument(id), reason)
