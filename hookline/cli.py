"""The `hookline` command: serve, keys, schema."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from domain.audit import canonical, public_key_of, verify_lines, with_checkpoints
from domain.errors import InvalidInput
from domain.roles import Role
from hookline import logs
from hookline.settings import Settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold keys and secrets
    help="Hookline: outgoing webhooks.",
)
keys = typer.Typer(no_args_is_help=True, help="API keys of organisations.")
app.add_typer(keys, name="keys")
audit = typer.Typer(
    no_args_is_help=True, help="The audit trail: export it, verify an export, print the signing public key."
)
app.add_typer(audit, name="audit")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run the gateway on /graphql; in embedded mode it also delivers."""
    import uvicorn

    from hookline.wiring import build_gateway

    settings = Settings()
    logs.configure(settings.log_level)
    asgi = build_gateway(settings)
    uvicorn.run(asgi, host=host, port=port, log_config=None, access_log=False)


@app.command()
def worker(
    readiness_port: Annotated[
        int | None, typer.Option(help="serve /readyz on this port (503 while the claim loop is stalled)")
    ] = None,
    readiness_host: Annotated[str, typer.Option(help="address /readyz listens on")] = "127.0.0.1",
) -> None:
    """Run an arq worker that fans out and delivers (needs HOOKLINE_REDIS_URL)."""
    from hookline.runtime import Liveness, serve_readiness, supervise_worker
    from hookline.wiring import worker_settings
    from workers.arq_worker import ClaimingWorker

    settings = Settings()
    logs.configure(settings.log_level)
    if not settings.redis_url:
        typer.echo(
            "error: hookline worker needs HOOKLINE_REDIS_URL (e.g. redis://127.0.0.1:6379/0)", err=True
        )
        raise typer.Exit(2)
    liveness = Liveness()
    options = worker_settings(settings)
    ticked = liveness.watch("claimer", options["poll_delay"])
    if readiness_port is not None:
        serve_readiness(liveness, readiness_host, readiness_port)
    supervise_worker(lambda: ClaimingWorker(ticked=ticked, **options).run())


@keys.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="organisation name; created if new")],
    role: Annotated[Role, typer.Option(help="what the key may do")],
) -> None:
    """Print a new API key (one line, nothing else); it is shown only this once."""
    from hookline.wiring import build_application

    settings = Settings()
    logs.configure("warning")
    application = build_application(settings)
    try:
        key = application.issue_key(org, role)
    except InvalidInput as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    finally:
        application.close()
    typer.echo(key)


@audit.command("export")
def audit_export(
    org: Annotated[str | None, typer.Option(help="only this organisation")] = None,
    out: Annotated[Path | None, typer.Option(help="file to write; default standard output")] = None,
) -> None:
    """Write the audit trail as JSON Lines, one record per line, oldest first, then a signed checkpoint
    of each organisation's last record."""
    from domain.ids import organization_id
    from hookline.wiring import open_application
    from store.audit import MissingStoredEvent

    settings = Settings()
    logs.configure("warning")
    signing_key = _audit_signing_key(settings)
    opened = open_application(settings)
    application, read_model = opened.app, opened.read_model
    try:
        read_model.catch_up()
        only = None
        if org is not None:
            only = organization_id(org)
            if not application.organization_exists(only):
                typer.echo(f"error: no organisation named {org!r}", err=True)
                raise typer.Exit(2)
        with out.open("w", encoding="utf-8") if out else nullcontext(sys.stdout) as sink:
            for entry in with_checkpoints(read_model.queries.export_audit(only), signing_key):
                sink.write(canonical(entry) + "\n")
    except MissingStoredEvent as missing:  # the store was tampered with: `verifyAuditLog` says where
        typer.echo(f"error: {missing}", err=True)
        raise typer.Exit(1) from None
    finally:
        application.close()


@audit.command("verify")
def audit_verify(
    file: Annotated[Path, typer.Argument(help="an export of `hookline audit export`")],
    public_key: Annotated[
        str | None,
        typer.Option(help="the signing public key (`hookline audit public-key`): checkpoints must hold"),
    ] = None,
) -> None:
    """Recompute the hash chain of an export, with no database; with the public key, check its signed
    checkpoints too; exit 1 naming the first bad line."""
    try:
        key = None if public_key is None else public_key_of(public_key)
    except ValueError as error:
        typer.echo(f"error: --public-key: {error}", err=True)
        raise typer.Exit(2) from None
    with file.open(encoding="utf-8") as lines:
        result = verify_lines(lines, key)
    if not result.valid:
        typer.echo(f"invalid: line {result.first_invalid}: {result.reason}", err=True)
        raise typer.Exit(1)
    signed = "signatures checked" if key else "signatures not checked: no --public-key"
    typer.echo(f"valid: {result.checked} records, {result.checkpoints} checkpoints ({signed})")


@audit.command("public-key")
def audit_public_key() -> None:
    """Print the public key of the export's checkpoint signatures (base64 of its 32 raw bytes)."""
    import base64

    logs.configure("warning")
    signing_key = _audit_signing_key(Settings())
    typer.echo(base64.b64encode(signing_key.public_key().public_bytes_raw()).decode("ascii"))


def _audit_signing_key(settings: Settings) -> Ed25519PrivateKey:
    from hookline.keys import audit_signing_key

    try:
        return audit_signing_key(settings)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


@keys.command("list")
def keys_list(org: Annotated[str | None, typer.Option(help="only this organisation")] = None) -> None:
    """List keys: id, organisation, role, created, revoked; never the key itself."""
    from hookline.wiring import build_application

    settings = Settings()
    logs.configure("warning")
    application = build_application(settings)
    try:
        for key in application.api_keys(org):
            revoked = "revoked" if key.revoked else "active"
            created = key.created_on.isoformat(timespec="seconds")
            typer.echo(f"{key.id}\t{key.organization_name}\t{key.role}\t{created}\t{revoked}")
    finally:
        application.close()


@keys.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the id shown by `hookline keys list`")]) -> None:
    """Revoke a key; requests with it are refused within seconds, on every gateway."""
    from domain.ids import parse_id
    from hookline.wiring import build_application

    parsed = parse_id(key_id)
    settings = Settings()
    logs.configure("warning")
    application = build_application(settings)
    try:
        if parsed is None or not application.revoke_key(parsed):
            typer.echo(f"error: no key with id {key_id!r}", err=True)
            raise typer.Exit(2)
    finally:
        application.close()
    typer.echo(f"revoked {parsed}")


@app.command()
def schema() -> None:
    """Print the GraphQL schema (SDL), as committed in schema.graphql."""
    from gateway.schema import build_schema

    typer.echo(build_schema().as_str())
