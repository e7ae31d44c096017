"""Each thing said once in a result: a message and the memory derived from it share one slot.

A derived memory ("Alice lives in Berlin", a distilled procedure) and the message it came
from ("I moved to Berlin last June") say the same thing; both in the top k spend a slot that
could show something else. ``said_once`` keeps the derived memory — what the store holds to be
true now, which cites the message in ``sources`` (``expand`` gives it back) — and drops the
message; the derived memory takes the better score of the two, so the pair ranks where its
best member did.
"""

from __future__ import annotations

from ..models import SearchHit


def said_once(hits: list[SearchHit], limit: int) -> list[SearchHit]:
    """The first ``limit`` hits, best first, no message beside a memory derived from it."""
    score = {h.id: h.score for h in hits}
    said: set[str] = set()  # messages a derived memory among the hits stands for
    best: dict[str, float] = {}
    for hit in hits:
        sources = [s for s in hit.sources if s in score]
        if sources:
            said.update(sources)
            best[hit.id] = max(hit.score, *(score[s] for s in sources))
    kept = [h if best.get(h.id, h.score) == h.score else h.model_copy(update={"score": best[h.id]})
            for h in hits if h.id not in said]  # fmt: skip
    kept.sort(key=lambda h: (-h.score, h.id))
    return kept[:limit]
