"""The masking rule on its own: which header values are secrets, what of a target URL is, and that an
audit record's data holds neither (the gateway's tests show it applied by role)."""

from __future__ import annotations

import pytest

from domain.audit import jsonable
from domain.masking import REDACTED, is_secret_header, masked_header_value, masked_url


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "X-Api-Key",
        "x-auth-token",
        "X-Hub-Signature-256",
        "X-Client-Secret",
        "X-Password",
        "APIKEY",
        "X-Token",
    ],
)
def test_a_header_whose_name_suggests_a_secret_has_its_value_masked(name: str) -> None:
    assert is_secret_header(name)
    assert masked_header_value(name, "s3cr3t-value") == REDACTED


@pytest.mark.parametrize("name", ["X-Team", "Content-Type", "Accept", "X-Request-Source"])
def test_an_ordinary_header_keeps_its_value(name: str) -> None:
    assert masked_header_value(name, "ops") == "ops"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://example.com/hooks/in", "https://example.com/hooks/in"),
        (
            "https://example.com/hooks?token=abc123&channel=ops",
            "https://example.com/hooks?token=[redacted]&channel=[redacted]",
        ),
        ("https://example.com?sig=abc&empty=&bare", "https://example.com?sig=[redacted]&empty=&[redacted]"),
        ("https://example.com/p#frag", "https://example.com/p#frag"),
        (
            "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/[redacted]",
        ),
        (
            "https://acme.webhook.office.com/webhookb2/1b2c@3d4e/IncomingWebhook/5f6a/7b8c",
            "https://acme.webhook.office.com/webhookb2/[redacted]",
        ),
        ("https://discord.com/api/webhooks/123/tok", "https://discord.com/api/[redacted]"),
        (
            "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
            "?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=SECRET",
            "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
            "?api-version=[redacted]&sp=[redacted]&sv=[redacted]&sig=[redacted]",
        ),
        ("https://user:pass@example.com/x", "https://user:[redacted]@example.com/x"),
    ],
)
def test_a_target_url_keeps_its_host_path_and_parameter_names_but_not_its_secrets(
    url: str, masked: str
) -> None:
    assert masked_url(url) == masked


def test_an_audit_record_holds_a_webhooks_secret_headers_and_url_query_masked_at_any_depth() -> None:
    spec = {
        "target_url": "https://example.com/in?token=abc",
        "headers": [{"name": "X-Api-Key", "value": "k-123"}, {"name": "X-Team", "value": "ops"}],
    }
    assert jsonable({"spec": spec, "changes": {"headers": [], "target_url": None}}) == {
        "spec": {
            "target_url": "https://example.com/in?token=[redacted]",
            "headers": [{"name": "X-Api-Key", "value": REDACTED}, {"name": "X-Team", "value": "ops"}],
        },
        "changes": {"headers": [], "target_url": None},
    }
    # Anything else under those names is converted as before, and nothing is lost.
    assert jsonable({"headers": ["a", {"name": 1, "value": "v"}], "target_url": 3}) == {
        "headers": ["a", {"name": 1, "value": "v"}],
        "target_url": 3,
    }
