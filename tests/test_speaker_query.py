"""The dense query without the scope's speakers' names; BM25 keeps the whole query (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engramdb import AsyncMemory, Memory, MemoryConfig, SearchOptions
from engramdb.embedders import Embedder
from engramdb.models import Scope
from engramdb.retrieval.speakers import speaker_words, without_speakers

RAW = MemoryConfig(infer=False, search=SearchOptions(dense_without_speakers=True))
QUERY = "what does Alice like to cook?"
DENSE = "what does like to cook?"


@pytest.mark.parametrize(
    ("query", "names", "dense"),
    [
        (QUERY, ["Alice"], DENSE),
        ("What is Caroline's job?", ["Caroline"], "What is job?"),  # a possessive goes with the name
        ("What is Caroline’s job?", ["Caroline"], "What is job?"),
        ("where did JAMES' dog go", ["James"], "where did dog go"),
        ("did alice and bob meet?", ["Alice", "Bob"], "did and meet?"),  # any case
        ("Does Alicia know Alice?", ["Alice"], "Does Alicia know?"),  # whole words only
        ("what did Smith say about jazz", ["Jon Smith"], "what did say about jazz"),  # a word of a name
        ("Alice?", ["Alice"], "Alice?"),  # nothing would remain: the query as it is
        ("who is Alice", ["Alice"], "who is Alice"),  # only function words would remain
        ("what will Alice do next week", ["Will", "Alice"], "what will do next week"),  # "will" is no name here
        (QUERY, [], QUERY),
        (QUERY, ["Bob"], QUERY),
    ],
)
def test_without_speakers(query: str, names: list[str], dense: str) -> None:
    assert without_speakers(query, names) == dense


def test_speaker_words_are_content_words_longest_first() -> None:
    assert speaker_words(["Anna", "Annabel Lee", "Will"]) == ("annabel", "anna", "lee")


def cosine(embedder: Embedder, query: str, text: str) -> float:
    q = embedder.embed([query], kind="query")[0]
    d = embedder.embed([text], kind="document")[0]
    return float(np.dot(q, d))


def said(m: Memory, user: str) -> None:
    m.add([{"role": "user", "name": "Alice", "content": "I make a big pot of chili every Sunday"},
           {"role": "user", "name": "Bob", "content": "Alice, your chili is the best"},
           {"role": "user", "name": "Bob", "content": "I like to cook ramen"}],
          user_id=user, session_id=f"{user}:1")  # fmt: skip


def test_the_dense_query_leaves_out_the_scope_speakers(store_url: str, default_embedder: Embedder) -> None:
    with Memory(store_url, embedder=default_embedder, config=RAW) as m:
        said(m, "u1")
        m.add([{"role": "user", "name": "Carol", "content": "I like to cook too"}], user_id="u2")
        found = m.search(QUERY, user_id="u1", explain=True, threshold=0)
        assert found.dense_query == DENSE
        for hit in found.results:  # each similarity is that of the query without the name
            assert hit.explain is not None and hit.explain.dense_similarity is not None
            assert hit.explain.dense_similarity == pytest.approx(cosine(default_embedder, DENSE, hit.memory), abs=1e-5)
            assert abs(hit.explain.dense_similarity - cosine(default_embedder, QUERY, hit.memory)) > 1e-4
        # another scope's speaker is not this scope's: the query naming her is embedded whole
        assert m.search("what does Carol like to cook?", user_id="u1", explain=True).dense_query is None

        off = m.search(QUERY, user_id="u1", explain=True, threshold=0, options={"dense_without_speakers": False})
        assert off.dense_query is None
        for hit in off.results:
            assert hit.explain.dense_similarity == pytest.approx(cosine(default_embedder, QUERY, hit.memory), abs=1e-5)  # type: ignore[union-attr]


def test_bm25_still_reads_the_name(store_url: str, default_embedder: Embedder) -> None:
    """The lexical half gets the whole query: the name scores on the speaker column, as before."""
    with Memory(store_url, embedder=default_embedder, config=RAW) as m:
        said(m, "u1")
        on = m.search(QUERY, user_id="u1", explain=True, threshold=0).results
        off = m.search(QUERY, user_id="u1", explain=True, threshold=0, options={"dense_without_speakers": False})
        lexical = {h.memory: (h.explain.lexical_rank, h.explain.lexical_bm25) for h in on}  # type: ignore[union-attr]
        assert lexical == {h.memory: (h.explain.lexical_rank, h.explain.lexical_bm25) for h in off.results}  # type: ignore[union-attr]
        # "Alice, your chili is the best" shares only the name with the query: BM25 still finds it
        assert lexical["Alice, your chili is the best"][0] is not None
        bob = m.search("what does Bob like to cook?", user_id="u1", explain=True, threshold=0).results
        ramen = next(h for h in bob if h.memory == "I like to cook ramen").explain
        alone = m.search("what does like to cook?", user_id="u1", explain=True, threshold=0).results
        unnamed = next(h for h in alone if h.memory == "I like to cook ramen").explain
        assert ramen is not None and unnamed is not None
        assert ramen.lexical_bm25 > unnamed.lexical_bm25  # type: ignore[operator]  # his name adds to his turn


def test_the_store_keeps_each_scope_speakers_current(store_url: str, default_embedder: Embedder) -> None:
    with Memory(store_url, embedder=default_embedder, config=RAW) as m:
        store, tenant = m.store, m.tenant_id
        said(m, "u1")
        m.add("I am nobody's speaker", user_id="u1")  # no name: not a speaker
        m.add([{"role": "user", "name": "Carol", "content": "hello"}], user_id="u2", session_id="u2:1")
        assert store.speakers(tenant, Scope(user_id="u1")) == {"Alice", "Bob"}
        assert store.speakers(tenant, Scope(user_id="u2")) == {"Carol"}
        assert store.speakers(tenant, Scope(session_id="u2:1")) == {"Carol"}
        assert store.speakers(tenant, Scope()) == {"Alice", "Bob", "Carol"}
        assert store.speakers("elsewhere", Scope()) == frozenset()
        dave = m.add([{"role": "user", "name": "Dave", "content": "hi all"}], user_id="u1").results[0].id
        assert store.speakers(tenant, Scope(user_id="u1")) == {"Alice", "Bob", "Dave"}  # a write refreshes it
        assert store.speakers(tenant, Scope()) == {"Alice", "Bob", "Carol", "Dave"}
        m.delete(dave)
        assert store.speakers(tenant, Scope(user_id="u1")) == {"Alice", "Bob"}  # a removal too
        m.delete_all(user_id="u2")
        assert store.speakers(tenant, Scope()) == {"Alice", "Bob"}


def test_another_process_speakers_are_seen_on_sqlite(tmp_path: Path, default_embedder: Embedder) -> None:
    """Another writer of the file (another process, here another store on it): seen at once."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with Memory(url, embedder=default_embedder, config=RAW) as reader, \
            Memory(url, embedder=default_embedder, config=RAW) as writer:  # fmt: skip
        said(writer, "u1")
        assert reader.store.speakers(reader.tenant_id, Scope(user_id="u1")) == {"Alice", "Bob"}
        writer.add([{"role": "user", "name": "Dave", "content": "hi"}], user_id="u1")
        assert reader.store.speakers(reader.tenant_id, Scope(user_id="u1")) == {"Alice", "Bob", "Dave"}
        writer.delete_all(user_id="u1")
        assert reader.store.speakers(reader.tenant_id, Scope(user_id="u1")) == frozenset()


