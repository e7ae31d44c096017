"""engramdb's one exception hierarchy.

Split by who is at fault, so a caller (or the HTTP layer) can map a class to a response::

    EngramError
    ├── ValidationError        the caller sent something malformed (empty text, bad filter, no scope)
    ├── NotFoundError          the id does not exist in the caller's tenant
    ├── ConfigurationError     the library was set up wrongly (unknown embedder, mismatched store)
    ├── StoreError             the database failed at run time
    └── ProviderError          an embedding or LLM provider failed (carries status and body)

Drivers' and SDKs' exceptions are translated into these at the boundary, so every backend
raises the same class for the same fault.
"""

from __future__ import annotations

from .usage import Usage


class EngramError(Exception):
    """Root of every error engramdb raises on purpose."""

    code = "engram_error"


class ValidationError(EngramError, ValueError):
    """The input is malformed; nothing was written."""

    code = "validation_error"


class NotFoundError(EngramError, KeyError):
    """The requested memory does not exist (in this tenant)."""

    code = "not_found"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class ConfigurationError(EngramError):
    """engramdb was configured in a way that cannot work."""

    code = "configuration_error"


class StoreError(EngramError):
    """The storage backend failed while running an operation."""

    code = "store_error"


class ProviderError(EngramError):
    """An embedding or LLM provider failed.

    Attributes:
        status: HTTP status from the provider, when there was one.
        body: the provider's response body (truncated to 2 kB), for diagnosis.
        usage: what the failed work had already spent (an LLM that answered, but not usefully),
            so a job's cost is counted even when it fails.
    """

    code = "provider_error"

    def __init__(
        self, message: str, *, status: int | None = None, body: str | None = None, usage: Usage | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body[:2000] if body else body
        self.usage = usage


__all__ = [
    "ConfigurationError",
    "EngramError",
    "NotFoundError",
    "ProviderError",
    "StoreError",
    "ValidationError",
]
