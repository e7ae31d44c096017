"""The REST API: versioned routes under /v1, mem0-compatible routes, health, metrics.

Every request is authenticated by an API key (``Authorization: Bearer …`` or ``X-API-Key``)
that names its tenant; the handler works on ``memory.for_tenant(key.tenant_id)``, so the
store confines every read and write to that tenant. A key limited to some user ids may only
name those users, and an id that belongs to another user is answered as not found. Errors
are JSON ``{"error": {"code", "message"}}`` with a 4xx for bad input, never a stack trace —
unknown routes, wrong methods and unreadable bodies included — and the OpenAPI document
lists every status each route can answer (``openapi.py``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from ..config import SearchOptions
from ..errors import ConfigurationError, EngramError, NotFoundError, ProviderError, StoreError, ValidationError
from ..memory import MAX_PAGE, Memory
from ..models import MAX_METADATA_DEPTH, ApiKey, MemoryItem, check_metadata_depth, utcnow
from .auth import authenticate
from .openapi import ErrorDetail, ErrorResponse, document_errors

log = logging.getLogger("engramdb.server")

STATUS: dict[type[EngramError], int] = {
    ValidationError: 400, NotFoundError: 404, ConfigurationError: 500, StoreError: 503, ProviderError: 502,
}  # fmt: skip


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth: bool = True
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_import_bytes: int = Field(64_000_000, ge=1024, description="POST /v1/import: an export of many memories")
    rate_per_second: float = Field(100.0, gt=0, description="per key, sustained")
    burst: int = Field(200, ge=1)


class Forbidden(EngramError):
    code = "forbidden"


class TooMany(EngramError):
    code = "rate_limited"


class Unauthorized(EngramError):
    code = "unauthorized"


HTTP_CODES = {400: "validation_error", 404: "not_found", 405: "method_not_allowed"}


class NDJSONResponse(StreamingResponse):
    """One JSON document per line (the export), so the OpenAPI document names its real type."""

    media_type = "application/x-ndjson"


# --- request bodies ---------------------------------------------------------------------


def _shallow(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refused with the request: metadata too deep to serialise, once stored, would fail every read of it."""
    check_metadata_depth(metadata)
    return metadata


Metadata = Annotated[
    dict[str, Any] | None,
    AfterValidator(_shallow),
    Field(description=f"a JSON object nested at most {MAX_METADATA_DEPTH} levels deep"),
]


class ScopeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    run_id: str | None = Field(None, description="mem0's name for session_id")

    @property
    def session(self) -> str | None:
        return self.session_id or self.run_id


class AddBody(ScopeBody):
    messages: str | dict[str, Any] | list[dict[str, Any]]
    metadata: Metadata = None
    kind: str = "episode"
    infer: bool | None = None
    occurred_at: datetime | None = None
    expires_at: datetime | None = None
    importance: float = 0.5


class SearchBody(ScopeBody):
    query: str
    filters: dict[str, Any] | None = None
    limit: int = 10
    threshold: float | None = None
    include_invalid: bool = False
    as_of: datetime | None = None
    time_range: tuple[datetime | None, datetime | None] | None = Field(None, description="[start, end), either null")
    reference_date: datetime | None = None
    explain: bool = False
    options: SearchOptions | None = Field(None, description="fusion weights and factors for this search")


class UpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    memory: str | None = Field(None, description="mem0's name for text")
    data: str | None = Field(None, description="mem0's older name for text")
    metadata: Metadata = None


class ContextBody(ScopeBody):
    query: str
    max_tokens: int = 1500
    recent_turns: int = 8
    relevant: int = 10
    profile: int = 20
    reference_date: datetime | None = None
    encoding: str = "o200k_base"


class SummaryBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = None
    agent_id: str | None = None
    sentences: int = 3


class PruneBody(ScopeBody):
    policy: dict[str, Any] | None = None
    hard: bool = False


# --- the app ----------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1, now)
            return True


