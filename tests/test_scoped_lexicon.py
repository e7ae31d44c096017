"""What one user's search returns is theirs alone: other tenants and users cannot move it.

BM25 weighs a word by how rare it is among the documents it is computed over. Computed over
the whole file, a tenant writing "bees" a thousand times made the word common for everyone
else too, and reordered their results. The lexical index keeps its numbers per owner scope
(``stores.lexicon``), so a search's hits — ids, order and scores — are the same whatever else
the store holds. Checked on both stores, with the lexical half alone and with the full hybrid.
"""

from __future__ import annotations

from typing import Any

from engramdb import Memory, MemoryConfig
from engramdb.embedders import Embedder

ALICE = [
    "I keep bees on the roof of our building",
    "The bees swarmed last week and I caught them in a box",
    "My sister Maya lives in Porto with her two cats",
    "We drove to Porto for the jazz festival in June",
    "I started learning the cello in January",
    "The cello teacher says my bowing is getting better",
    "I planted tomatoes and basil on the roof next to the hives",
    "Maya visited and we went hiking in the mountains",
    "My favourite food is grilled sardines with lemon",
    "I am allergic to peanuts, so I check every label",
]
NOISE = [
    "bees bees bees honey and more bees",
    "the roof leaks when it rains on the roof",
    "Porto Porto Porto football club",
    "cello practice every morning, cello lessons every evening",
    "peanuts are cheap at the market",
]
QUERIES = [
    "where do my bees live?",
    "who lives in Porto?",
    "how is the cello going?",
    "what am I allergic to?",
    "what did we plant on the roof?",
]
LEXICAL = {"dense_weight": 0}


def _hits(m: Memory, query: str, options: dict[str, Any] | None, **scope: Any) -> list[tuple[str, float, Any]]:
    """Each hit's text, score and raw BM25 score."""
    found = m.search(query, limit=8, options=options, explain=True, threshold=0, **scope).results  # the ranking
    return [(h.memory, h.score, h.explain.lexical_bm25 if h.explain else None) for h in found]


def _results(m: Memory, options: dict[str, Any] | None) -> list[list[tuple[str, float, Any]]]:
    return [_hits(m, q, options, user_id="alice") for q in QUERIES]


def test_a_users_results_do_not_depend_on_other_tenants_or_users(store_url: str, default_embedder: Embedder) -> None:
    with Memory(store_url, embedder=default_embedder, config=MemoryConfig(infer=False)) as base:
        alice = base.for_tenant("acme-lexicon")
        for text in ALICE:
            alice.add(text, user_id="alice")
        alone = {"lexical": _results(alice, LEXICAL), "hybrid": _results(alice, None)}
        assert all(alone["lexical"]), "every query finds something by its words"

        for t in range(10):  # ten other tenants, each with the same user id, writing the query's words
            other = base.for_tenant(f"other-{t}")
            other.add([NOISE[(t + i) % len(NOISE)] + f" ({t}.{i})" for i in range(20)], user_id="alice")
        for u in range(3):  # and other users of alice's own tenant
            alice.add([NOISE[i % len(NOISE)] + f" [{u}.{i}]" for i in range(30)], user_id=f"user-{u}")

        assert _results(alice, LEXICAL) == alone["lexical"]
        assert _results(alice, None) == alone["hybrid"]


def test_a_tenant_wide_search_does_not_depend_on_other_tenants(store_url: str, default_embedder: Embedder) -> None:
    with Memory(store_url, embedder=default_embedder, config=MemoryConfig(infer=False)) as base:
        acme = base.for_tenant("acme-wide")
        for i, text in enumerate(ALICE):
            acme.add(text, user_id=f"user-{i % 3}")

        def everyone() -> list[list[tuple[str, float, Any]]]:
            return [_hits(acme, q, LEXICAL) for q in QUERIES]

        alone = everyone()
        for t in range(10):
            base.for_tenant(f"wide-other-{t}").add([n + f" ({t})" for n in NOISE], user_id="user-0")
        assert everyone() == alone


def test_the_index_follows_updates_and_deletes(store_url: str, default_embedder: Embedder) -> None:
    """Changing or deleting a memory changes what its words find, and its scope's numbers."""
    with Memory(store_url, embedder=default_embedder, config=MemoryConfig(infer=False)) as base:
        m = base.for_tenant("acme-follow")
        ids = [m.add(text, user_id="alice").results[0].id for text in ALICE]

        def found(query: str) -> list[str]:
            return [h.memory for h in m.search(query, user_id="alice", options=LEXICAL).results]

        assert found("sardines") == [ALICE[8]]
        m.update(ids[8], "My favourite food is octopus rice")
        assert found("sardines") == [] and found("octopus") == ["My favourite food is octopus rice"]
        m.delete(ids[0])
        assert ALICE[0] not in found("bees") and ALICE[1] in found("bees")
        m.delete_all(user_id="alice", hard=True)
        assert found("bees") == []
        m.add(ALICE[0], user_id="alice")  # a scope emptied and filled again counts from zero
        fresh = base.for_tenant("acme-fresh")
        fresh.add(ALICE[0], user_id="alice")
        assert _hits(m, "bees", LEXICAL, user_id="alice") == _hits(fresh, "bees", LEXICAL, user_id="alice")


