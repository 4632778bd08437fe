"""Every page of the gateway (the console, its files, GraphiQL) forbids being framed and sniffed and sends
no Referer, in real HTTP headers; GraphiQL keeps no API key in the browser."""

from __future__ import annotations

import base64
import hashlib
import http.client
import re

import pytest

from tests.support import Server

CONSOLE_DIRECTIVES = [  # the console's own <meta> policy, which the header must keep
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "object-src 'none'",
]


def get(server: Server, path: str, accept: str = "text/html") -> tuple[int, http.client.HTTPMessage, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", path, headers={"Accept": accept})
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        connection.close()


def directives(policy: str) -> set[str]:
    return {" ".join(d.split()) for d in policy.split(";") if d.strip()}


def assert_cannot_be_framed_or_sniffed(headers: http.client.HTTPMessage) -> None:
    [policy] = headers.get_all("Content-Security-Policy") or [""]
    assert "frame-ancestors 'none'" in directives(policy), policy
    assert headers["X-Frame-Options"] == "DENY", dict(headers)
    assert headers["X-Content-Type-Options"] == "nosniff", dict(headers)
    assert headers["Referrer-Policy"] in ("no-referrer", "same-origin", "strict-origin"), dict(headers)


@pytest.mark.parametrize("path", ["/", "/index.html", "/app.js", "/api.js", "/style.css", "/favicon.svg"])
def test_the_console_and_its_files_cannot_be_framed_or_sniffed(strict_server: Server, path: str) -> None:
    status, headers, _ = get(strict_server, path)

    assert status == 200
    assert_cannot_be_framed_or_sniffed(headers)
    assert set(CONSOLE_DIRECTIVES) <= directives(headers["Content-Security-Policy"]), headers


def test_the_console_page_keeps_its_own_meta_policy_which_the_header_repeats(strict_server: Server) -> None:
    _, headers, html = get(strict_server, "/")

    meta = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html)
    assert meta is not None, html[:500]
    assert directives(meta.group(1)) == set(CONSOLE_DIRECTIVES)
    assert directives(headers["Content-Security-Policy"]) == {*CONSOLE_DIRECTIVES, "frame-ancestors 'none'"}


def test_graphiql_cannot_be_framed_and_keeps_no_header_in_the_browser(strict_server: Server) -> None:
    status, headers, html = get(strict_server, "/graphql")

    assert status == 200
    assert headers["Content-Type"].startswith("text/html"), dict(headers)
    assert_cannot_be_framed_or_sniffed(headers)
    assert "shouldPersistHeaders: false" in html
    assert "shouldPersistHeaders: true" not in html
    # Its history and tabs hold headers too: what it stores passes through a storage that drops them.
    assert "storage: headerlessStorage," in html
    assert '"graphiql:queries", "graphiql:favorites", "graphiql:tabState"' in html
    assert "parameters.headers" not in html  # nor can a link set them
    # Its scripts: GraphiQL's own, pinned by integrity, and the inline one the policy names by its hash.
    policy = directives(headers["Content-Security-Policy"])
    [scripts] = [d for d in policy if d.startswith("script-src ")]
    [inline] = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert set(scripts.split()[1:]) == {"https://unpkg.com", f"'sha256-{digest}'"}, scripts
    for tag in re.findall(r"<script[^>]*\bsrc=[^>]*>", html):
        assert "https://unpkg.com/" in tag, tag
        assert 'integrity="sha384-' in tag, tag
    assert "GraphiQL.createFetcher" in html


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/metrics", "/graphql?query=%7B__typename%7D", "/nothing"]
)
def test_every_other_answer_is_not_sniffed_or_framed_either(strict_server: Server, path: str) -> None:
    _, headers, _ = get(strict_server, path, accept="application/json")

    assert_cannot_be_framed_or_sniffed(headers)
