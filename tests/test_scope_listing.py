"""Listing scopes with ``include_inactive``: a user whose memories are all out of recall is
listed (with how many are), on both stores, and over REST within the key's tenant and users."""

from __future__ import annotations

import httpx
from live import serving

from engramdb import Client, Memory, ScopeCount
from engramdb.embedders import Embedder
from engramdb.server import create_key


def seed(m: Memory) -> None:
    m.add("ana likes tea", user_id="ana", infer=False)
    m.add("I live in Paris", user_id="ana", infer=True)
    m.add("I live in Berlin", user_id="ana", infer=True)  # supersedes the Paris fact
    m.add("frank keeps bees", user_id="frank", infer=False)
    m.prune(user_id="frank", policy={"max_memories": 0})  # forgotten: nothing of frank is in recall
    m.add("answer in French", agent_id="planner", infer=False)


def by_user(counts: list[ScopeCount]) -> dict[str | None, tuple[int, int | None]]:
    return {c.user_id: (c.memories, c.inactive) for c in counts}


def test_scopes_with_inactive_memories_on_both_stores(store_url: str, default_embedder: Embedder) -> None:
    with Memory(store_url, embedder=default_embedder) as m:
        seed(m)
        assert by_user(m.scopes()) == {None: (1, None), "ana": (4, None)}  # two messages, tea, Berlin
        assert by_user(m.scopes(include_inactive=True)) == {None: (1, 0), "ana": (4, 1), "frank": (0, 1)}
        assert by_user(m.scopes(user_id="frank", include_inactive=True)) == {"frank": (0, 1)}
        assert m.scopes(user_id="frank") == []


def test_rest_lists_inactive_scopes_within_the_key(default_embedder: Embedder) -> None:
    with Memory(":memory:", embedder=default_embedder) as memory:
        seed(memory)
        memory.for_tenant("other").add("zoe rows boats", user_id="zoe", infer=False)
        with serving(memory) as (url, secret):
            limited = create_key(memory.store, memory.tenant_id, user_ids=["frank"])[0]
            other = create_key(memory.store, "other")[0]
            with Client(url, secret) as client:
                assert by_user(client.scopes(include_inactive=True))["frank"] == (0, 1)
                assert "frank" not in by_user(client.scopes())
            with Client(url, limited) as client:
                assert by_user(client.scopes(include_inactive=True)) == {"frank": (0, 1)}
                assert client.scopes() == []
            with Client(url, other) as client:
                assert by_user(client.scopes(include_inactive=True)) == {"zoe": (1, 0)}
            bad = httpx.get(url + "/v1/scopes", params={"include_inactive": "perhaps"},
                            headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
