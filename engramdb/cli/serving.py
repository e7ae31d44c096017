"""Running a server from the command line: its log, its startup line, uvicorn.

``serve``, ``proxy`` and ``mcp --transport http`` share these, so the three say the same
things the same way. Everything a server writes goes to stderr: the startup line, engramdb's
and uvicorn's log, and (at ``--log-level info`` or ``debug``) uvicorn's access log, one line
per request. The access log is off at the default level, ``warning``: its lines carry query
strings, which name users.
"""

from __future__ import annotations

import copy
import re
import socket
from enum import Enum
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer

from .common import err


class LogLevel(str, Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"

    @property
    def access_log(self) -> bool:
        """uvicorn's access log is written at info and below."""
        return self in (LogLevel.info, LogLevel.debug)


LogLevelOpt = Annotated[
    LogLevel, typer.Option("--log-level", help="what the server logs to stderr; info and debug add the access log")
]
_PASSWORD_PARAM = re.compile(r"(password=)[^&\s]+", re.IGNORECASE)


def masked(url: str) -> str:
    """A store URL safe to print: the password in its authority or its parameters is ``***``."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        url = urlunsplit(parts._replace(netloc=netloc))
    return _PASSWORD_PARAM.sub(r"\1***", url)


def store_url(location: str) -> str:
    """The store as a URL: SQLite stores report a file path, PostgreSQL ones their URL."""
    if "://" in location or location == ":memory:":
        return masked(location)
    return f"sqlite:///{location}"


def announce(what: str, host: str, port: int, location: str, auth: str, *extra: str) -> None:
    """The one line a server prints as it starts: where it listens, on which store, who may call."""
    address = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    parts = [f"engramdb {what} on {address}", f"store {store_url(location)}", f"auth: {auth}", *extra]
    err.print(" · ".join(parts), highlight=False, markup=False)


def log_config(level: LogLevel) -> dict[str, Any]:
    """uvicorn's logging, with engramdb's loggers beside its own and the access log on stderr.

    Passed to uvicorn rather than applied here, so that every worker process of
    ``serve --workers N`` sets it up the same way.
    """
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["engramdb"] = {"handlers": ["default"], "level": level.value.upper(), "propagate": False}
    return config


def listening(host: str, port: int) -> socket.socket:
    """A socket bound and listening before the server starts: its real port can be printed (for
    ``--port 0``) and a browser sent to it at once; connections wait in the backlog meanwhile."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise typer.Exit(2) from None


def run_on(app: Any, sock: socket.socket, *, level: LogLevel) -> None:
    """``run`` on a socket already listening (see ``listening``), in this process."""
    import uvicorn

    config = uvicorn.Config(app, log_level=level.value, access_log=level.access_log, log_config=log_config(level))
    uvicorn.Server(config).run(sockets=[sock])


def run(app: Any, *, host: str, port: int, level: LogLevel, workers: int = 1) -> None:
    """uvicorn with the chosen log level; ``app`` is an ASGI app, or an import string with ``workers``."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, workers=workers if workers > 1 else None, factory=isinstance(app, str),
                log_level=level.value, access_log=level.access_log, log_config=log_config(level))  # fmt: skip
