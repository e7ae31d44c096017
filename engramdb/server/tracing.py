"""Optional OpenTelemetry tracing of the REST API (``engramdb serve --otel``).

The FastAPI instrumentation makes a span per request (route, method, status, duration), sent
to the process's tracer provider: the one ``opentelemetry-instrument`` sets up from the
``OTEL_*`` variables, or one configured by the program that calls ``create_app``. Without a
provider the spans go nowhere, at no cost worth counting. Probes (``/healthz``, ``/readyz``,
``/metrics``) make no spans: they would drown the requests that matter.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError

UNTRACED = "/healthz,/readyz,/metrics"
_MISSING = ("OpenTelemetry tracing needs opentelemetry-instrumentation-fastapi: "
            "pip install 'engramdb[otel]'")  # fmt: skip


def _instrumentor() -> Any:
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        raise ConfigurationError(_MISSING) from None
    return FastAPIInstrumentor


def check_tracing() -> None:
    """Raise ``ConfigurationError`` (naming the package to install) if tracing cannot be had."""
    _instrumentor()


def instrument(app: Any) -> None:
    """Trace every request of ``app`` but the probes."""
    _instrumentor().instrument_app(app, excluded_urls=UNTRACED)
