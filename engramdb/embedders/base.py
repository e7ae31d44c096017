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

    ``blocking`` declares that a call waits on something slow (a network service, a large
    model): code on an event loop then runs it on a worker thread. A small local model that
    answers in a millisecond declares ``False`` and is called inline, where a thread hop
    would cost more than the call.
    """

    name: str
    dimension: int
    blocking: bool

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
    across turns); the cache makes those free. Only cache misses reach the model. The lock
    guards the cache alone, never the model call: a remote embedder's requests from several
    threads then run side by side instead of one after another.
    """

    def __init__(self, inner: Embedder, *, capacity: int = 20_000, batch_size: int = 256) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.blocking = inner.blocking
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._capacity = capacity
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], *, kind: EmbedKind = "document") -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        missing = self._lookup(texts, kind, out)
        todo = list(missing)
        for start in range(0, len(todo), self._batch_size):
            chunk = todo[start : start + self._batch_size]
            vectors = self.inner.embed([texts[missing[k][0]] for k in chunk], kind=kind)
            for key, vector in zip(chunk, vectors, strict=True):
                for i in missing[key]:
                    out[i] = vector
            self._remember(chunk, vectors)
        return out

    def _lookup(self, texts: Sequence[str], kind: EmbedKind, out: np.ndarray) -> dict[tuple[str, str], list[int]]:
        """Fill ``out`` with cached rows; return the positions of each text still to embed."""
        missing: dict[tuple[str, str], list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                key = (kind, content_hash(text))
                hit = self._cache.get(key)
                if hit is None:
                    missing.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = hit
        return missing

    def _remember(self, keys: Sequence[tuple[str, str]], vectors: np.ndarray) -> None:
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                self._cache[key] = vector
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
