"""An import may name only its own scope's memories as sources, and ``expand`` shows only those:
a key limited to alice can neither read bob's memories through a source link nor tie alice's
memories to bob's, and an id of bob's is answered as one of another tenant's would be."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from live import serving

from engramdb import Event, Memory, MemoryState, ValidationError
from engramdb.models import MemoryItem, content_hash, new_id, utcnow
from engramdb.server import create_key
from engramdb.stores.base import NewRecord

BOB_SECRET = "bob's diary: the safe code is 4321"


def record(memory: str, **fields: Any) -> dict[str, Any]:
    """An exported memory, as ``engramdb export`` writes it."""
    now = utcnow().isoformat()
    return {"id": new_id(), "memory": memory, "kind": "fact", "hash": content_hash(memory), "created_at": now,
            "updated_at": now, "valid_from": now, **fields}  # fmt: skip


def bobs_episode(memory: Memory) -> str:
    return memory.add(BOB_SECRET, user_id="bob", session_id="s1").results[0].id


def stored_before_sources_were_confined(memory: Memory, sources: list[str]) -> str:
    """Alice's memory linked to other memories, written as an unconfined import used to write it."""
    item = MemoryItem.model_validate(record("alice notes the code", user_id="alice", sources=sources))
    vector = memory.embedder.embed([item.memory], kind="document")[0]
    return memory.store.add(memory.tenant_id, [NewRecord(item, item.memory, vector)])[0][0]


@pytest.mark.parametrize(
    "scope",
    [{"user_id": "bob"}, {"user_id": "alice", "agent_id": "other-bot"}, {"session_id": "s1"}],
    ids=["another user", "another agent", "no user"],
)
def test_sources_outside_the_records_scope_are_refused(memory: Memory, scope: dict[str, str]) -> None:
    source = memory.add("someone else's message", **scope).results[0].id
    fine = record("alice is fine", user_id="alice")
    linked = record("alice notes the code", user_id="alice", sources=[source])
    with pytest.raises(ValidationError, match=r"record 1: source .* not a memory in the record's own scope"):
        memory.import_items([fine, linked])
    assert memory.store.get_many(memory.tenant_id, [fine["id"], linked["id"]]) == []  # nothing of the batch


def test_sources_in_the_records_scope_are_kept(memory: Memory) -> None:
    earlier = memory.add("I moved to Oslo", user_id="alice", session_id="s1").results[0].id
    episode = record("I work at the harbour", user_id="alice", session_id="s2", kind="episode")
    sources = [earlier, episode["id"], "01GONE"]  # a deleted message's id stays, linking to nothing
    derived = record("Alice lives in Oslo and works at the harbour", user_id="alice", sources=sources)
    result = memory.import_items([episode, derived])
    assert [r.event for r in result.results] == [Event.ADD, Event.ADD]
    assert [m.memory for m in memory.expand(derived["id"])] == ["I moved to Oslo", "I work at the harbour"]
    memory.delete(earlier)
    assert memory.get(derived["id"]).state is MemoryState.ACTIVE  # one source is left


def test_expand_shows_only_the_memorys_own_scope(memory: Memory) -> None:
    bob = bobs_episode(memory)
    own = memory.add("alice's own note", user_id="alice").results[0].id
    linked = stored_before_sources_were_confined(memory, [bob, own])
    assert [m.memory for m in memory.expand(linked)] == ["alice's own note"]


def test_another_users_id_is_answered_as_another_tenants(memory: Memory) -> None:
    bob = bobs_episode(memory)
    elsewhere = memory.for_tenant("other").add("another tenant's note", user_id="carol").results[0].id
    mine = memory.add("alice's own note", user_id="alice").results[0].id
    results = memory.import_items([record("alice takes bob's id", user_id="alice", id=bob),
                                   record("alice takes carol's id", user_id="alice", id=elsewhere),
                                   record("alice's own note", user_id="alice", id=mine)]).results  # fmt: skip
    assert [r.event for r in results] == [Event.ADD, Event.ADD, Event.NOOP]
    assert results[0].id != bob and results[1].id != elsewhere and results[2].id == mine
    assert memory.get(bob).memory == BOB_SECRET and memory.get(results[0].id).user_id == "alice"
    again = memory.import_items([record("alice takes bob's id", user_id="alice", id=bob)]).results
    assert [(r.event, r.id) for r in again] == [(Event.NOOP, results[0].id)]  # her copy, never bob's


@pytest.fixture
def alice_only(memory: Memory) -> Iterator[httpx.Client]:
    """Real HTTP with a key limited to alice."""
    secret, _ = create_key(memory.store, memory.tenant_id, user_ids=["alice"])
    with serving(memory) as (url, _), httpx.Client(base_url=url, headers={"X-API-Key": secret}, timeout=30) as http:
        yield http


def ndjson(*records: dict[str, Any]) -> dict[str, Any]:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    return {"content": body, "headers": {"Content-Type": "application/x-ndjson"}}


def test_rest_import_refuses_another_users_source(memory: Memory, alice_only: httpx.Client) -> None:
    bob = bobs_episode(memory)
    linked = record("alice notes the code", user_id="alice", sources=[bob])
    response = alice_only.post("/v1/import", **ndjson(linked))
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert BOB_SECRET not in response.text
    assert alice_only.get(f"/v1/memories/{linked['id']}/sources").status_code == 404  # nothing was written
    assert alice_only.get("/v1/memories", params={"user_id": "alice"}).json()["total"] == 0


def test_rest_expand_shows_none_of_another_users_memories(memory: Memory, alice_only: httpx.Client) -> None:
    bob = bobs_episode(memory)
    linked = stored_before_sources_were_confined(memory, [bob])
    response = alice_only.get(f"/v1/memories/{linked}/sources")
    assert response.status_code == 200 and response.json() == []


def test_rest_import_of_another_users_id_confirms_nothing(memory: Memory, alice_only: httpx.Client) -> None:
    bob = bobs_episode(memory)
    response = alice_only.post("/v1/import", **ndjson(record("alice takes bob's id", user_id="alice", id=bob)))
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["event"] == "ADD" and result["id"] != bob and bob not in response.text
    memory.delete(bob)
    assert alice_only.get(f"/v1/memories/{result['id']}").json()["state"] == "active"
