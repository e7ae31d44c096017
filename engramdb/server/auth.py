"""API keys: random secrets shown once, stored as SHA-256 hashes, each confined to one tenant.

A key may also be confined to a set of user ids. An admin key manages keys (of its tenant,
or of every tenant for the tenant ``*``). SHA-256 rather than a slow password hash: keys
are 256-bit random secrets, not guessable passwords, and every request verifies one.
"""

from __future__ import annotations

import hashlib
import secrets

from ..errors import ValidationError
from ..models import ApiKey, new_id, utcnow
from ..stores.base import Store

PREFIX = "egm_"


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
