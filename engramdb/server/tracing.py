"""Optional OpenTelemetry tracing of the REST API (``engramdb serve --otel``).

The FastAPI instrumentation makes a span per request (route, method, status, duration).
Spans go to the process's tracer provider when it has one: one the program that calls
``create_app`` set, or ``opentelemetry-instrument``'s. Otherwise engramdb sets one up with the
SDK, exporting over OTLP/HTTP as the standard ``OTEL_*`` variables say (the endpoint,
``OTEL_EXPORTER_OTLP_ENDPOINT``, defaults to a collector on localhost), with
``service.name=engramdb`` unless ``OTEL_SERVICE_NAME`` names another. Probes (``/healthz``,
``/readyz``, ``/metrics``) make no spans: they would drown the requests that matter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError

UNTRACED = "/healthz,/readyz,/metrics"
FLUSH_MS = 5_000  # at shutdown: how long a collector that does not answer may hold the exit
INSTALL = "pip install 'engramdb[otel]'"
log = logging.getLogger("engramdb.server")


def _instrumentor() -> Any:
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        missing = "OpenTelemetry tracing needs opentelemetry-instrumentation-fastapi"
        raise ConfigurationError(f"{missing}: {INSTALL}") from None
    return FastAPIInstrumentor


def check_tracing() -> None:
    """Raise ``ConfigurationError`` (naming what to install) if requests cannot be traced."""
    _instrumentor()


def instrument(app: Any) -> Callable[[], object]:
    """Trace every request of ``app`` but the probes; returns what sends the spans still held,
    for the server to call as it stops. uvicorn ends its process by the signal that stopped it,
    so exit handlers (where the SDK would flush) never run."""
    provider = _provider()
    _instrumentor().instrument_app(app, excluded_urls=UNTRACED, tracer_provider=provider)
    flush = getattr(provider, "force_flush", None)
    return (lambda: flush(FLUSH_MS)) if flush is not None else (lambda: None)


def _provider() -> Any:
    from opentelemetry import trace

    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):  # the process has one already
        return current
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("no OpenTelemetry SDK or OTLP exporter: spans are dropped (%s)", INSTALL)
        return current
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "engramdb"}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
