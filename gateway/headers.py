"""Security headers on every answer: no page of ours may be framed, no answer sniffed as another type,
and no address of ours leaks in a Referer. A `<meta>` policy cannot forbid framing; these headers can."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The console's own <meta> policy (gateway/console/index.html), plus what only a header can say.
CONSOLE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors 'none'"
)
GRAPHIQL = Path(__file__).with_name("graphiql.html")

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def graphiql_page() -> tuple[str, str]:
    """GraphiQL's page and its policy: its scripts come from unpkg.com (pinned by their integrity) and
    its one inline script by its hash; styles may be inline (its dialogs add some)."""
    html = GRAPHIQL.read_text(encoding="utf-8")
    inline = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    ]
    policy = (
        f"default-src 'none'; script-src https://unpkg.com {' '.join(inline)}; "
        "style-src https://unpkg.com 'unsafe-inline'; font-src data:; img-src data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; object-src 'none'; frame-ancestors 'none'"
    )
    return html, policy


class SecurityHeaders:
    """Adds `ALWAYS` to every HTTP answer, and the console's policy to any answer without a policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers[name] = value
                headers.setdefault("Content-Security-Policy", CONSOLE_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