def create_app(memory: Memory, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    # requests run concurrently: a second thread per search would only add a hand-off
    memory = memory.with_config(parallel_search=False)
    app = FastAPI(title="engramdb", version="1", description="Long-term memory for AI agents.")
    limiter = RateLimiter(settings.rate_per_second, settings.burst)
    open_key = ApiKey(id="local", tenant_id=memory.tenant_id, admin=True, created_at=utcnow())
    _install_errors(app, settings)
    # declared as security schemes so the OpenAPI document names both ways of sending a key
    bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="Authorization: Bearer <key>")
    api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey", description="X-API-Key: <key>")

    async def principal(
        token: HTTPAuthorizationCredentials | None = Depends(bearer), header_key: str | None = Depends(api_key)
    ) -> ApiKey:
        """Async on purpose: a sync dependency costs a thread hop per request, and a key in a local
        file is a 50 µs lookup. A store across the network (native async reads) is asked from a
        worker thread: its round trip must not hold the event loop."""
        secret = token.credentials.strip() if token else header_key
        if memory.async_reads is None:
            key = authenticate(memory.store, secret)
        else:
            key = await run_in_threadpool(authenticate, memory.store, secret)
        if key is None:
            raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
        if not limiter.allow(key.id):
            raise TooMany("rate limit exceeded for this key; retry shortly")
        return key

    async def local() -> ApiKey:
        return open_key

    async def tenant(key: ApiKey = Depends(principal if settings.auth else local)) -> tuple[Memory, ApiKey]:
        return memory.for_tenant(key.tenant_id), key

    _routes(app, tenant)
    _mem0_routes(app, tenant)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> dict[str, Any]:
        stats = memory.stats()
        return {"status": "ready", "schema_version": stats.schema_version, "embedder": stats.embedder}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    document_errors(app, auth=settings.auth)
    return app


def _install_errors(app: FastAPI, settings: ServerSettings) -> None:
    from prometheus_client import Counter, Histogram

    requests = Counter("engramdb_requests_total", "HTTP requests", ["route", "status"], registry=None)
    latency = Histogram("engramdb_request_seconds", "HTTP request latency", ["route"], registry=None)
    _install_metrics(requests, latency)

    def error(status: int, code: str, message: str) -> JSONResponse:
        body = ErrorResponse(error=ErrorDetail(code=code, message=message))
        return JSONResponse(body.model_dump(), status_code=status)

    @app.exception_handler(EngramError)
    async def engram_error(request: Request, exc: EngramError) -> JSONResponse:
        statuses: dict[type[EngramError], int] = {Forbidden: 403, TooMany: 429, Unauthorized: 401, **STATUS}
        status = next((s for cls, s in statuses.items() if isinstance(exc, cls)), 500)
        return error(status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(UnicodeError)
    async def not_unicode(request: Request, exc: UnicodeError) -> JSONResponse:
        return error(400, "validation_error", "strings must be valid Unicode (no lone surrogates)")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """The router's 404 and 405 and FastAPI's unreadable bodies, in the one error shape."""
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only those of the first route matching it
            headers["Allow"] = ", ".join(_methods(app, request))
        response = error(exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), _http_message(request, exc))
        response.headers.update(headers)
        return response

    app.add_middleware(Limits, max_body_bytes=settings.max_body_bytes, max_import_bytes=settings.max_import_bytes)


def _methods(app: FastAPI, request: Request) -> list[str]:
    allowed: set[str] = set()
    for route in app.router.routes:
        methods = getattr(route, "methods", None)
        if methods and route.matches(request.scope)[0] is not Match.NONE:
            allowed |= methods
    return sorted(allowed)


def _http_message(request: Request, exc: HTTPException) -> str:
    if exc.status_code == 404:
        return f"no route {request.url.path}"
    if exc.status_code == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return "the request body is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "the request body nests too deeply"
    if cause is not None:
        return f"the request body could not be read: {cause}"
    return str(exc.detail)


IMPORT_PATH = "/v1/import"  # its body is an export: allowed to be larger than any other request's


