"""What holds now comes first, and each thing is said once in a result (issue of recall)."""

from __future__ import annotations

from engramdb import Memory
from engramdb.embedders import Embedder


def test_a_message_and_the_fact_derived_from_it_take_one_slot(store_url: str, default_embedder: Embedder) -> None:
    with Memory(store_url, embedder=default_embedder) as base:
        m = base.for_tenant("acme-once")
        m.add("I live in Paris", user_id="alice")
        moved = m.add("I moved to Berlin", user_id="alice").results
        fact = next(r for r in moved if r.kind == "fact")
        hits = m.search("where do I live?", user_id="alice").results
        ids = [h.id for h in hits]
        assert fact.id in ids and moved[0].id not in ids  # the Berlin fact stands for its message
        assert moved[0].id in next(h for h in hits if h.id == fact.id).sources  # and cites it
        both = m.search("where do I live?", user_id="alice", options={"dedupe": False}).results
        assert {fact.id, moved[0].id} <= {h.id for h in both}
        assert not any(source in ids for h in hits for source in h.sources)  # no message beside its fact


def test_what_holds_now_ranks_above_the_message_it_replaced(store_url: str, default_embedder: Embedder) -> None:
    with Memory(store_url, embedder=default_embedder) as base:
        m = base.for_tenant("acme-truth")
        paris, paris_fact = m.add("I live in Paris", user_id="alice").results
        berlin = next(r for r in m.add("I moved to Berlin", user_id="alice").results if r.kind == "fact")
        hits = m.search("where do I live?", user_id="alice", explain=True).results
        ids = [h.id for h in hits]
        assert ids.index(berlin.id) < ids.index(paris.id)  # the Paris message told of what no longer holds
        old = next(h for h in hits if h.id == paris.id)
        assert old.explain is not None and old.explain.outdated == 0.5
        assert next(h for h in hits if h.id == berlin.id).explain.outdated == 1.0  # type: ignore[union-attr]
        history = m.search("where do I live?", user_id="alice", include_invalid=True).results
        assert history[0].id == paris_fact.id  # asking about the past too: nothing is lowered (the old
        assert history[0].state == "superseded"  # fact stands for its message, and ranks where it did)
        off = m.search("where do I live?", user_id="alice", options={"outdated_weight": 0}).results
        assert off[0].id == paris.id
