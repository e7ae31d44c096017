"""LangGraph: EngramStore's query search, scores, indexed fields, TTL and ``index`` config.

Scores are checked against cosine similarities computed here, with a LangChain ``Embeddings``
whose vectors are word counts over a small vocabulary (handed over in LangGraph's own
``index={"embed": ..., "dims": ...}`` config), so every expected score is known exactly. Each
test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from langchain_core.embeddings import Embeddings

from engramdb import Memory
from engramdb.errors import ConfigurationError
from engramdb.integrations.langgraph import EngramStore
from engramdb.testing import ScriptedOpenAIServer

VOCAB = ["apple", "car", "red", "green", "blue", "dog", "dogs", "bird", "new", "text", "about",
         "xxx", "uuu", "vvv", "www", "zzz", "aaa", "bbb", "ccc", "ggg"]  # fmt: skip
DIMS = len(VOCAB) + 1


def counts(text: str) -> list[float]:
    """Each vocabulary word's count, and a constant: no text has a zero vector."""
    words = re.findall(r"\w+", text.lower())
    return [float(words.count(w)) for w in VOCAB] + [0.1]


def cosine(a: str, b: str) -> float:
    x, y = counts(a), counts(b)
    return sum(p * q for p, q in zip(x, y, strict=True)) / math.hypot(*x) / math.hypot(*y)