async def test_the_async_path_leaves_the_names_out_too(postgres_url: str, default_embedder: Embedder) -> None:
    async with AsyncMemory(postgres_url, embedder=default_embedder, config=RAW) as m:
        await m.add([{"role": "user", "name": "Alice", "content": "I make a big pot of chili every Sunday"}],
                    user_id="u1")  # fmt: skip
        found = await m.search(QUERY, user_id="u1", explain=True, threshold=0)
        assert found.dense_query == DENSE
        hit = found.results[0].explain
        assert hit is not None
        expected = cosine(default_embedder, DENSE, "I make a big pot of chili every Sunday")
        assert hit.dense_similarity == pytest.approx(expected, abs=1e-5)


def test_another_process_speakers_are_seen_after_the_ttl_on_postgresql(
    postgres_url: str, default_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL has no change sequence: another process's new speaker is read after ``TTL_SECONDS``."""
    import engramdb.stores.postgres.store as pg

    with Memory(postgres_url, embedder=default_embedder, config=RAW) as writer:
        said(writer, "u1")
        with Memory(postgres_url, embedder=default_embedder, config=RAW) as kept:
            assert kept.store.speakers(kept.tenant_id, Scope(user_id="u1")) == {"Alice", "Bob"}
            writer.add([{"role": "user", "name": "Dave", "content": "hi"}], user_id="u1")
            assert kept.store.speakers(kept.tenant_id, Scope(user_id="u1")) == {"Alice", "Bob"}  # within the TTL
        monkeypatch.setattr(pg, "TTL_SECONDS", 0.0)
        with Memory(postgres_url, embedder=default_embedder, config=RAW) as reader:
            assert reader.store.speakers(reader.tenant_id, Scope(user_id="u1")) == {"Alice", "Bob", "Dave"}
            writer.add([{"role": "user", "name": "Erin", "content": "hello"}], user_id="u1")
            assert reader.store.speakers(reader.tenant_id, Scope(user_id="u1")) == {"Alice", "Bob", "Dave", "Erin"}


def test_the_names_stay_in_the_dense_query_by_default(tmp_path: Path, default_embedder: Embedder) -> None:
    with Memory(f"sqlite:///{tmp_path / 'd.db'}", embedder=default_embedder, config=MemoryConfig(infer=False)) as m:
        said(m, "u1")
        assert m.search(QUERY, user_id="u1", explain=True, threshold=0).dense_query is None
