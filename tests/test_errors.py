"""One table of HTTP statuses: what the server answers, the client reads back as the same class."""

from __future__ import annotations

import pytest

from engramdb.errors import (
    ConfigurationError,
    EngramError,
    Forbidden,
    NotFoundError,
    ProviderError,
    RateLimited,
    StoreError,
    Unauthorized,
    ValidationError,
    for_status,
)


@pytest.mark.parametrize("cls", [ValidationError, NotFoundError, ConfigurationError, StoreError, ProviderError,
                                 Unauthorized, Forbidden, RateLimited])  # fmt: skip
def test_every_class_comes_back_as_itself(cls: type[EngramError]) -> None:
    assert for_status(cls.http_status, cls.code) is cls


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [(500, "internal_error", ProviderError), (502, None, ProviderError), (503, None, ProviderError),
     (413, "body_too_large", ValidationError), (422, "invalid_request", ValidationError), (403, None, Forbidden),
     (404, "no_such_route", NotFoundError), (429, None, RateLimited)],
)  # fmt: skip
def test_unknown_codes_are_read_by_status(status: int, code: str | None, expected: type[EngramError]) -> None:
    """A 5xx without a known code is the service failing, never the caller's configuration."""
    assert for_status(status, code) is expected
