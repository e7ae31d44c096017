"""LangGraph: engramdb as the graph's store (BaseStore), namespaced per user."""

import tempfile
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

from engramdb import Memory
from engramdb.integrations.langgraph import EngramStore


class State(TypedDict):
    user: str
    message: str
    recalled: list[str]


def remember(state: State, *, store: BaseStore) -> dict[str, Any]:
    namespace = ("memories", state["user"])
    store.put(namespace, f"note-{len(store.search(namespace, limit=100))}", {"text": state["message"]})
    return {}


def recall(state: State, *, store: BaseStore) -> dict[str, Any]:
    hits = store.search(("memories", state["user"]), query=state["message"], limit=2)
    return {"recalled": [h.value["text"] for h in hits]}


builder = StateGraph(State)
builder.add_node("recall", recall)
builder.add_node("remember", remember)
builder.add_edge(START, "recall")
builder.add_edge("recall", "remember")
builder.add_edge("remember", END)

with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{Path(tmp) / 'graph.db'}") as memory:
    store = EngramStore(memory, user_level=1, index={"fields": ["text"]})  # LangGraph's index config
    graph = builder.compile(store=store)
    for message in ("My daughter Emma starts school in September", "I run every morning at six",
                    "When does Emma start school?"):  # fmt: skip
        out = graph.invoke({"user": "alice", "message": message, "recalled": []})
        print(f"{message!r}\n  recalled: {out['recalled']}")
    assert "My daughter Emma starts school in September" in out["recalled"]
    for hit in store.search(("memories", "alice"), query="school", limit=2):
        print(f"  {hit.score:+.3f}  {hit.value['text']}")  # cosine similarity, best first
    # the same memories, seen from engramdb: a real user scope
    print("engramdb sees:", [m.memory for m in memory.get_all(user_id="alice").results])
