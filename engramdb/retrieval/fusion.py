"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009), weighted and normalised.

RRF ignores raw scores, which are not comparable between a cosine similarity and BM25, and
uses only ranks: ``fused(d) = Σ_r w_r / (k + rank_r(d))``. We divide by the best possible
value ``Σ_r w_r / (k + 1)`` so the result lies in [0, 1] — 1 means "ranked first by every
retriever" — and, depending only on ranks, means the same on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..stores.base import StoreHit


@dataclass
class Fused:
    id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)
    raw: dict[str, float] = field(default_factory=dict)


def rrf(lists: Mapping[str, Sequence[StoreHit]], weights: Mapping[str, float], k: int = 60) -> list[Fused]:
    """Fuse ranked lists; returns candidates best first, scores in [0, 1]."""
    best = sum(weights.get(name, 0.0) for name in lists) / (k + 1)
    fused: dict[str, Fused] = {}
    for name, hits in lists.items():
        weight = weights.get(name, 0.0)
        for rank, hit in enumerate(hits, start=1):
            entry = fused.setdefault(hit.id, Fused(hit.id, 0.0))
            entry.score += weight / (k + rank)
            entry.ranks[name] = rank
            entry.raw[name] = hit.score
    out = sorted(fused.values(), key=lambda f: (-f.score, f.id))
    if best > 0:
        for entry in out:
            entry.score = min(1.0, entry.score / best)
    return out
