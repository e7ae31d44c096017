"""LangChain's ``VectorStore`` over a ``Memory``: documents are memories, found by vector similarity.

- A document is one memory (kind ``fact``) in the agent scope ``collection`` (and a user's,
  with ``user_id``) and in a session scope of its own, a hash of its id: two documents with
  the same text stay two, and a document is looked up by its id in one scoped read. Its id
  (yours, or a ULID made here) is the metadata key ``lc_id``; the rest of the metadata is
  yours, so engramdb's own search, filters and context see it too.
- Adding a document whose id is already there replaces it (text re-embedded, metadata
  replaced). New documents are checked and embedded together and written in one transaction.
- ``similarity_search_with_score`` gives cosine similarities in [-1, 1], higher being more
  similar; ``similarity_search_with_relevance_scores`` maps them to [0, 1] as (1 + s) / 2.
  ``max_marginal_relevance_search`` (``search_type="mmr"``) re-embeds the candidates.
- ``filter`` is on the metadata: ``{"topic": "food"}``, ``{"year": {"$gte": 2020}}``, with
  ``$eq $ne $gt $gte $lt $lte $in $nin $exists $contains`` and ``$and``/``$or``/``$not``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from ..errors import ValidationError
from ..filters import MAX_IN_VALUES
from ..ingest import MAX_PAGE, index_text, make_scope
from ..memory import Memory
from ..models import MemoryItem, new_id
from ..planner import plan_add, plan_change
from ..stores.base import NewRecord
from .embeddings import EngramEmbeddings, FrameworkEmbedder, open_memory
from .nearest import nearest, query_vector

_ID = "lc_id"
_OPS = {"$eq": "eq", "$ne": "ne", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte", "$in": "in",
        "$nin": "nin", "$exists": "exists", "$contains": "contains"}  # fmt: skip
_DOCUMENTS = {f"metadata.{_ID}": {"exists": True}}  # the collection's documents, not other memories in its scope


class EngramVectorStore(VectorStore):
    """Documents kept as engramdb memories, searched by vector similarity.

    Args:
        memory: a ``Memory``, or a store URL for the vector store to open (and ``close``) itself.
        embedding: LangChain embeddings; None uses the Memory's embedder (the bundled model).
        collection: the agent scope of the documents.
        user_id: a user whose documents these are (``VectorStoreRetrieverMemory`` per user).

    Raises:
        ConfigurationError: ``embedding`` is not the embedder of the ``memory`` given.

    Example::

        store = EngramVectorStore(Memory(), user_id="alice")
        store.add_texts(["Alice is vegetarian"], metadatas=[{"topic": "food"}], ids=["diet"])
        store.similarity_search_with_score("what can alice eat?", k=1)   # [(Document, cosine)]
        retriever = store.as_retriever(search_kwargs={"k": 3})
    """

    def __init__(
        self,
        memory: Memory | str | None = None,
        *,
        embedding: Embeddings | None = None,
        collection: str = "langchain",
        user_id: str | None = None,
    ) -> None:
        make_scope(user_id, collection, None, required=True)  # a bad scope fails here, not on first use
        embedder = FrameworkEmbedder(embedding) if embedding is not None else None
        self.memory, self._owned = open_memory(memory, embedder)
        self._embedding, self.collection, self.user_id = embedding, collection, user_id

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding if self._embedding is not None else EngramEmbeddings(self.memory.embedder)

    def close(self) -> None:
        """Close the Memory if this store opened it."""
        if self._owned:
            self.memory.close()

    # --- writes ---------------------------------------------------------------------------

    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, **kwargs: Any,
    ) -> list[str]:  # fmt: skip
        """Add or replace documents; their ids, made here for those given none.

        Raises:
            ValidationError: counts that differ, an empty text, metadata that is not JSON or uses ``lc_id``.
        """
        _no_options(kwargs, "add_texts")
        texts = list(texts)
        metadatas = metadatas if metadatas is not None else [{} for _ in texts]
        given = ids if ids is not None else [None] * len(texts)
        if len(metadatas) != len(texts) or len(given) != len(texts):
            raise ValidationError(f"{len(texts)} texts, {len(metadatas)} metadatas and {len(given)} ids: give one each")
        doc_ids = [_checked_id(i) if i is not None else new_id() for i in given]
        latest = {i: (text, _checked_metadata(meta)) for i, text, meta in zip(doc_ids, texts, metadatas, strict=True)}
        existing = self._rows(list(latest))
        new = []
        for doc_id, (text, meta) in latest.items():
            if doc_id in existing:
                row = existing[doc_id]
                change_text = text if text != row.memory else None
                memory_id, change = plan_change(self.memory.config, self.memory.embedder, row.id, change_text,
                                                {**meta, _ID: doc_id})  # fmt: skip
                self.memory.store.update(self.memory.tenant_id, memory_id, change)
            else:
                new.append((doc_id, text, {**meta, _ID: doc_id}))
        self._insert(new)
        return doc_ids

    def _insert(self, documents: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Check every new document, embed them in one batch, write them in one transaction."""
        items = [
            plan_add(self.memory.config, text, user_id=self.user_id, agent_id=self.collection,
                     session_id=self._scope(doc_id), metadata=meta, kind="fact", occurred_at=None, importance=0.5,
                     expires_at=None, infer=False).items[0]
            for doc_id, text, meta in documents
        ]  # fmt: skip
        if not items:
            return
        vectors = self.memory.embedder.embed([item.memory for item in items], kind="document")
        records = [NewRecord(item, index_text(item.memory), v) for item, v in zip(items, vectors, strict=True)]
        self.memory.store.add(self.memory.tenant_id, records)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete documents by id (ids not there are no error); every document of the collection with None."""
        _no_options(kwargs, "delete")
        if ids is None:
            self.memory.delete_all(user_id=self.user_id, agent_id=self.collection)
            return True
        for row in self._rows([_checked_id(i) for i in ids]).values():
            self.memory.delete(row.id)
        return True

    # --- reads ----------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        found = self._rows([_checked_id(i) for i in ids])
        return [_document(found[i]) for i in dict.fromkeys(ids) if i in found]

    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` documents nearest the query, with their cosine similarity in [-1, 1]."""
        _no_options(kwargs, "similarity_search")
        return self._nearest(query_vector(self.memory, _query(query)), k, filter)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        _no_options(kwargs, "similarity_search_by_vector")
        return [doc for doc, _ in self._nearest(np.asarray(embedding, dtype=np.float32), k, filter)]

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None, **kwargs: Any,
    ) -> list[Document]:  # fmt: skip
        return self.max_marginal_relevance_search_by_vector(
            list(query_vector(self.memory, _query(query))), k, fetch_k, lambda_mult, filter, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None, **kwargs: Any,
    ) -> list[Document]:  # fmt: skip
        """``fetch_k`` nearest, of which ``k`` chosen for relevance and diversity (``lambda_mult``: 1 is relevance)."""
        _no_options(kwargs, "max_marginal_relevance_search")
        candidates = self._nearest(np.asarray(embedding, dtype=np.float32), max(fetch_k, k), filter)
        if not candidates:
            return []
        vectors = self.memory.embedder.embed([doc.page_content for doc, _ in candidates], kind="document")
        chosen = maximal_marginal_relevance(np.asarray(embedding), list(vectors), lambda_mult=lambda_mult, k=k)
        return [candidates[i][0] for i in chosen]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return lambda similarity: (1.0 + similarity) / 2.0

    @classmethod
    def from_texts(
        cls, texts: list[str], embedding: Embeddings, metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, memory: Memory | str | None = None, collection: str = "langchain",
        user_id: str | None = None, **kwargs: Any,
    ) -> EngramVectorStore:  # fmt: skip
        """A store (on ``memory``: a Memory or a store URL; None: a new in-memory one) holding ``texts``."""
        _no_options(kwargs, "from_texts")
        store = cls(":memory:" if memory is None else memory, embedding=embedding, collection=collection,
                    user_id=user_id)  # fmt: skip
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # --- helpers --------------------------------------------------------------------------

    def _scope(self, doc_id: str) -> str:
        """A document's own session scope."""
        key = json.dumps([self.collection, self.user_id, doc_id])
        return "lc:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def _rows(self, doc_ids: list[str]) -> dict[str, MemoryItem]:
        """The documents with these ids, by id, read by their session scopes."""
        found: dict[str, MemoryItem] = {}
        for start in range(0, len(doc_ids), MAX_IN_VALUES):
            scopes = [self._scope(i) for i in doc_ids[start : start + MAX_IN_VALUES]]
            page = self.memory.get_all(user_id=self.user_id, agent_id=self.collection, limit=MAX_PAGE,
                                       filters={"AND": [{"session_id": {"in": scopes}}, _DOCUMENTS]})  # fmt: skip
            found.update((str(row.metadata[_ID]), row) for row in page.results)
        return found

    def _nearest(self, vector: np.ndarray, k: int, where: dict[str, Any] | None) -> list[tuple[Document, float]]:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_PAGE:
            raise ValidationError(f"k must be a whole number from 1 to {MAX_PAGE}")
        clauses = [_DOCUMENTS] if where is None else [_DOCUMENTS, metadata_filter(where)]
        hits = nearest(self.memory, vector, k=k, user_id=self.user_id, agent_id=self.collection,
                       filters={"AND": clauses})  # fmt: skip
        return [(_document(row), score) for row, score in hits]


