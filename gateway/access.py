"""The caller and the organisation's API keys in GraphQL: `me`, `apiKeys`, `createApiKey` (the key
shown this once) and `revokeApiKey`. The command line still makes an organisation's first key."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.application import Hookline
from domain.organizations import ApiKey as DomainApiKey
from domain.roles import Principal, Role
from gateway.context import Info
from gateway.inputs import id_argument

# The schema's enum is the domain's own, under its names (ADMIN, …) with their values ("admin", …).
strawberry.enum(Role)


@strawberry.type
class ApiKey:
    id: strawberry.ID
    name: str | None
    role: Role
    created_at: datetime
    last_used_at: datetime | None  # written at most once a minute per key
    revoked: bool

    @classmethod
    def from_domain(cls, key: DomainApiKey, last_used_at: datetime | None = None) -> ApiKey:
        return cls(
            id=strawberry.ID(str(key.id)),
            name=key.name,
            role=Role(key.role),
            created_at=key.created_on,
            last_used_at=last_used_at,
            revoked=key.revoked,
        )


@strawberry.type
class CreatedApiKey:
    key: str  # shown this once: only its hash is stored
    api_key: ApiKey


@strawberry.type
class Me:
    key_id: strawberry.ID
    role: Role
    organization_id: strawberry.ID
    organization_name: str

    @classmethod
    def from_domain(cls, principal: Principal) -> Me:
        return cls(
            key_id=strawberry.ID(str(principal.key_id)),
            role=principal.role,
            organization_id=strawberry.ID(str(principal.organization_id)),
            organization_name=principal.organization_name,
        )


@strawberry.input
class CreateApiKeyInput:
    name: str | None = None
    role: Role


@strawberry.type
class AccessQuery:
    @strawberry.field
    async def me(self, info: Info) -> Me:
        return Me.from_domain(await info.context.principal())

    @strawberry.field
    async def api_keys(self, info: Info) -> list[ApiKey]:
        keys = await info.context.run(Hookline.organization_api_keys)
        used = await info.context.key_usage.last_used([key.id for key in keys])
        return [ApiKey.from_domain(key, used.get(key.id)) for key in keys]


@strawberry.type
class AccessMutation:
    @strawberry.mutation
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreatedApiKey:
        key, api_key = await info.context.run(Hookline.create_api_key, input.name, input.role)
        return CreatedApiKey(key=key, api_key=ApiKey.from_domain(api_key))

    @strawberry.mutation
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        api_key = await info.context.run(Hookline.revoke_api_key, id_argument(id))
        used = await info.context.key_usage.last_used([api_key.id])
        return ApiKey.from_domain(api_key, used.get(api_key.id))
