"""The memories nearest a vector, with their cosine similarity: what framework vector stores promise.

``Memory.search`` ranks by fusing the dense and BM25 rankings and scores by rank, in [0, 1].
LangChain's ``VectorStore`` and LangGraph's ``BaseStore`` promise something else: the most
similar vectors first, each scored by its similarity. Both adapters search the store's exact
vector index here (scope and filter applied before scoring, as in every search), and their
scores are cosine similarities in [-1, 1], higher being more similar.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..embedders import normalize_rows
from ..errors import ValidationError
from ..filters import parse_filter
from ..ingest import make_scope
from ..memory import Memory
from ..models import MemoryItem
from ..stores.base import Query


def nearest(
    memory: Memory,
    vector: np.ndarray | Sequence[float],
    *,
    k: int,
    user_id: str | None = None,
    agent_id: str | None = None,
    filters: dict[str, Any] | None = None,
) -> list[tuple[MemoryItem, float]]:
    """The ``k`` memories of the scope nearest ``vector``, most similar first, with their cosine similarity.

    Raises:
        ValidationError: a bad scope or filter (engramdb's filter language), a vector of another dimension.
    """
    query = Query(memory.tenant_id, make_scope(user_id, agent_id, None, required=False), parse_filter(filters))
    unit = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    if unit.shape[1] != memory.embedder.dimension or not np.isfinite(unit).all():
        raise ValidationError(f"the vector must be {memory.embedder.dimension} finite numbers, as the embedder makes")
    hits = memory.store.dense_search(query, normalize_rows(unit)[0], max(k, 1))
    items = {item.id: item for item in memory.store.get_many(memory.tenant_id, [h.id for h in hits])}
    return [(items[h.id], float(h.score)) for h in hits if h.id in items]


def query_vector(memory: Memory, text: str) -> np.ndarray:
    """The query's vector, as ``Memory.search`` embeds it."""
    vector: np.ndarray = memory.embedder.embed([text], kind="query")[0]
    return vector


__all__ = ["nearest", "query_vector"]
