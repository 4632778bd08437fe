"""The OAuth2 token cache: one fetch for a burst, kept until expiry less 30 s, forgotten once on a 401;
and how a token endpoint's answer reads. A fake clock and a fetch that is a plain function."""

from __future__ import annotations

import asyncio

import pytest

from domain.credentials import TokenGrant
from workers.tokens import Token, TokenError, Tokens, read_token_response

GRANT = TokenGrant("https://login.example.com/token", "hookline", "client-secret")


class Endpoint:
    """A token endpoint as a function: counts its calls, answers tok-1, tok-2, … after a pause."""

    def __init__(self, lifetime: float = 3600.0, pause: float = 0.05) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.pause = pause
        self.fail: str | None = None

    async def __call__(self, grant: TokenGrant) -> Token:
        self.calls += 1
        await asyncio.sleep(self.pause)
        if self.fail:
            raise TokenError(self.fail)
        return Token(f"tok-{self.calls}", self.lifetime)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_of_deliveries_waits_for_one_token_request() -> None:
    endpoint = Endpoint()
    tokens = Tokens(endpoint)
    got = await asyncio.gather(*(tokens.get(GRANT) for _ in range(50)))
    assert set(got) == {"tok-1"}
    assert endpoint.calls == 1


async def test_a_token_is_kept_until_its_lifetime_less_30_seconds() -> None:
    endpoint, clock = Endpoint(lifetime=100), Clock()
    tokens = Tokens(endpoint, clock)
    assert await tokens.get(GRANT) == "tok-1"
    clock.now += 69.9
    assert await tokens.get(GRANT) == "tok-1"
    clock.now += 0.1
    assert await tokens.get(GRANT) == "tok-2"
    assert endpoint.calls == 2


async def test_each_grant_has_its_own_token() -> None:
    endpoint = Endpoint()
    tokens = Tokens(endpoint)
    other = TokenGrant(GRANT.token_url, "another-client", "its-secret")
    assert [await tokens.get(GRANT), await tokens.get(other), await tokens.get(GRANT)] == [
        "tok-1",
        "tok-2",
        "tok-1",
    ]


async def test_a_refused_token_is_fetched_again_once_for_everyone_who_held_it() -> None:
    endpoint = Endpoint()
    tokens = Tokens(endpoint)
    held = await tokens.get(GRANT)
    for _ in range(10):  # ten deliveries answered 401 with the same token
        tokens.forget(GRANT, held)
    renewed = await asyncio.gather(*(tokens.get(GRANT) for _ in range(10)))
    assert set(renewed) == {"tok-2"}
    tokens.forget(GRANT, held)  # a late 401 for the old token leaves the new one alone
    assert await tokens.get(GRANT) == "tok-2"
    assert endpoint.calls == 2


async def test_a_failed_fetch_fails_every_waiter_and_the_next_get_tries_again() -> None:
    endpoint = Endpoint()
    endpoint.fail = "token endpoint answered 401: invalid_client"
    tokens = Tokens(endpoint)
    results = await asyncio.gather(*(tokens.get(GRANT) for _ in range(5)), return_exceptions=True)
    assert [str(r) for r in results] == ["token endpoint answered 401: invalid_client"] * 5
    assert endpoint.calls == 1
    endpoint.fail = None
    assert await tokens.get(GRANT) == "tok-2"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            401,
            b'{"error": "invalid_client", "error_description": "bad secret"}',
            "token endpoint answered 401: invalid_client",
        ),
        (400, b'{"error": "invalid scope with spaces"}', "token endpoint answered 400"),
        (503, b"<html>down</html>", "token endpoint answered 503"),
        (200, b'{"token_type": "Bearer"}', "token endpoint answered 200 without a usable access_token"),
        (200, b'{"access_token": "a b"}', "token endpoint answered 200 without a usable access_token"),
        (
            200,
            b'{"access_token": "ab", "expires_in": "soon"}',
            "token endpoint answered 200 with an expires_in that is not a number",
        ),
    ],
)
def test_a_token_endpoints_refusal_names_its_status_and_error_code(
    status: int, body: bytes, message: str
) -> None:
    with pytest.raises(TokenError) as raised:
        read_token_response(status, body)
    assert str(raised.value) == message


def test_a_token_without_a_stated_lifetime_is_kept_five_minutes() -> None:
    assert read_token_response(200, b'{"access_token": "abc", "token_type": "Bearer"}') == Token("abc", 300.0)
    assert read_token_response(200, b'{"access_token": "abc", "expires_in": "60"}') == Token("abc", 60.0)