class Keywords(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [counts(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return counts(text)


@pytest.fixture
def store(store_url: str) -> Iterator[EngramStore]:
    with EngramStore(store_url, index={"embed": Keywords(), "dims": DIMS, "fields": ["text"]}) as opened:
        yield opened


def test_scores_are_cosine_similarities_best_first(store: EngramStore) -> None:
    texts = {"doc1": "red apple", "doc2": "red car", "doc3": "green apple", "doc4": "blue car", "doc5": "dog"}
    for key, text in texts.items():
        store.put(("test",), key, {"text": text, "n": len(text)})
    for query, best in (("apple", "doc1"), ("red car", "doc2"), ("bird", None), ("apple apple green", "doc3")):
        results = store.search(("test",), query=query)
        assert len(results) == 5 and (best is None or results[0].key == best)
        assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)  # type: ignore[misc]
        for r in results:
            assert r.score == pytest.approx(cosine(query, texts[r.key]), abs=1e-5) and -1 <= r.score <= 1
    assert [r.key for r in store.search(("test",), query="apple", filter={"text": "red apple"})] == ["doc1"]


def test_query_and_filter_together(store: EngramStore) -> None:
    docs = [("doc1", "red apple", "red", 4.5), ("doc2", "red car", "red", 3.0), ("doc3", "green apple", "green", 4.0),
            ("doc4", "blue car", "blue", 3.5)]  # fmt: skip
    for key, text, color, score in docs:
        store.put(("test",), key, {"text": text, "color": color, "score": score})
    assert [r.key for r in store.search(("test",), query="apple", filter={"color": "red"})] == ["doc1", "doc2"]
    assert [r.key for r in store.search(("test",), query="car", filter={"color": "red"})] == ["doc2", "doc1"]
    found = store.search(("test",), query="blue", filter={"score": {"$gt": 3.2}})
    assert found[0].key == "doc4" and {r.key for r in found} == {"doc1", "doc3", "doc4"}
    found = store.search(("test",), query="apple", filter={"score": {"$gte": 4.0}, "color": "green"})
    assert [r.key for r in found] == ["doc3"]


def test_query_pages_follow_the_ranking(store: EngramStore) -> None:
    for i, text in enumerate(["apple", "apple red", "apple red car", "apple red car dog", "apple red car dog bird"]):
        store.put(("test",), f"doc{i}", {"text": text})
    everything = store.search(("test",), query="apple", limit=10)
    first, second = store.search(("test",), query="apple", limit=2), store.search(("test",), query="apple", offset=2)
    assert [r.key for r in everything] == [f"doc{i}" for i in range(5)]
    assert [r.key for r in first + second] == [r.key for r in everything]
    assert [r.score for r in everything] == sorted((r.score for r in everything), reverse=True)  # type: ignore[misc]


def test_index_false_items_are_found_by_filters_not_queries(store: EngramStore) -> None:
    store.put(("test",), "doc1", {"text": "new text about dogs"})
    store.put(("test",), "doc4", {"text": "new text about dogs", "private": True}, index=False)
    store.put(("test",), "doc5", {"body": "new text about dogs"})  # nothing at the indexed field "text"
    assert [r.key for r in store.search(("test",), query="new text about dogs", limit=3)] == ["doc1"]
    assert {r.key for r in store.search(("test",))} == {"doc1", "doc4", "doc5"}
    assert [r.key for r in store.search(("test",), filter={"private": True})] == ["doc4"]
    assert store.get(("test",), "doc4") is not None
    store.put(("test",), "doc4", {"text": "new text about dogs"})  # indexed again
    assert {r.key for r in store.search(("test",), query="dogs")} == {"doc1", "doc4"}


def test_an_item_scores_by_its_best_field(store_url: str) -> None:
    with EngramStore(store_url, index={"embed": Keywords(), "dims": DIMS, "fields": ["key0", "key1", "key3"]}) as s:
        s.put(("test",), "doc1", {"key1": "xxx", "key2": "yyy", "key3": "zzz"})  # no key0: no error
        s.put(("test",), "doc2", {"key0": "uuu", "key1": "vvv", "key2": "www", "key3": "xxx"})
        both = s.search(("test",), query="xxx")
        assert {r.key for r in both} == {"doc1", "doc2"} and all(r.score == pytest.approx(1.0) for r in both)
        assert [r.key for r in s.search(("test",), query="uuu")] == ["doc2", "doc1"]
        assert [r.key for r in s.search(("test",), query="zzz")] == ["doc1", "doc2"]
        assert all(r.score < 0.1 for r in s.search(("test",), query="www"))  # key2 is not indexed
        s.put(("test",), "doc3", {"key0": "aaa", "key1": "bbb", "key2": "ccc"}, index=["key0", "key1"])  # per put
        s.put(("test",), "doc4", {"msgs": [{"content": "ggg"}, {"content": "zzz zzz"}]}, index=["msgs[*].content"])
        assert s.search(("test",), query="aaa")[0].key == "doc3" and s.search(("test",), query="ccc")[0].score < 0.1
        assert s.search(("test",), query="ggg")[0].key == "doc4"


def test_a_put_replaces_the_items_texts(store_url: str) -> None:
    with EngramStore(store_url, index={"embed": Keywords(), "dims": DIMS, "fields": ["a", "b", "c"]}) as s:
        s.put(("test",), "doc", {"a": "red apple", "b": "blue car", "c": "dog"})
        s.put(("test",), "other", {"a": "bird"})
        before = s.search(("test",), query="blue car")[0]
        assert before.key == "doc" and before.score == pytest.approx(1.0)
        s.put(("test",), "doc", {"a": "dog", "b": "red apple"})  # texts reordered, one dropped
        assert s.get(("test",), "doc").value == {"a": "dog", "b": "red apple"}  # type: ignore[union-attr]
        after = {r.key: r.score for r in s.search(("test",), query="blue car")}
        assert after["doc"] == pytest.approx(max(cosine("blue car", t) for t in ("dog", "red apple")), abs=1e-5)
        rows = [m.memory for m in s.memory.get_all(agent_id="langgraph").results]
        assert sorted(rows) == ["bird", "dog", "red apple"]  # one memory per text, no stale ones


def test_empty_long_and_odd_queries(store: EngramStore) -> None:
    store.put(("test",), "doc1", {"text": "red apple"})
    for query in ("", "   ", None):
        results = store.search(("test",), query=query)
        assert [r.key for r in results] == ["doc1"] and results[0].score is None
    for query in ("apple " * 200, "apple!@#$%^&*()", "这是中文"):
        assert [r.key for r in store.search(("test",), query=query)] == ["doc1"]


# --- TTL ----------------------------------------------------------------------------------


def test_ttl_sets_and_refreshes_expiry(memory: Memory) -> None:
    store = EngramStore(memory, index={"fields": ["a", "b"]})
    store.put(("cache",), "short", {"a": "first text", "b": "second text"}, ttl=10)
    store.put(("cache",), "long", {"a": "kept"})
    rows = memory.get_all(agent_id="langgraph", filters={"metadata.lg_key": "short"}).results
    assert len(rows) == 2 and all(r.expires_at is not None for r in rows)
    first = rows[0].expires_at
    assert first is not None and timedelta(minutes=9) < first - rows[0].created_at <= timedelta(minutes=10, seconds=5)
    assert memory.get_all(agent_id="langgraph", filters={"metadata.lg_key": "long"}).results[0].expires_at is None
    item = store.get(("cache",), "short", refresh_ttl=False)
    assert item is not None
    same = memory.get_all(agent_id="langgraph", filters={"metadata.lg_key": "short"}).results
    assert {r.expires_at for r in same} == {r.expires_at for r in rows}
    store.get(("cache",), "short")  # a read refreshes by default, on every memory of the item
    later = memory.get_all(agent_id="langgraph", filters={"metadata.lg_key": "short"}).results
    assert all(r.expires_at is not None and r.expires_at > first for r in later)
    refreshed = store.get(("cache",), "short")
    assert refreshed is not None and refreshed.updated_at == item.updated_at  # a read is not an update


def test_expired_items_are_gone_and_swept(memory: Memory) -> None:
    store = EngramStore(memory, ttl={"default_ttl": 0.001, "refresh_on_read": False})  # 60 ms
    store.put(("cache",), "soon", {"text": "short lived"})
    store.put(("cache",), "kept", {"text": "kept"}, ttl=None)
    time.sleep(0.2)  # past the expiry: nothing is asserted about how long anything takes
    assert store.get(("cache",), "soon") is None
    assert [r.key for r in store.search(("cache",), query="short lived")] == ["kept"]
    assert [r.key for r in store.search(("cache",))] == ["kept"]
    assert store.sweep_ttl() == 1
    assert memory.get_all(agent_id="langgraph", include_inactive=True).total == 1


# --- the index config ---------------------------------------------------------------------


def test_embed_may_be_a_function_sync_or_async(store_url: str) -> None:
    def embed(texts: Sequence[str]) -> list[list[float]]:
        return [counts(t) for t in texts]

    async def aembed(texts: Sequence[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return [counts(t) for t in texts]

    for fn, url in ((embed, store_url), (aembed, ":memory:")):
        with EngramStore(url, index={"embed": fn, "dims": DIMS, "fields": ["text"]}) as s:
            s.put(("t",), "a", {"text": "red apple"})
            s.put(("t",), "b", {"text": "blue car"})
            hit = s.search(("t",), query="apple")[0]
            assert hit.key == "a" and hit.score == pytest.approx(cosine("apple", "red apple"), abs=1e-5)
            assert asyncio.run(s.asearch(("t",), query="car"))[0].key == "b"  # from a running loop too
    with pytest.raises(ConfigurationError, match="holds vectors from"):  # the store remembers its embedder
        EngramStore(store_url, index={"embed": aembed, "dims": DIMS})


def test_embed_names_map_to_engramdb_embedders(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with EngramStore(store_url, index={"embed": "hash:32", "dims": 32}) as hashed:
        assert hashed.memory.embedder.name == "hash:32" and hashed.index_config["dims"] == 32
    with ScriptedOpenAIServer(dimension=48) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        with EngramStore(":memory:", index={"embed": "openai:text-embedding-3-small", "dims": 48}) as remote:
            remote.put(("docs",), "k", {"text": "embedded by the OpenAI protocol"})
            assert remote.search(("docs",), query="OpenAI protocol")[0].key == "k"
        assert {r["path"] for r in server.requests} == {"/v1/embeddings"}


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"embed": "cohere:embed-english-v3.0", "dims": 1024}, "cannot load the embeddings 'cohere"),
        ({"embed": "hash:32", "dims": 64}, "32 dimensions"),
        ({"embed": 42}, "must be a LangChain Embeddings"),
        ({"fields": ["text"], "text_fields": ["x"]}, "text_fields"),
        ({"distance_type": "l2"}, "distance_type"),
        ({"dims": 0}, "dims"),
    ],
)
def test_an_index_config_engramdb_cannot_honour_is_refused(index: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        EngramStore(":memory:", index=index)  # type: ignore[arg-type]


def test_the_index_must_agree_with_a_memory_given(memory: Memory) -> None:
    with pytest.raises(ConfigurationError, match="pass a store URL"):
        EngramStore(memory, index={"embed": Keywords(), "dims": DIMS})
    with pytest.raises(ConfigurationError, match="dims"):
        EngramStore(memory, index={"dims": memory.embedder.dimension + 1})
    with pytest.raises(ConfigurationError, match="sweep_interval_minutes"):
        EngramStore(memory, ttl={"sweep_interval_minutes": -1})
    with pytest.raises(ConfigurationError, match="a Memory or a store URL"):
        EngramStore(memory.store)  # type: ignore[arg-type]
    same = EngramStore(memory, index={"dims": memory.embedder.dimension, "fields": ["text"]})
    assert same.index_config["fields"] == ["text"]
    assert len(same.embeddings.embed_query("hi")) == same.index_config["dims"]  # LangChain's Embeddings, ours
