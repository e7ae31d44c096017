"""LangGraph: EngramStore behaves as LangGraph's BaseStore promises, on SQLite and PostgreSQL.

Items, batches, namespaces and filters here; query search, scores, indexing, TTL and the
``index`` config in ``test_langgraph_search.py``. Every test runs on both stores (the
``memory`` fixture), with the bundled embedder.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)

from engramdb import Memory
from engramdb.errors import ValidationError
from engramdb.integrations.langgraph import EngramStore


@pytest.fixture
def store(memory: Memory) -> EngramStore:
    return EngramStore(memory)


def _keys(store: EngramStore, prefix: tuple[str, ...] = ("docs",), **filter: Any) -> set[str]:
    return {item.key for item in store.search(prefix, filter=filter, limit=100)}


def test_put_get_update_delete(store: EngramStore) -> None:
    value = {"title": "Ünïcode ✓", "n": 3, "ratio": 0.5, "ok": True, "none": None, "tags": ["a", "b"],
             "nested": {"deep": [{"x": 1}], "empty": {}}}  # fmt: skip
    store.put(("test", "documents"), "doc1", value)
    item = store.get(("test", "documents"), "doc1")
    assert isinstance(item, Item) and item.value == value
    assert item.namespace == ("test", "documents") and item.key == "doc1"
    assert store.get(("test", "other"), "doc1") is None and store.get(("test",), "doc1") is None
    store.put(("test", "documents"), "doc1", {"title": "Updated"})
    updated = store.get(("test", "documents"), "doc1")
    assert updated is not None and updated.value == {"title": "Updated"}
    assert updated.created_at == item.created_at and updated.updated_at >= item.updated_at
    store.delete(("test", "documents"), "doc1")
    assert store.get(("test", "documents"), "doc1") is None
    store.delete(("test", "documents"), "never-there")  # deleting what is not there is no error


def test_an_item_is_a_memory_of_a_real_scope(memory: Memory) -> None:
    store = EngramStore(memory, user_level=1, fields=["text"])
    store.put(("memories", "alice"), "diet", {"text": "Alice is vegetarian", "confidence": 0.9})
    store.put(("memories", "bob"), "diet", {"text": "Bob eats everything"})
    assert [h.memory for h in memory.search("vegetarian", user_id="alice").results] == ["Alice is vegetarian"]
    store.put(("memories", "alice"), "profile", {"name": "Alice", "city": "Lisbon"}, index=["$"])
    texts = {i.memory for i in memory.get_all(user_id="alice").results}
    assert texts == {"Alice is vegetarian", "name: Alice\ncity: Lisbon"}  # the value read as text, not JSON
    memory.delete_all(user_id="alice", hard=True)  # a user asks to be forgotten
    assert store.get(("memories", "alice"), "diet") is None and store.get(("memories", "bob"), "diet") is not None


def test_equal_values_under_two_keys_stay_two_items(store: EngramStore) -> None:
    store.put(("docs",), "a", {"text": "same words"})
    store.put(("docs",), "b", {"text": "same words"})
    assert _keys(store) == {"a", "b"}
    assert {h.key for h in store.search(("docs",), query="same words")} == {"a", "b"}


def test_batch_runs_operations_in_order(store: EngramStore) -> None:
    store.put(("test", "foo"), "key1", {"data": "value1"})
    results = store.batch([
        GetOp(("test", "foo"), "key1"),
        PutOp(("test", "bar"), "key2", {"data": "value2"}),
        SearchOp(("test",), filter={"data": "value1"}),
        ListNamespacesOp(match_conditions=None, max_depth=None, limit=10, offset=0),
        GetOp(("test",), "missing"),
        GetOp(("test", "bar"), "key2"),  # sees the put before it
        PutOp(("test", "foo"), "key1", None),
        GetOp(("test", "foo"), "key1"),
    ])  # fmt: skip
    assert isinstance(results[0], Item) and results[0].value == {"data": "value1"}
    assert results[1] is None and results[4] is None and results[6] is None and results[7] is None
    assert isinstance(results[2], list) and [i.key for i in results[2]] == ["key1"]
    assert results[3] == [("test", "bar"), ("test", "foo")]
    assert isinstance(results[5], Item) and results[5].value == {"data": "value2"}


def test_async_operations(store: EngramStore) -> None:
    async def run() -> None:
        await store.aput(("a", "b"), "k", {"text": "async value", "n": 1})
        assert (await store.aget(("a", "b"), "k")).value == {"text": "async value", "n": 1}  # type: ignore[union-attr]
        assert [i.key for i in await store.asearch(("a",), filter={"n": 1})] == ["k"]
        assert [i.key for i in await store.asearch(("a",), query="async value")] == ["k"]
        assert await store.alist_namespaces(prefix=("a",)) == [("a", "b")]
        results = await store.abatch([GetOp(("a", "b"), "k"), PutOp(("a", "b"), "j", {"n": 2})])
        assert isinstance(results[0], Item) and results[1] is None
        await store.adelete(("a", "b"), "k")
        assert await store.aget(("a", "b"), "k") is None

    asyncio.run(run())


def test_bad_input_is_a_typed_error(store: EngramStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("ok", ""), "k", {"v": 1})])  # straight to batch: checked there too
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph",), "k", {"v": 1})
    with pytest.raises(ValidationError, match="JSON"):
        store.put(("a",), "k", {"v": {1, 2}})
    with pytest.raises(ValidationError, match="JSON"):
        store.put(("a",), "k", {"v": float("nan")})
    with pytest.raises(ValidationError, match="object"):
        store.batch([PutOp(("a",), "k", ["not", "a", "mapping"])])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="negative"):
        store.search(("a",), limit=-1)
    with pytest.raises(ValidationError, match="operator"):
        store.search(("a",), filter={"v": {"$regex": "x"}})
    with pytest.raises(ValidationError, match="list"):
        store.search(("a",), filter={"v": {"$gt": [1]}})
    assert store.get(("a",), "k") is None  # nothing was written


# --- namespaces ---------------------------------------------------------------------------


def test_list_namespaces_by_prefix_suffix_wildcard_and_depth(store: EngramStore) -> None:
    namespaces = [
        ("u", "test", "documents", "public", "u"), ("u", "test", "documents", "private", "u"),
        ("u", "test", "images", "public", "u"), ("u", "test", "images", "private", "u"),
        ("u", "prod", "documents", "public", "u"), ("u", "prod", "documents", "some", "nesting", "public", "u"),
        ("u", "prod", "documents", "private", "u"),
    ]  # fmt: skip
    for ns in namespaces:
        store.put(ns, "dummy", {"content": "dummy"})
    assert store.list_namespaces(prefix=("u",)) == sorted(namespaces)
    assert len(store.list_namespaces(prefix=("u", "test"))) == 4
    assert len(store.list_namespaces(prefix=("u", "test", "documents"))) == 2
    assert len(store.list_namespaces(suffix=("public", "u"))) == 4
    assert len(store.list_namespaces(prefix=("u", "test"), suffix=("public", "u"))) == 2
    assert len(store.list_namespaces(prefix=("u", "*", "documents"))) == 5
    assert len(store.list_namespaces(suffix=("*", "public", "u"))) == 4
    assert store.list_namespaces(suffix=("some", "*", "public", "u")) == [namespaces[5]]
    assert store.list_namespaces(max_depth=2) == [("u", "prod"), ("u", "test")]
    assert store.list_namespaces(max_depth=4, prefix=("u", "*", "documents")) == [
        ("u", "prod", "documents", "private"), ("u", "prod", "documents", "public"),
        ("u", "prod", "documents", "some"), ("u", "test", "documents", "private"), ("u", "test", "documents", "public"),
    ]  # fmt: skip
    assert store.list_namespaces(prefix=("u",), limit=3) == sorted(namespaces)[:3]
    assert store.list_namespaces(prefix=("u",), offset=3) == sorted(namespaces)[3:]
    for ns in namespaces:
        store.delete(ns, "dummy")
    assert store.list_namespaces() == []


def test_namespaces_match_whole_labels_literally(store: EngramStore) -> None:
    labels = [("foo",), ("foo", "child"), ("foobar",), ("Foo",), ("user_1",), ("userX1",), ("a%b",), ("star*",),
              ("q?m",), ("br[ack]et",), ("users", "alice"), ("users", "malice"), ("users", "alice\n")]  # fmt: skip
    for ns in labels:
        store.put(ns, "k", {"v": 1})

    def found(prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
        return {item.namespace for item in store.search(prefix, limit=100)}

    assert found(("foo",)) == {("foo",), ("foo", "child")}
    assert found(("Foo",)) == {("Foo",)} and found(("fo",)) == set()
    assert found(("user_1",)) == {("user_1",)} and found(("a%b",)) == {("a%b",)} and found(("star*",)) == {("star*",)}
    assert set(store.list_namespaces(prefix=("q?m",))) == {("q?m",)}
    assert set(store.list_namespaces(prefix=("br[ack]et",))) == {("br[ack]et",)}
    assert set(store.list_namespaces(suffix=("alice",))) == {("users", "alice")}
    assert found(()) == set(labels)  # an empty prefix constrains nothing


# --- filters ------------------------------------------------------------------------------


def test_filters_compare_values(store: EngramStore) -> None:
    docs = {
        "doc1": {"color": "red", "score": 4.5, "active": True, "tags": ["draft"], "user": {"name": "ann", "age": 30}},
        "doc2": {"color": "red", "score": 3, "active": False, "tags": ["draft", "x"], "user": {"name": "bo"}},
        "doc3": {"color": "green", "score": 4.0, "active": True, "tags": ["final"]},
        "doc4": {"color": "blue", "score": -10, "access-level": "public", "123abc": "ok", "first name": "Zoë"},
    }
    for key, value in docs.items():
        store.put(("docs",), key, value)
    assert _keys(store, color="red") == {"doc1", "doc2"}
    assert _keys(store, color="red", active=True) == {"doc1"}
    assert _keys(store, active=False) == {"doc2"}
    assert _keys(store, score=4) == {"doc3"}  # 4.0 == 4, as in Python
    assert _keys(store, score={"$gt": 3.2}) == {"doc1", "doc3"}
    assert _keys(store, score={"$gte": 3, "$lt": 4.5}) == {"doc2", "doc3"}
    assert _keys(store, score={"$lte": 0}) == {"doc4"}
    assert _keys(store, color={"$ne": "red"}) == {"doc3", "doc4"}
    assert _keys(store, color={"$eq": "blue"}) == {"doc4"}
    assert _keys(store, tags=["draft"]) == {"doc1"}  # a list compares whole
    assert _keys(store, tags={"$ne": ["draft"]}) == {"doc2", "doc3", "doc4"}
    assert _keys(store, **{"user.name": "ann"}) == {"doc1"}  # a dotted key is nested
    assert _keys(store, user={"name": "bo"}) == {"doc2"}  # and so is an object
    assert _keys(store, user={"age": {"$gt": 18}}) == {"doc1"}
    assert _keys(store, **{"access-level": "public", "123abc": "ok", "first name": "Zoë"}) == {"doc4"}
    assert _keys(store, user=None) == {"doc3", "doc4"}  # a missing key is null
    assert _keys(store, color="red", tags=["final"]) == set()


def test_filter_values_are_literal_and_never_raise(store: EngramStore) -> None:
    for key, price in (("item1", 10), ("item2", 20), ("item3", 30)):
        store.put(("docs",), key, {"price": price, "access": "public" if key == "item1" else "private"})
    store.put(("docs",), "quote", {"title": "O'Brien's Document"})
    assert _keys(store, price={"$lt": math.inf}) == {"item1", "item2", "item3"}
    assert _keys(store, price={"$gt": -math.inf}) == {"item1", "item2", "item3"}
    assert _keys(store, price={"$gt": math.inf}) == set() and _keys(store, price={"$lte": -math.inf}) == set()
    assert _keys(store, price={"$eq": math.nan}) == set() and _keys(store, price=math.nan) == set()
    assert _keys(store, price={"$ne": math.nan}) == {"item1", "item2", "item3", "quote"}
    assert _keys(store, price={"$lt": 10**100}) == {"item1", "item2", "item3"}
    for hostile in ("public' OR '1'='1", "public'; --", "public\x00' OR '1'='1", "''''", "public' OR 'א'='א"):
        assert _keys(store, access=hostile) == set()
    assert _keys(store, access={"$ne": "public\x00"}) == {"item1", "item2", "item3", "quote"}
    assert _keys(store, title="O'Brien's Document") == {"quote"}
    long = "x" * 1000
    store.put(("docs",), "long", {"text": long})
    assert _keys(store, text=long) == {"long"} and _keys(store, text=long[:-1]) == set()


def test_filter_only_search_pages(store: EngramStore) -> None:
    for i in range(7):
        store.put(("docs", "sub" if i % 2 else "top"), f"k{i}", {"i": i})
    first, second = store.search(("docs",), limit=4), store.search(("docs",), limit=4, offset=4)
    assert len(first) == 4 and len(second) == 3 and {i.key for i in first}.isdisjoint({i.key for i in second})
    assert all(item.score is None for item in first + second)  # no query: nothing is scored
    assert {i.key for i in store.search(("docs", "sub"))} == {"k1", "k3", "k5"}


def test_a_graph_reads_and_writes_memories_through_the_store(memory: Memory) -> None:
    class State(TypedDict):
        user: str
        said: str
        recalled: list[str]

    def remember(state: State, *, store: BaseStore) -> dict[str, Any]:
        store.put(("memories", state["user"]), f"m{len(state['said'])}", {"text": state["said"]})
        return {}

    def recall(state: State, *, store: BaseStore) -> dict[str, Any]:
        hits = store.search(("memories", state["user"]), query="where does the user live?", limit=1)
        return {"recalled": [h.value["text"] for h in hits]}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_node("recall", recall)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", "recall")
    builder.add_edge("recall", END)
    graph = builder.compile(store=EngramStore(memory, user_level=1, index={"fields": ["text"]}))
    graph.invoke({"user": "alice", "said": "I moved to Porto last spring", "recalled": []})
    graph.invoke({"user": "alice", "said": "I like jazz", "recalled": []})
    out = asyncio.run(graph.ainvoke({"user": "alice", "said": "My cat is called Miso", "recalled": []}))
    assert out["recalled"] == ["I moved to Porto last spring"]


def test_list_namespaces_take_match_conditions_directly(store: EngramStore) -> None:
    for ns in [("test", "documents", "public"), ("test", "images", "public"), ("prod", "documents", "private")]:
        store.put(ns, "k", {"v": 1})
    op = ListNamespacesOp(match_conditions=(MatchCondition("suffix", ("public",)),), max_depth=None, limit=10)
    assert store.batch([op])[0] == [("test", "documents", "public"), ("test", "images", "public")]
