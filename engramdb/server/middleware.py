"""Plain ASGI middleware and the per-key rate limiter: what runs around every request.

Plain ASGI rather than Starlette's ``@app.middleware("http")``, whose extra task and stream
per response cost more than a search on the hot path.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from .openapi import error_body

log = logging.getLogger("engramdb.server")


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
        body = json.dumps(error_body("body_too_large", message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_INTERNAL_BODY = json.dumps(error_body("internal_error", "internal error")).encode()


def _internal_error() -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_INTERNAL_BODY)).encode())]
    return {"type": "http.response.start", "status": 500, "headers": headers}


_METRICS: dict[str, Any] = {}


def install_metrics(requests: Any, latency: Any) -> None:
    """Register the collectors once per process (several apps in one test process share them)."""
    from prometheus_client import REGISTRY

    if not _METRICS:
        REGISTRY.register(requests)
        REGISTRY.register(latency)
        _METRICS.update(requests=requests, latency=latency)
