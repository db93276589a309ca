"""`imagekit login` and `imagekit logout`, and `transport_for()`: the one way commands reach a registry.

`transport_for(host)` builds a Transport from the global options (`--insecure-registry`,
`--tls-verify`, `--certs-dir`, `--debug`) and the user's stored credentials, so pull, push, tags and
manifest all trust and authenticate the same way; a registry mirror gets the same treatment under its
own host. Login verifies the credentials against the registry (GET /v2/ with Basic, or a token from
the realm, as `docker login` does) before storing anything.

`IMAGEKIT_DOCKER_HUB_API` (host[:port]) is a test hook: the address that answers for Docker Hub in
place of registry-1.docker.io, so tests can stand a local registry in for Docker Hub, which they must
never contact. Docker Hub's credentials still apply to it; nothing else changes.
"""

from __future__ import annotations

import os
import sys

import click

from imagekit.cli import Context, cli
from imagekit.errors import AuthError
from imagekit.reference import DOCKER_HUB, DOCKER_HUB_API, Reference
from imagekit.registry.credentials import Credentials, CredentialStore, registry_hostname
from imagekit.registry.mirrors import MIRROR_RETRY, Mirror
from imagekit.registry.retry import RetryPolicy
from imagekit.registry.transport import Transport

DOCKER_HUB_API_ENV = "IMAGEKIT_DOCKER_HUB_API"


def api_host(registry: str) -> str:
    """Where the API of a registry named as the user spells it (`docker.io`, `https://host:5000/`) answers."""
    host = registry_hostname(registry)
    return (os.environ.get(DOCKER_HUB_API_ENV) or DOCKER_HUB_API) if host == DOCKER_HUB else host


def is_insecure(host: str, insecure_registries: tuple[str, ...]) -> bool:
    """True when `host` (host[:port]) was listed with --insecure-registry, with or without its port."""
    listed = {registry_hostname(entry) for entry in insecure_registries}
    return host in listed or host.rsplit(":", 1)[0] in listed


def transport_for(
    target: str | Reference | Mirror, *, credentials: Credentials | None = None, ctx: click.Context | None = None
) -> Transport:
    """A Transport to the registry of `target` (a Reference, a registry name or a mirror) with the CLI's options.

    Credentials default to what the user stored for that registry (login, config.json, helpers); a
    mirror is its own registry: its URL's scheme and path, its own host's credentials, fewer retries.
    """
    obj: Context = (ctx or click.get_current_context()).obj
    if isinstance(target, Mirror):
        name = host = target.host
        scheme, prefix, retry = target.scheme, target.path, MIRROR_RETRY
    else:
        name = target.domain if isinstance(target, Reference) else target
        host, scheme, prefix, retry = api_host(name), None, "", RetryPolicy()
    if credentials is None:
        credentials = CredentialStore().get(name)
    return Transport(
        host,
        insecure=is_insecure(host, obj.insecure_registries),
        tls_verify=obj.tls_verify,
        credentials=credentials,
        debug=obj.debug,
        certs_dir=obj.certs_dir,
        retry=retry,
        scheme=scheme,
        prefix=prefix,
    )


@cli.command()
@click.option("-u", "--username", help="Username (prompted for when missing).")
@click.option("-p", "--password", help="Password or token (insecure: prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password or token from standard input.")
@click.argument("registry", default=DOCKER_HUB)
@click.pass_context
def login(ctx: click.Context, username: str | None, password: str | None, password_stdin: bool, registry: str) -> None:
    """Log in to REGISTRY (default Docker Hub): verify the credentials, then store them."""
    if password and password_stdin:
        raise click.UsageError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise click.UsageError("--password-stdin requires --username")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("no password on standard input")
    elif password:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", err=True)
    elif not username and _stored_credentials_work(ctx, registry):
        click.echo("Login Succeeded (with the stored credentials)")
        return
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    if not username or not password:
        raise click.UsageError("a username and a password are required")
    credentials = Credentials(username, password)
    try:
        transport_for(registry, credentials=credentials, ctx=ctx).authenticate()
    except AuthError as err:
        raise AuthError(f"login to {registry_hostname(registry)} failed: {err}", status=err.status) from None
    where = CredentialStore().store(registry, credentials)
    if not where.startswith("credential helper"):
        click.echo(f"Credentials stored unencrypted in {where}", err=True)
    click.echo("Login Succeeded")


def _stored_credentials_work(ctx: click.Context, registry: str) -> bool:
    """`docker login REGISTRY` without a username first tries what is stored, and prompts only if that fails."""
    stored = CredentialStore().get(registry)
    if stored is None:
        return False
    try:
        transport_for(registry, credentials=stored, ctx=ctx).authenticate()
    except AuthError as err:
        click.echo(f"The stored credentials for {registry_hostname(registry)} do not work: {err}", err=True)
        return False
    return True


@cli.command()
@click.argument("registry", default=DOCKER_HUB)
def logout(registry: str) -> None:
    """Forget the stored credentials for REGISTRY (default Docker Hub)."""
    host = registry_hostname(registry)
    removed = CredentialStore().erase(registry)
    click.echo(f"Removing login credentials for {host}" if removed else f"Not logged in to {host}")
