"""What lies on disk: no signing secret, API key or event payload in plaintext anywhere in the store."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from tests.queries import CREATE_WEBHOOK, DELIVERIES, PUBLISH, ROTATE, WEBHOOK, webhook_input
from tests.support import Receiver, Server, wait_until

KEY_PREFIX_LENGTH = len("hkl_") + 32 + 1  # "hkl_" + the key id in hex + "_"; the secret part follows


def store_files(server: Server) -> dict[str, bytes]:
    var = server.directory / "var"
    return {
        str(path.relative_to(var)): path.read_bytes() for path in sorted(var.rglob("*")) if path.is_file()
    }


def secret_forms(signing_secret: str) -> dict[str, bytes]:
    """The signing secret as written, its base64 part, and the raw key bytes it stands for."""
    encoded = signing_secret.removeprefix("whsec_")
    return {
        "whsec_ secret": signing_secret.encode(),
        "its base64 part": encoded.encode(),
        "its raw bytes": base64.b64decode(encoded),
    }


def key_forms(key: str) -> dict[str, bytes]:
    """An API key as written, and its secret part (which may itself hold "_": it is URL-safe base64)."""
    assert key.startswith("hkl_"), key
    secret = key[KEY_PREFIX_LENGTH:]
    assert len(secret) >= 20, key
    return {"API key": key.encode(), "its secret part": secret.encode()}


def test_the_store_holds_no_secret_key_or_payload_in_plaintext(
    embedded_server: Server, receiver: Receiver
) -> None:
    admin = embedded_server.key("acme", "admin")
    publisher = embedded_server.key("acme", "publisher")
    viewer = embedded_server.key("acme", "viewer")
    canary = f"canary-{uuid.uuid4().hex}"
    created = embedded_server.gql(
        admin,
        CREATE_WEBHOOK,
        {"input": webhook_input(receiver.url + "/store", headers=[{"name": "X-Team", "value": "ops"}])},
    ).ok()["createWebhook"]
    first_secret = created["signingSecret"]
    published = embedded_server.gql(
        publisher,
        PUBLISH,
        {
            "input": {
                "type": "alert.activated",
                "payload": {"alert_name": canary, "nested": {"note": f"{canary}-nested"}},
            }
        },
    ).ok()["publishEvent"]
    (request,) = receiver.wait_for(1)
    assert canary.encode() in request.body  # the payload did go through this store

    def delivered() -> dict[str, Any] | None:
        page = embedded_server.gql(admin, DELIVERIES, {"eventId": published["eventId"]}).ok()["deliveries"]
        edges = page["edges"]
        return edges[0]["node"] if edges and edges[0]["node"]["status"] == "SUCCEEDED" else None

    wait_until(delivered)
    second_secret = embedded_server.gql(admin, ROTATE, {"id": created["id"]}).ok()["rotateSigningSecret"][
        "signingSecret"
    ]
    assert second_secret != first_secret
    assert embedded_server.gql(admin, WEBHOOK, {"id": created["id"]}).ok()["webhook"]["signingSecret"] == (
        second_secret
    )

    files = store_files(embedded_server)
    assert "hookline.sqlite3" in files, sorted(files)
    assert files["hookline.sqlite3"].startswith(b"SQLite format 3\x00")

    forbidden: dict[str, bytes] = {"payload": canary.encode(), "nested payload": f"{canary}-nested".encode()}
    for label, secret in (("first", first_secret), ("rotated", second_secret)):
        for form, value in secret_forms(secret).items():
            forbidden[f"{label} signing secret, {form}"] = value
    for role, key in (("admin", admin), ("publisher", publisher), ("viewer", viewer)):
        for form, value in key_forms(key).items():
            forbidden[f"{role} {form}"] = value

    leaks = [
        f"{what} in var/{name}"
        for name, content in files.items()
        for what, value in forbidden.items()
        if value in content
    ]
    assert leaks == []
