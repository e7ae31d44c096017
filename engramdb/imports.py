"""Restoring exported memories: each record validated and confined to its own scope, then embedded.

A record may name the memories it was derived from (``sources``). Each must lie in the
record's own scope (``ingest.same_owner``: same tenant, same user and agent), else the batch is
refused: a key limited to one user could otherwise link its memory to another user's message,
read that message back through ``expand``, and have its deletion invalidate the link. A source
that is no memory of the tenant at all is kept: an export names the messages a memory came
from even after they were deleted.

A record keeps its id unless a memory outside its scope holds that id. Then the record is
imported under a fresh id, which is what the store does with an id held in another tenant: the
answer is the same wherever the id lives, and tells nothing of the memory that holds it. Only a
memory of the record's own scope answers NOOP with its id, as a re-import should.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pydantic

from .config import MemoryConfig
from .embedders import Embedder
from .errors import ValidationError
from .ingest import check_metadata, check_text, first_error, index_text, make_scope, same_owner
from .models import MemoryItem, content_hash, new_id
from .stores.base import NewRecord, Store

BATCH_FACTOR = 10  # an import batch may hold this many times max_batch records


def import_records(
    config: MemoryConfig, store: Store, embedder: Embedder, tenant_id: str, items: Iterable[MemoryItem | dict[str, Any]]
) -> list[NewRecord]:
    """The records an import writes, embedded; nothing is written here (``store`` is only read).

    Raises:
        ValidationError: too many records, a malformed one, or a source outside a record's scope.
    """
    raw = list(items)
    if len(raw) > config.max_batch * BATCH_FACTOR:
        raise ValidationError(f"import batch too large; send at most {BATCH_FACTOR}x max_batch records at a time")
    parsed = [_parse(config, position, item) for position, item in enumerate(raw)]
    held = _held(store, tenant_id, [i.id for i in parsed] + [s for i in parsed for s in i.sources])
    parsed = [i.model_copy(update={"id": new_id()}) if i.id in held and not same_owner(i, held[i.id]) else i
              for i in parsed]  # fmt: skip
    batch = {i.id: i for i in parsed}
    for position, item in enumerate(parsed):
        for source_id in item.sources:
            source = held.get(source_id) or batch.get(source_id)
            if source is not None and not same_owner(item, source):  # one wording whoever holds it
                raise ValidationError(
                    f"record {position}: source {source_id!r} is not a memory in the record's own scope"
                )
    texts = [index_text(i.memory) for i in parsed]
    vectors: Any = embedder.embed(texts, kind="document") if texts else []
    return [NewRecord(i, t, v) for i, t, v in zip(parsed, texts, vectors, strict=True)]


def _parse(config: MemoryConfig, position: int, raw: MemoryItem | dict[str, Any]) -> MemoryItem:
    try:
        item = raw if isinstance(raw, MemoryItem) else MemoryItem.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"record {position}: {first_error(exc)}") from exc
    make_scope(item.user_id, item.agent_id, item.session_id, required=True)
    check_text(item.memory, config, f"record {position} memory")
    metadata = check_metadata(item.metadata, config)  # the rules add and update apply
    return item.model_copy(update={"hash": content_hash(item.memory), "metadata": metadata})


def _held(store: Store, tenant_id: str, ids: list[str]) -> dict[str, MemoryItem]:
    """The memories of this tenant that hold any of these ids, whatever their state."""
    return {m.id: m for m in store.get_many(tenant_id, list(dict.fromkeys(ids)))}
