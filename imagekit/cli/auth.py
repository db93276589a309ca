"""`imagekit login` and `imagekit logout`, and `registry_options()`: the global options as the library takes them.

Every command that reaches a registry (pull, push, tags, manifest, login, and build for its FROM
images) builds its Transports with imagekit.registry.options.transport_for from these options, so all
trust and authenticate the same way. Login verifies the credentials against the registry (GET /v2/
with Basic, or a token from the realm, as `docker login` does) before storing anything.
"""

from __future__ import annotations

import sys

import click

from imagekit.cli import Context
from imagekit.cli.group import cli
from imagekit.cli.config import config_path, registry_mirrors
from imagekit.errors import AuthError, NotATerminal
from imagekit.log import logger
from imagekit.reference import DOCKER_HUB
from imagekit.registry.credentials import Credentials, CredentialStore, registry_hostname
from imagekit.registry.options import RegistryOptions, transport_for

_log = logger(__name__)

def registry_options(obj: Context) -> RegistryOptions:
    """`--insecure-registry`, `--tls-verify`, `--certs-dir`, `--registry-mirror` and `--debug` as a value;
    without --registry-mirror (or IMAGEKIT_REGISTRY_MIRRORS) the settings file's mirrors, read only if needed."""
    return RegistryOptions(
        insecure_registries=obj.insecure_registries,
        tls_verify=obj.tls_verify,
        certs_dir=obj.certs_dir,
        registry_mirrors=obj.registry_mirrors,
        debug=obj.debug,
        default_mirrors=lambda: registry_mirrors(config_path()),
    )


@cli.command()
@click.option("-u", "--username", metavar="USER", help="Username (prompted for when missing).")
@click.option("-p", "--password", metavar="PASSWORD", help="Password or token (insecure: prefer --password-stdin).")
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
    if (not username or not password) and not sys.stdin.isatty():
        raise NotATerminal("Cannot perform an interactive login from a non TTY device (use -u USER --password-stdin)")
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    if not username or not password:
        raise click.UsageError("a username and a password are required")
    credentials = Credentials(username, password)
    try:
        transport_for(registry, registry_options(ctx.obj), credentials=credentials).authenticate()
    except AuthError as err:
        host = registry_hostname(registry)
        if err.status == 401:
            _log.debug("login to %s refused: %s", host, err)  # the registry's or token server's own words
            raise AuthError(f"invalid username or password for {host}", status=err.status) from None
        raise AuthError(f"login to {host} failed: {err}", status=err.status) from None
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
        transport_for(registry, registry_options(ctx.obj), credentials=stored).authenticate()
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
