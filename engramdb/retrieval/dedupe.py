"""Each thing said once in a result: a message and the memory derived from it share one slot.

A derived memory ("Alice lives in Berlin") and the message it came from ("I moved to Berlin
last June") say the same thing; both in the top k spend a slot that could show something
else. ``said_once`` keeps whichever ranks higher: a message is dropped when a memory derived
from it ranks above it (that memory cites it in ``sources``, and ``expand`` gives it back),
and a derived memory is dropped when every message it came from ranks above it.
"""

from __future__ import annotations

from ..models import SearchHit


def said_once(hits: list[SearchHit], limit: int) -> list[SearchHit]:
    """The first ``limit`` hits, best first, none repeating a higher one (module docstring)."""
    kept: list[SearchHit] = []
    above: set[str] = set()  # the ids kept so far
    cited: set[str] = set()  # the sources of the derived memories kept so far
    for hit in hits:
        if hit.id in cited or (hit.sources and above.issuperset(hit.sources)):
            continue
        kept.append(hit)
        above.add(hit.id)
        cited.update(hit.sources)
        if len(kept) == limit:
            break
    return kept