def metadata_filter(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A LangChain metadata filter in engramdb's filter language.

    Raises:
        ValidationError: an unknown operator, or what engramdb's filters refuse.
    """
    if not isinstance(spec, Mapping) or not spec:
        raise ValidationError("a filter is a non-empty object of metadata key: value")
    clauses: list[dict[str, Any]] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise ValidationError(f"{key} takes a non-empty list of filters")
            clauses.append({key[1:].upper(): [metadata_filter(v) for v in value]})
        elif key == "$not":
            clauses.append({"NOT": metadata_filter(value)})
        elif not isinstance(key, str) or key.startswith("$"):
            raise ValidationError(f"unknown filter operator {key!r}: use $and, $or, $not or a metadata key")
        elif isinstance(value, Mapping) and value and all(str(op).startswith("$") for op in value):
            unknown = [op for op in value if op not in _OPS]
            if unknown:
                raise ValidationError(f"unknown filter operator {unknown[0]!r}: use one of {', '.join(_OPS)}")
            clauses.append({f"metadata.{key}": {_OPS[op]: operand for op, operand in value.items()}})
        else:
            clauses.append({f"metadata.{key}": value})
    return clauses[0] if len(clauses) == 1 else {"AND": clauses}


def _document(row: MemoryItem) -> Document:
    metadata = {k: v for k, v in row.metadata.items() if k != _ID}
    return Document(page_content=row.memory, metadata=metadata, id=str(row.metadata[_ID]))


def _checked_id(doc_id: Any) -> str:
    if not isinstance(doc_id, str) or not doc_id:
        raise ValidationError(f"a document id is a non-empty string, not {doc_id!r}")
    return doc_id


def _checked_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"a document's metadata is an object, not {type(metadata).__name__}")
    if _ID in metadata:
        raise ValidationError(f"the metadata key {_ID!r} holds the document's id: use the id instead")
    return dict(metadata)


def _query(query: Any) -> str:
    if not isinstance(query, str):
        raise ValidationError(f"a query is a string, not {type(query).__name__}")
    return query


def _no_options(options: dict[str, Any], method: str) -> None:
    """An option this store does not know is refused by name: silently ignoring it would change results."""
    if options:
        raise ValidationError(f"EngramVectorStore.{method} takes no option {', '.join(sorted(options))!s}")


__all__ = ["EngramVectorStore", "metadata_filter"]
