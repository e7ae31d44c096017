"""Each thing said once in a result: a message and the memory derived from it share one slot.

A derived memory ("Alice lives in Berlin", a distilled procedure) and the message it came
from ("I moved to Berlin last June") say the same thing; both in the top k spend a slot that
could show something else. ``said_once`` keeps the derived memory — what the store holds to be
true now, which cites the message in ``sources`` (``expand`` gives it back) — and drops the
message; the derived memory takes the better score and the better relevance of the two, so the
pair ranks where its best member did.
"""

from __future__ import annotations

from ..models import SearchHit


def said_once(hits: list[SearchHit], limit: int) -> list[SearchHit]:
    """The first ``limit`` hits, best first, no message beside a memory derived from it."""
    by_id = {h.id: h for h in hits}
    said: set[str] = set()  # messages a derived memory among the hits stands for
    best: dict[str, dict[str, float]] = {}
    for hit in hits:
        pair = [hit, *(by_id[s] for s in hit.sources if s in by_id)]
        if len(pair) > 1:
            said.update(h.id for h in pair[1:])
            best[hit.id] = {"score": max(h.score for h in pair), "relevance": max(h.relevance or 0.0 for h in pair)}
    kept = [h.model_copy(update=best[h.id]) if h.id in best else h for h in hits if h.id not in said]
    kept.sort(key=lambda h: (-h.score, h.id))
    return kept[:limit]
