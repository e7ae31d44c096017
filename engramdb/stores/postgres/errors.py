"""The translation of psycopg's failures into engramdb's errors, in one place for the PostgreSQL store.

Both stores raise the same error for the same fault (``sqlite.connection`` has SQLite's side):
a full disk is ``StoreError(DISK_FULL)``, an update clashing with another memory's text is the
caller's ``ValidationError``, an unknown text search configuration is a ``ConfigurationError``
and anything else the driver raises is a ``StoreError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from ...errors import ConfigurationError, EngramError, StoreError, ValidationError
from ..sqlreads import DISK_FULL, DUPLICATE_TEXT


def store_error(exc: psycopg.Error, *, opening: str | None = None, unique: bool = False) -> EngramError:
    """The engramdb error for a driver failure; a full disk says so (the transaction was rolled back).

    ``opening`` names the (redacted) URL while the store opens; ``unique`` marks a write where a
    uniqueness clash is the caller's duplicate text.
    """
    if unique and isinstance(exc, psycopg.errors.UniqueViolation):
        return ValidationError(DUPLICATE_TEXT)
    if opening is not None:
        if isinstance(exc, psycopg.errors.UndefinedObject):
            return ConfigurationError(f"unknown text search configuration: {exc}")
        return StoreError(f"cannot open PostgreSQL store at {opening!r}: {exc}")
    if isinstance(exc, psycopg.errors.DiskFull):
        return StoreError(DISK_FULL)
    return StoreError(f"PostgreSQL error: {exc}")


@contextmanager
def driver_errors(*, opening: str | None = None, unique: bool = False) -> Iterator[None]:
    """Raise psycopg's failures inside the block (sync or async code) as ``store_error`` translates them."""
    try:
        yield
    except psycopg.Error as exc:
        raise store_error(exc, opening=opening, unique=unique) from exc
