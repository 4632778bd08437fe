"""Which parts of a webhook's configuration are secrets, and how they read when masked.

A header is secret when its name suggests it (`SECRET_HEADER_WORDS`, case-insensitive); its value
reads `[redacted]`. A target URL keeps its scheme, host and path and masks the value of every query
parameter (`?token=[redacted]`, names kept), any password in its user information, and, for hosts
that carry the secret in the path itself (Slack, Teams, Discord and Zapier incoming webhooks),
everything after the path's first segment (`https://hooks.slack.com/services/[redacted]`).
Admins read webhooks as set; every other reader, and the audit trail, gets these masked forms.
"""

from __future__ import annotations

from urllib.parse import urlsplit

REDACTED = "[redacted]"
# "auth" covers Authorization and Proxy-Authorization.
SECRET_HEADER_WORDS = ("auth", "cookie", "key", "token", "secret", "password", "signature")
# Incoming-webhook services whose URL path is the secret (after a first segment that names the
# kind of hook): a host as written, or a parent domain with a leading dot.
PATH_SECRET_HOSTS = (
    "hooks.slack.com",
    ".webhook.office.com",
    "outlook.office.com",
    "outlook.office365.com",
    "discord.com",
    ".discord.com",
    "discordapp.com",
    "hooks.zapier.com",
)


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_HEADER_WORDS)


def masked_header_value(name: str, value: str) -> str:
    return REDACTED if is_secret_header(name) else value


def masked_url(url: str) -> str:
    """The URL with its secrets masked; a URL with none comes back exactly as given."""
    rest, hash_mark, fragment = url.partition("#")
    base, question_mark, query = rest.partition("?")
    scheme, slashes, after = base.partition("//")
    if slashes:
        netloc, slash, path = after.partition("/")
        user, at, host = netloc.rpartition("@")
        if at and ":" in user:
            netloc = f"{user.partition(':')[0]}:{REDACTED}@{host}"
        first, _, secret = path.partition("/")
        if secret and _path_is_secret(host):
            path = f"{first}/{REDACTED}"
        base = f"{scheme}//{netloc}{slash}{path}"
    return f"{base}{question_mark}{_masked_query(query)}{hash_mark}{fragment}"


def _path_is_secret(host_and_port: str) -> bool:
    try:
        host = (urlsplit(f"//{host_and_port}").hostname or "").rstrip(".")
    except ValueError:  # not a host that could be sent to
        return False
    return any(host == h or (h.startswith(".") and host.endswith(h)) for h in PATH_SECRET_HOSTS)


def _masked_query(query: str) -> str:
    """Every parameter's value masked, its name kept; a parameter with no `=` may be a token itself."""
    masked = []
    for parameter in query.split("&") if query else ():
        name, equals, value = parameter.partition("=")
        if equals:
            masked.append(f"{name}={REDACTED}" if value else parameter)
        else:
            masked.append(REDACTED if parameter else parameter)
    return "&".join(masked)
