"""engramdb's one exception hierarchy.

Split by who is at fault, so a caller (or the HTTP layer) can map a class to a response::

    EngramError                        HTTP
    ├── ValidationError                400  the caller sent something malformed (empty text, bad filter)
    ├── NotFoundError                  404  the id does not exist in the caller's tenant
    ├── ConfigurationError             500  the library was set up wrongly (unknown embedder, mismatched store)
    │   ├── Unauthorized               401  no valid API key
    │   └── Forbidden                  403  the key may not do this (another user, not an admin)
    ├── StoreError                     503  the database failed at run time
    └── ProviderError                  502  an embedding or LLM provider failed (carries status and body)
        └── RateLimited                429  the server asks the caller to slow down

Drivers' and SDKs' exceptions are translated into these at the boundary, so every backend
raises the same class for the same fault. ``http_status`` is the one table the server
answers with and the client reads back (``for_status``), so the two cannot disagree.
"""

from __future__ import annotations

from .usage import Usage


class EngramError(Exception):
    """Root of every error engramdb raises on purpose."""

    code = "engram_error"
    http_status = 500


class ValidationError(EngramError, ValueError):
    """The input is malformed; nothing was written."""

    code = "validation_error"
    http_status = 400


class NotFoundError(EngramError, KeyError):
    """The requested memory does not exist (in this tenant)."""

    code = "not_found"
    http_status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class ConfigurationError(EngramError):
    """engramdb was configured in a way that cannot work."""

    code = "configuration_error"
    http_status = 500


class StoreError(EngramError):
    """The storage backend failed while running an operation."""

    code = "store_error"
    http_status = 503


class ProviderError(EngramError):
    """An embedding or LLM provider failed.

    Attributes:
        status: HTTP status from the provider, when there was one.
        body: the provider's response body (truncated to 2 kB), for diagnosis.
        usage: what the failed work had already spent (an LLM that answered, but not usefully),
            so a job's cost is counted even when it fails.
    """

    code = "provider_error"
    http_status = 502

    def __init__(
        self, message: str, *, status: int | None = None, body: str | None = None, usage: Usage | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body[:2000] if body else body
        self.usage = usage


class Unauthorized(ConfigurationError):
    """No valid API key came with the request (none, unknown or revoked)."""

    code = "unauthorized"
    http_status = 401


class Forbidden(ConfigurationError):
    """The key is valid but may not do this: another user's data, or key management without admin."""

    code = "forbidden"
    http_status = 403


class RateLimited(ProviderError):
    """Too many requests for this key: retry after a short wait."""

    code = "rate_limited"
    http_status = 429


_BY_CODE: dict[str, type[EngramError]] = {
    cls.code: cls
    for cls in (ValidationError, NotFoundError, ConfigurationError, StoreError, ProviderError, Unauthorized,
                Forbidden, RateLimited)
}  # fmt: skip


def for_status(status: int, code: str | None = None) -> type[EngramError]:
    """The error class a server's answer stands for: by its code when known, else by its status.

    Only a 4xx says by its status alone who is at fault; a 5xx without a known code (an
    internal error, a proxy in between) is the service failing: ``ProviderError``.
    """
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status in (400, 413, 422):
        return ValidationError
    by_status = (cls for cls in _BY_CODE.values() if cls.http_status == status and status < 500)
    return next(by_status, ProviderError)


__all__ = [
    "ConfigurationError",
    "EngramError",
    "Forbidden",
    "NotFoundError",
    "ProviderError",
    "RateLimited",
    "StoreError",
    "Unauthorized",
    "ValidationError",
]
