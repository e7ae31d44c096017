"""Commands that serve engramdb to others: serve, proxy, mcp, ui, and the API keys they check."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import EngramError
from . import serving
from .common import AgentOpt, EmbedderOpt, JsonOpt, StoreOpt, UserOpt, emit, err, failed, opened, out
from .serving import LogLevel, LogLevelOpt, announce, masked

commands = typer.Typer()
NoAuthOpt = Annotated[bool, typer.Option("--no-auth", help="no API keys (loopback only)")]


def _loopback_without_auth(host: str, no_auth: bool) -> None:
    """Without API keys a server answers whoever reaches it: serve, proxy and MCP over HTTP then
    bind to loopback only."""
    from ..server.auth import LOOPBACK

    if no_auth and host not in LOOPBACK:
        err.print("[red]error:[/red] --no-auth serves only on loopback (127.0.0.1, ::1)")
        raise typer.Exit(2)


@commands.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8420,
    no_auth: NoAuthOpt = False,
    rate: Annotated[float, typer.Option(help="requests per second per key, in each worker process")] = 100.0,
    workers: Annotated[int, typer.Option(help="server processes sharing the store")] = 1,
    log_level: LogLevelOpt = LogLevel.warning,
    otel: Annotated[
        bool, typer.Option("--otel", envvar="ENGRAMDB_OTEL", help="OpenTelemetry tracing of every request")
    ] = False,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Serve the REST API (OpenAPI docs at /docs and /redoc, offline)."""
    from ..server import ServerSettings, create_app
    from ..server.factory import ENV
    from ..server.tracing import check_tracing

    _loopback_without_auth(host, no_auth)
    settings = ServerSettings(auth=not no_auth, rate_per_second=rate, burst=max(1, int(rate * 2)), otel=otel)
    with opened(store, embedder) as m:  # validates the configuration and migrates the store once
        if otel:
            _or_exit(check_tracing)
        extra = [f"{workers} workers" if workers > 1 else "1 worker", f"rate {rate:g}/s per key and worker"]
        announce("serve", host, port, m.store.location, _auth(no_auth, "Bearer or X-API-Key"), *extra,
                 *(["tracing: OpenTelemetry"] if otel else []))  # fmt: skip
        if workers <= 1:
            serving.run(create_app(m, settings), host=host, port=port, level=log_level)
            return
    os.environ[ENV] = json.dumps({**settings.model_dump(), "memory": {"store": store, "embedder": embedder}})
    serving.run("engramdb.server.factory:make_app", host=host, port=port, level=log_level, workers=workers)


@commands.command()
def ui(
    host: Annotated[str, typer.Option(help="loopback interface to bind (127.0.0.1, ::1, localhost)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one")] = 0,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="open it in the default browser")] = True,
    log_level: LogLevelOpt = LogLevel.warning,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Open the memory inspector on a store, for you alone: loopback only, no key (like serve --no-auth)."""
    import webbrowser

    from ..server import ServerSettings, create_app
    from ..server.auth import LOOPBACK

    if host not in LOOPBACK:
        err.print("[red]error:[/red] ui serves only on loopback (127.0.0.1, ::1, localhost); "
                  "use engramdb serve, with API keys, to share it")  # fmt: skip
        raise typer.Exit(2)
    with opened(store, embedder) as m:
        sock = serving.listening(host, port)
        bound = sock.getsockname()[1]
        url = (f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}") + "/ui/"
        announce("ui", host, bound, m.store.location, "none (loopback only)", f"inspector at {url}")
        if open_browser:
            webbrowser.open(url)
        serving.run_on(create_app(m, ServerSettings(auth=False)), sock, level=log_level)


def _auth(no_auth: bool, how: str) -> str:
    return "none (--no-auth, loopback only)" if no_auth else f"API keys ({how})"


def _or_exit(check: Callable[[], None]) -> None:
    try:
        check()
    except EngramError as exc:
        raise failed(exc) from None


@commands.command()
def proxy(
    upstream: Annotated[
        str, typer.Option(help="the OpenAI-compatible API to forward to, e.g. http://localhost:11434/v1")
    ],
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8421,
    max_tokens: Annotated[int, typer.Option(help="token budget of the context block added to each request")] = 1000,
    no_auth: NoAuthOpt = False,
    log_level: LogLevelOpt = LogLevel.warning,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Memory for an existing chat app: context in, turns recorded, per user (X-Engram-User or `user`).

    Callers send an engramdb key (X-API-Key; their Authorization goes upstream)."""
    from ..server.proxy import create_proxy

    if not upstream.startswith(("http://", "https://")):
        err.print("[red]error:[/red] --upstream must be an http(s) URL")
        raise typer.Exit(2)
    _loopback_without_auth(host, no_auth)
    with opened(store, embedder) as m:
        app_ = create_proxy(m, upstream, max_tokens=max_tokens, auth=not no_auth)
        announce("proxy", host, port, m.store.location, _auth(no_auth, "X-API-Key"), f"upstream {masked(upstream)}")
        serving.run(app_, host=host, port=port, level=log_level)


