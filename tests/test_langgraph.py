"""LangGraph: EngramStore behaves as a BaseStore, and a compiled graph uses it as its store."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

from engramdb import Memory
from engramdb.integrations.langgraph import EngramStore


def test_put_get_update_delete(memory: Memory) -> None:
    store = EngramStore(memory, user_level=1, fields=["text"])
    store.put(("memories", "alice"), "diet", {"text": "Alice is vegetarian", "confidence": 0.9})
    item = store.get(("memories", "alice"), "diet")
    assert item is not None and item.value == {"text": "Alice is vegetarian", "confidence": 0.9}
    assert item.namespace == ("memories", "alice") and item.key == "diet"
    assert store.get(("memories", "bob"), "diet") is None and store.get(("memories",), "diet") is None
    store.put(("memories", "alice"), "diet", {"text": "Alice is vegan", "confidence": 0.7})
    updated = store.get(("memories", "alice"), "diet")
    assert updated is not None and updated.value["text"] == "Alice is vegan" and updated.created_at == item.created_at
    assert [h.memory for h in memory.search("vegan", user_id="alice").results] == ["Alice is vegan"]  # a real scope
    store.delete(("memories", "alice"), "diet")
    assert store.get(("memories", "alice"), "diet") is None


def test_search_by_query_prefix_and_filter(memory: Memory) -> None:
    store = EngramStore(memory, user_level=1, fields=["text"])
    facts = {"diet": ("Alice is vegetarian", "food"), "pet": ("Alice has a dog named Biscuit", "home"),
             "city": ("Alice lives in Lisbon", "home")}  # fmt: skip
    for key, (text, topic) in facts.items():
        store.put(("memories", "alice"), key, {"text": text, "topic": topic})
    store.put(("memories", "bob"), "diet", {"text": "Bob eats everything", "topic": "food"})
    hits = store.search(("memories", "alice"), query="what can she eat?", limit=2)
    assert hits[0].key == "diet" and hits[0].score is not None and len(hits) == 2
    assert {h.key for h in store.search(("memories", "alice"), filter={"topic": "home"})} == {"pet", "city"}
    assert {h.key for h in store.search(("memories", "alice"), filter={"topic": {"$ne": "home"}})} == {"diet"}
    assert {h.namespace for h in store.search(("memories",), limit=10)} == {("memories", "alice"), ("memories", "bob")}
    assert len(store.search(("memories", "alice"), limit=2, offset=2)) == 1


def test_list_namespaces(memory: Memory) -> None:
    store = EngramStore(memory)
    for ns in [("a", "x", "1"), ("a", "y"), ("b", "x")]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces() == [("a", "x", "1"), ("a", "y"), ("b", "x")]
    assert store.list_namespaces(prefix=("a",)) == [("a", "x", "1"), ("a", "y")]
    assert store.list_namespaces(suffix=("x",)) == [("b", "x")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("b",)]


def test_ttl_becomes_expiry(memory: Memory) -> None:
    store = EngramStore(memory)
    store.put(("cache",), "short", {"v": 1}, ttl=1)
    store.put(("cache",), "long", {"v": 2})
    short = memory.get_all(agent_id="langgraph", filters={"metadata.lg_key": "short"}).results[0]
    assert short.expires_at is not None and short.expires_at - short.created_at <= timedelta(minutes=1, seconds=1)
    later = memory.get_all(agent_id="langgraph", include_inactive=True)
    assert later.total == 2
    expired = memory.search(
        "v", agent_id="langgraph", options={"lexical_weight": 0}, as_of=short.expires_at + timedelta(seconds=1)
    )
    assert "short" not in {h.metadata["lg_key"] for h in expired.results}


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
    graph = builder.compile(store=EngramStore(memory, user_level=1, fields=["text"]))
    graph.invoke({"user": "alice", "said": "I moved to Porto last spring", "recalled": []})
    graph.invoke({"user": "alice", "said": "I like jazz", "recalled": []})
    out = asyncio.run(graph.ainvoke({"user": "alice", "said": "My cat is called Miso", "recalled": []}))
    assert out["recalled"] == ["I moved to Porto last spring"]
