"""The Embedder protocol: one method, a batch of texts in, unit vectors out."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from ..models import content_hash

EmbedKind = Literal["query", "document"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``name`` identifies the model (``"provider:model"``); a store records it with
    ``dimension`` and refuses vectors from any other embedder. ``kind`` lets asymmetric
    models embed queries and documents differently; symmetric ones ignore it.
    """

    name: str
    dimension: int

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        """Return an array of shape (len(texts), dimension), each row of unit length."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows so a dot product is a cosine similarity; zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


class CachedEmbedder:
    """Wraps an embedder with an LRU cache keyed by content hash, and batches requests.

    Chat traffic repeats itself (greetings, the same question asked twice, a query reused
    across turns); the cache makes those free. Only cache misses reach the model.
    """

    def __init__(self, inner: Embedder, *, capacity: int = 20_000, batch_size: int = 256) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._capacity = capacity
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        with self._lock:
            return self._embed(texts, kind)

    def _embed(self, texts: Sequence[str], kind: EmbedKind) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        keys: list[tuple[str, str]] = [(kind, content_hash(t)) for t in texts]
        missing: dict[tuple[str, str], list[int]] = {}
        for i, key in enumerate(keys):
            hit = self._cache.get(key)
            if hit is None:
                missing.setdefault(key, []).append(i)
            else:
                self._cache.move_to_end(key)
                out[i] = hit
        todo = list(missing)
        for start in range(0, len(todo), self._batch_size):
            chunk = todo[start : start + self._batch_size]
            vectors = self.inner.embed([texts[missing[k][0]] for k in chunk], kind=kind)
            for key, vector in zip(chunk, vectors, strict=True):
                for i in missing[key]:
                    out[i] = vector
                self._remember(key, vector)
        return out

    def _remember(self, key: tuple[str, str], vector: np.ndarray) -> None:
        self._cache[key] = vector
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