@commands.command("mcp")
def mcp_(
    transport: Annotated[str, typer.Option(help="stdio | http (streamable HTTP at /mcp)")] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP interface")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 8421,
    user: UserOpt = None,
    agent: AgentOpt = None,
    no_auth: NoAuthOpt = False,
    log_level: LogLevelOpt = LogLevel.warning,
    store: StoreOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Serve memory tools over MCP; --user/--agent fix the scope the tools may act on.

    Over stdio the caller is the local process that started it. Over HTTP every request needs
    an API key (Authorization: Bearer or X-API-Key), and the tools act in the key's tenant,
    for its users only."""
    from ..server.mcp_tools import build_mcp, http_app

    if transport not in ("stdio", "http"):
        err.print("[red]error:[/red] --transport is stdio or http")
        raise typer.Exit(2)
    if transport == "http":
        _loopback_without_auth(host, no_auth)
    with opened(store, embedder) as m:
        server = build_mcp(m, user_id=user, agent_id=agent, log_level=log_level.value)
        if transport == "stdio":
            server.run("stdio")
            return
        scope = [f"scope {'/'.join(x for x in (user, agent) if x)}"] if user or agent else []
        announce("mcp", host, port, m.store.location, _auth(no_auth, "Bearer or X-API-Key"), "MCP at /mcp", *scope)
        serving.run(http_app(server, m, host=host, auth=not no_auth), host=host, port=port, level=log_level)


keys_app = typer.Typer(no_args_is_help=True, help="API keys of the server.")
commands.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="the tenant the key belongs to")],
    user: Annotated[Optional[list[str]], typer.Option("--user", "-u", help="limit the key to these users")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="may manage keys")] = False,
    name: Annotated[Optional[str], typer.Option(help="a label")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key; its secret is printed once and never stored."""
    from ..server import create_key

    with opened(store, None) as m:
        secret, key = create_key(m.store, tenant, user_ids=user or None, admin=admin, name=name)
        if as_json:
            sys.stdout.write(json.dumps({"secret": secret, **key.model_dump(mode="json")}) + "\n")
        else:
            out.print(f"key {key.id} for tenant {tenant!r}: [bold]{secret}[/bold]  (shown once)")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[Optional[str], typer.Option("--tenant", "-t")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys (never their secrets)."""
    with opened(store, None) as m:
        keys = m.store.list_keys(tenant)
        table = Table("id", "tenant", "users", "admin", "created", "revoked")
        for k in keys:
            table.add_row(k.id, k.tenant_id, ",".join(k.user_ids or ["*"]), str(k.admin), str(k.created_at),
                          str(k.revoked_at or ""))  # fmt: skip
        emit(keys, as_json, table, empty="no keys")


@keys_app.command("revoke")
def keys_revoke(key_id: str, store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a key at once."""
    with opened(store, None) as m:
        key = m.store.revoke_key(key_id)
        emit(key, as_json, None) if as_json else out.print(f"revoked {key.id}")
