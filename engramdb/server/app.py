"""The REST API: versioned routes under /v1, mem0's routes (``mem0_routes``), health, metrics.

Every request is authenticated by an API key (``Authorization: Bearer …``, ``Token …`` or ``X-API-Key``)
that names its tenant; the handler awaits ``AsyncMemory.for_tenant(key.tenant_id)`` (the
one async dispatch: ``aio``), so the store confines every read and write to that tenant. A
key limited to some user ids may only name those users, and an id that belongs to another
user is answered as not found. Errors are JSON ``{"error": {"code", "message"}}`` with a
4xx for bad input, never a stack trace — unknown routes, wrong methods and unreadable
bodies included — and the OpenAPI document lists every status each route can answer
(``openapi.py``).

The interactive documents (``/docs``, Swagger UI; ``/redoc``, ReDoc) load their scripts and
styles from the server itself (the ``fastapi-offline`` package ships them, served under
``/docs/assets``), so they render on a machine with no route to a CDN. The memory inspector
(``/ui``, ``inspector.py``) is static files of the package that call ``/v1`` with the
visitor's own key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from ..aio import AsyncMemory
from ..errors import EngramError, RateLimited, Unauthorized
from ..memory import MAX_PAGE, Memory
from ..models import ApiKey, utcnow
from . import routes
from .auth import aauthenticate, presented_secret
from .inspector import mount_inspector
from .job_routes import register_jobs
from .mem0_routes import register_mem0
from .middleware import Limits, RateLimiter, install_metrics
from .openapi import document_errors, error_body

log = logging.getLogger("engramdb.server")


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auth: bool = True
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_import_bytes: int = Field(64_000_000, ge=1024, description="POST /v1/import: an export of many memories")
    rate_per_second: float = Field(100.0, gt=0, description="per key, sustained")
    burst: int = Field(200, ge=1)
    otel: bool = Field(False, description="trace every request with OpenTelemetry (tracing.py)")


DOCS_ASSETS = "/docs/assets"  # Swagger UI's and ReDoc's scripts, styles and icon, from the package
HTTP_CODES = {400: "validation_error", 404: "not_found", 405: "method_not_allowed"}


# --- the app ----------------------------------------------------------------------------


def create_app(memory: Memory, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    # requests run concurrently: a second thread per search would only add a hand-off
    memory = memory.with_config(parallel_search=False)
    shared = AsyncMemory.wrap(memory)
    closing: list[Callable[[], object]] = []  # run as the server stops, after the last request

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for close in closing:
            await asyncio.to_thread(close)

    app = FastAPIOffline(title="engramdb", version="1", description="Long-term memory for AI agents.",
                         static_url=DOCS_ASSETS, lifespan=lifespan)  # fmt: skip
    limiter = RateLimiter(settings.rate_per_second, settings.burst)
    open_key = ApiKey(id="local", tenant_id=memory.tenant_id, admin=True, created_at=utcnow())
    _install_errors(app, settings)
    # declared as security schemes so the OpenAPI document names every way of sending a key;
    # the key itself is read by presented_secret, the one rule every surface follows
    bearer = HTTPBearer(auto_error=False, scheme_name="bearer", description="Authorization: Bearer <key>")
    token = APIKeyHeader(name="Authorization", auto_error=False, scheme_name="token",
                         description="Authorization: Token <key> (as mem0's clients send it)")  # fmt: skip
    api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKey", description="X-API-Key: <key>")

    async def principal(
        request: Request,
        _bearer: HTTPAuthorizationCredentials | None = Depends(bearer),
        _token: str | None = Depends(token),
        _header_key: str | None = Depends(api_key),
    ) -> ApiKey:
        """Async on purpose: a sync dependency costs a thread hop per request (``aauthenticate``)."""
        secret = presented_secret(request.headers)
        key = await aauthenticate(memory.store, secret, networked=memory.async_reads is not None)
        if key is None:
            raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
        if not limiter.allow(key.id):
            raise RateLimited("rate limit exceeded for this key; retry shortly")
        return key

    async def local() -> ApiKey:
        return open_key

    async def tenant(key: ApiKey = Depends(principal if settings.auth else local)) -> routes.Scoped:
        return shared.for_tenant(key.tenant_id), key

    routes.register(app, tenant)
    register_mem0(app, tenant)
    routes.register_keys(app, tenant)
    register_jobs(app, tenant)
    mount_inspector(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> dict[str, Any]:
        stats = await shared.stats()
        return {"status": "ready", "schema_version": stats.schema_version, "embedder": stats.embedder}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    document_errors(app, auth=settings.auth)
    if settings.otel:
        from .tracing import instrument

        closing.append(instrument(app))
    return app


def _install_errors(app: FastAPI, settings: ServerSettings) -> None:
    from prometheus_client import Counter, Histogram

    requests = Counter("engramdb_requests_total", "HTTP requests", ["route", "status"], registry=None)
    latency = Histogram("engramdb_request_seconds", "HTTP request latency", ["route"], registry=None)
    install_metrics(requests, latency)

    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse(error_body(code, message), status_code=status)

    @app.exception_handler(EngramError)
    async def engram_error(request: Request, exc: EngramError) -> JSONResponse:
        return error(exc.http_status, exc.code, str(exc))

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


__all__ = ["MAX_PAGE", "ServerSettings", "create_app"]
