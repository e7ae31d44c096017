"""API keys: random secrets shown once, stored as SHA-256 hashes, each confined to one tenant.

A key may also be confined to a set of user ids. An admin key manages keys (of its tenant,
or of every tenant for the tenant ``*``); an admin key confined to some users manages only
keys confined to some of those users, so it can never mint a key that reaches further than
itself. SHA-256 rather than a slow password hash: keys are 256-bit random secrets, not
guessable passwords, and every request verifies one.

Every surface that takes keys (``serve``, ``proxy``, ``mcp --transport http``) reads the
secret with ``presented_secret`` and binds the request to the key's tenant and users.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from ..errors import ValidationError
from ..models import ApiKey, new_id, utcnow
from ..stores.base import Store

PREFIX = "egm_"
ALL_TENANTS = "*"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    store: Store, tenant_id: str, *, user_ids: list[str] | None = None, admin: bool = False, name: str | None = None
) -> tuple[str, ApiKey]:
    """A new key: the secret (give it to the client, it is not stored) and its record."""
    if not tenant_id or len(tenant_id) > 128:
        raise ValidationError("a key needs a tenant id of 1-128 characters")
    if user_ids is not None and (not user_ids or any(not u.strip() for u in user_ids)):
        raise ValidationError("user ids of a key must be non-empty strings")
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id(), tenant_id=tenant_id, name=name, user_ids=user_ids, admin=admin, created_at=utcnow())
    store.save_key(key, hash_secret(secret))
    return secret, key


def authenticate(store: Store, secret: str | None) -> ApiKey | None:
    if not secret or not secret.startswith(PREFIX):
        return None
    return store.find_key(hash_secret(secret))


async def aauthenticate(store: Store, secret: str | None, *, networked: bool) -> ApiKey | None:
    """``authenticate`` for code on an event loop: a key in a local file is a 50 µs lookup, made
    inline (a thread hop would cost more); a store across the network is asked from a worker
    thread, so its round trip never holds the loop."""
    if not networked:
        return authenticate(store, secret)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(authenticate, store, secret)


AUTH_SCHEMES = ("bearer", "token")  # Token: how mem0's clients send their key


def _secret_in(name: str, value: str) -> str | None:
    if name.lower() == "authorization":
        scheme, _, credentials = value.strip().partition(" ")
        value = credentials if scheme.lower() in AUTH_SCHEMES else ""
    value = value.strip()
    return value if value.startswith(PREFIX) else None


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """The engramdb key of a request: ``Authorization: Bearer egm_…`` (or ``Token egm_…``, as
    mem0's SDK sends it), else ``X-API-Key``.

    A bearer token that is not an engramdb key is not ours (the proxy forwards it to its
    upstream): the key then comes from ``X-API-Key``. ``headers`` is case-insensitive
    (Starlette's) or has lower-case names.
    """
    for name in ("authorization", "x-api-key"):
        value = headers.get(name)
        secret = _secret_in(name, value) if value else None
        if secret is not None:
            return secret
    return None


def carries_secret(name: str, value: str) -> bool:
    """Whether this header holds an engramdb key (one never to pass on to another service)."""
    return name.lower() in ("authorization", "x-api-key") and _secret_in(name, value) is not None


def manages(admin: ApiKey, tenant_id: str, user_ids: list[str] | None) -> bool:
    """Whether the admin key ``admin`` may create, see and revoke a key of ``tenant_id`` for
    ``user_ids``: its own tenant (any tenant for ``*``), and no user that ``admin`` cannot reach."""
    if not admin.admin or admin.tenant_id not in (ALL_TENANTS, tenant_id):
        return False
    return admin.user_ids is None or (user_ids is not None and set(user_ids) <= set(admin.user_ids))