class Limits:
    """Body size (declared or streamed) and per-route metrics, as plain ASGI.

    Starlette's ``@app.middleware("http")`` runs every response through an extra task and
    stream; on the search path that hand-off cost more than the search itself.
    """

    def __init__(self, app: Any, *, max_body_bytes: int, max_import_bytes: int) -> None:
        self.app, self.max_body_bytes, self.max_import_bytes = app, max_body_bytes, max_import_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_import_bytes if scope["path"] == IMPORT_PATH else self.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._too_large(send, limit)
            return
        started, status, received, rejected, answering = time.perf_counter(), 500, 0, False, False

        async def counted() -> Any:
            nonlocal received, rejected, status
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit and not rejected:  # a chunked body with no declared length
                rejected, status = True, 413
                await self._too_large(send, limit)
                return {"type": "http.disconnect"}  # the app stops reading; what it answers is dropped
            return message

        async def sent(message: dict[str, Any]) -> None:
            nonlocal status, answering
            if rejected:
                return
            if message["type"] == "http.response.start":
                status, answering = message["status"], True
            await send(message)

        try:
            await self.app(scope, counted, sent)
        except Exception:
            # Answered here rather than by Starlette's last-resort handler, which re-raises after
            # answering: the server would then drop a keep-alive connection the client still holds.
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if answering:  # half a response is out: only closing the connection can tell the client
                raise
            await sent(_internal_error())
            await sent({"type": "http.response.body", "body": _INTERNAL_BODY})
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            _METRICS["requests"].labels(path, str(status)).inc()
            _METRICS["latency"].labels(path).observe(time.perf_counter() - started)

    async def _too_large(self, send: Any, limit: int) -> None:
        message = f"request bodies are limited to {limit} bytes"
        body = json.dumps({"error": {"code": "body_too_large", "message": message}}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_INTERNAL_BODY = json.dumps({"error": {"code": "internal_error", "message": "internal error"}}).encode()


def _internal_error() -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_INTERNAL_BODY)).encode())]
    return {"type": "http.response.start", "status": 500, "headers": headers}


_METRICS: dict[str, Any] = {}


def _install_metrics(requests: Any, latency: Any) -> None:
    """Register the collectors once per process (several apps in one test process share them)."""
    from prometheus_client import REGISTRY

    if not _METRICS:
        REGISTRY.register(requests)
        REGISTRY.register(latency)
        _METRICS.update(requests=requests, latency=latency)


def check_user(key: ApiKey, user_id: str | None) -> None:
    """A key limited to some users must name one of them."""
    if key.user_ids is not None and user_id not in key.user_ids:
        raise Forbidden("this API key may only act for users " + ", ".join(key.user_ids))


def owned(m: Memory, key: ApiKey, memory_id: str) -> MemoryItem:
    """The memory, if this key may see it; another user's memory is answered as not found."""
    return _visible(key, m.get(_no_nul(memory_id)))


async def aowned(m: Memory, key: ApiKey, memory_id: str) -> MemoryItem:
    """``owned``, awaited on a store with native async reads (else on a worker thread)."""
    if m.async_reads is None:
        return await run_in_threadpool(owned, m, key, memory_id)
    return _visible(key, await m.async_reads.aget(m.tenant_id, m._check_id(_no_nul(memory_id))))


def _no_nul(memory_id: str) -> str:
    """A NUL in a path (``%00``) is bad input on every store; PostgreSQL's text cannot even hold it."""
    if "\x00" in memory_id:
        raise ValidationError("memory_id contains a NUL character")
    return memory_id


def _visible(key: ApiKey, item: MemoryItem) -> MemoryItem:
    if key.user_ids is not None and item.user_id not in key.user_ids:
        raise NotFoundError(f"no memory with id {item.id!r}")
    return item


Tenant = Callable[..., Any]


def _routes(app: FastAPI, tenant: Tenant) -> None:
    from . import routes

    routes.register(app, tenant)


def _mem0_routes(app: FastAPI, tenant: Tenant) -> None:
    from . import routes

    routes.register_mem0(app, tenant)
    routes.register_keys(app, tenant)


__all__ = ["MAX_PAGE", "ServerSettings", "create_app"]