def test_a_store_from_before_the_scoped_index_is_indexed_when_opened(
    store_url: str, default_embedder: Embedder
) -> None:
    """Opening a file or database of the previous schema builds the index from its memories."""
    with Memory(store_url, embedder=default_embedder, config=MemoryConfig(infer=False)) as m:
        m = m.for_tenant("acme-upgrade")
        for text in ALICE:
            m.add(text, user_id="alice")
        expected = [_hits(m, q, LEXICAL, user_id="alice") for q in QUERIES]
        store: Any = m.store
        if store_url.startswith("postgresql"):  # the previous schema: version 1, a tsvector column
            with store._pool.connection() as conn:
                conn.execute("DROP TABLE lex_postings, lex_scopes")
                conn.execute("ALTER TABLE memories ADD COLUMN tsv TSVECTOR")
                conn.execute("CREATE INDEX memories_tsv ON memories USING gin (tsv)")
                conn.execute("DELETE FROM schema_migrations WHERE version = 2")
        else:  # version 5, an FTS5 table
            with store._lock:
                for sql in ("DROP TABLE lex_postings", "DROP TABLE lex_scopes",
                            "CREATE VIRTUAL TABLE memories_fts USING fts5 (text, speaker)",
                            "DELETE FROM schema_migrations WHERE version = 6"):  # fmt: skip
                    store._conn.execute(sql)
    with Memory(store_url, embedder=default_embedder, config=MemoryConfig(infer=False)) as reopened:
        again = reopened.for_tenant("acme-upgrade")
        assert [_hits(again, q, LEXICAL, user_id="alice") for q in QUERIES] == expected


def test_the_word_memo_starts_afresh_without_losing_a_term(monkeypatch: Any) -> None:
    """Indexing remembers each word's term id; when the memo is full it is cleared, and the
    text being indexed still gets every one of its terms (a text whose words were partly in
    the memo, cleared on the way, had raised KeyError)."""
    from engramdb.stores import lexicon

    def plain(text: str) -> list[int]:
        content = [w for w in lexicon.words(text) if w not in lexicon.STOPWORDS]
        return [lexicon.term_hash(s) for s in lexicon._stemmer("english").stemWords(content)]  # type: ignore[attr-defined]

    monkeypatch.setattr(lexicon, "TERMS_KEPT", 6)
    monkeypatch.setattr(lexicon, "_TERMS", {})
    texts = ["walking dogs in parks", "dogs walking far", "new words arrive walking", "parks and dogs", "x" * 3]
    for text in [*texts, *reversed(texts)]:
        assert lexicon._term_ids(text, "english") == plain(text), text
        assert len(lexicon._TERMS["english"]) <= 6


def test_hits_the_filter_drops_beyond_the_best_are_still_found(
    store_url: str, default_embedder: Embedder, monkeypatch: Any
) -> None:
    """Only the best hits (``lexicon.CUT_FACTOR`` times the limit) are joined to their rows at
    first; when too few of them pass the filter (expired, or another metadata), the rest fill
    the result, which is exactly that of joining every hit."""
    from datetime import timedelta

    from engramdb.filters import parse_filter
    from engramdb.models import Scope, utcnow
    from engramdb.stores import lexicon
    from engramdb.stores.base import Query

    later = utcnow() + timedelta(days=1)
    with Memory(store_url, embedder=default_embedder, config=MemoryConfig(infer=False)) as m:
        short = [m.add(f"garden {i}", user_id="u", metadata={"n": i}, expires_at=later).results[0].id
                 for i in range(12)]  # fmt: skip
        kept = [m.add(f"a garden note number {i} of many more words", user_id="u", metadata={"n": 20 + i})
                .results[0].id for i in range(6)]  # fmt: skip

        def found(where: dict[str, Any] | None = None, now: Any = later + timedelta(days=1)) -> list[str]:
            query = Query(m.tenant_id, Scope(user_id="u"), where=parse_filter(where), now=now)
            return [h.id for h in m.store.lexical_search(query, ["garden"], 2)]

        picked, above = found(), found({"metadata.n": {"gte": 23}})
        assert set(picked) <= set(kept) and len(picked) == 2  # the 12 best have expired
        assert set(above) <= set(kept[3:]) and len(above) == 2
        monkeypatch.setattr(lexicon, "CUT_FACTOR", 1_000)  # every hit joined at once
        assert (found(), found({"metadata.n": {"gte": 23}})) == (picked, above)
        monkeypatch.setattr(lexicon, "CUT_FACTOR", 1)  # fewer kept than the limit: the rest fills it
        assert (found(), found({"metadata.n": {"gte": 23}})) == (picked, above)
        assert set(found(now=utcnow())) <= set(short)  # before they expire, the short texts rank first
