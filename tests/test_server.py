"""The REST server as a real process on loopback, driven over real HTTP by the Client and httpx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from engramdb import Client, ConfigurationError, Memory, NotFoundError, ValidationError
from engramdb.config import SearchOptions
from engramdb.server import create_key
from engramdb.server.auth import hash_secret


@dataclass
class Server:
    url: str
    store: str
    keys: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(store: str, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engramdb", "serve", "--store", store, "--port", str(port), *extra],
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)
    if proc.stderr:
        proc.stderr.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = f"sqlite:///{tmp_path_factory.mktemp('server') / 'server.db'}"
    with Memory(store) as m:
        keys = {
            "a": create_key(m.store, "tenant-a")[0],
            "b": create_key(m.store, "tenant-b")[0],
            "a_alice": create_key(m.store, "tenant-a", user_ids=["alice"])[0],
            "revoked": create_key(m.store, "tenant-a")[0],
            "admin_a": create_key(m.store, "tenant-a", admin=True)[0],
        }
        revoked = m.store.find_key(hash_secret(keys["revoked"]))
        assert revoked is not None
        m.store.revoke_key(revoked.id)
    proc, url = _start(store)
    yield Server(url, store, keys)
    _stop(proc)


def test_the_client_speaks_memory(server: Server) -> None:
    with Client(server.url, server.keys["a"]) as client:
        added = client.add([{"role": "user", "name": "Alice", "content": "I moved to Berlin"}], user_id="alice")
        episode, fact = added.results
        assert fact.memory == "Alice lives in Berlin" and added.extraction.state == "done"
        hits = client.search("where does Alice live?", user_id="alice")
        assert fact.id in [h.id for h in hits.results]
        assert client.get(episode.id).memory == "I moved to Berlin"
        page = client.get_all(user_id="alice", limit=1)
        assert page.total == 2 and page.next_cursor
        updated = client.update(episode.id, "I moved to Berlin in May", metadata={"v": 2})
        assert updated.metadata == {"v": 2}
        assert [h.event.value for h in client.history(episode.id)] == ["ADD", "UPDATE"]
        context = client.context("where does Alice live?", user_id="alice", max_tokens=100)
        assert context.tokens <= 100 and context.items
        with pytest.raises(NotFoundError):
            client.get("01NOPE")
        with pytest.raises(ValidationError):
            client.add("", user_id="alice")
        assert client.delete_all(user_id="alice").deleted == 2


def test_search_options_time_range_and_explain_over_http(server: Server) -> None:
    with Client(server.url, server.keys["a"]) as client:
        for when, text in [(datetime(2024, 3, 1, tzinfo=timezone.utc), "Lisbon was lovely, the food in Lisbon"),
                           (datetime(2024, 3, 8, tzinfo=timezone.utc), "I flew to Lisbon last week")]:  # fmt: skip
            message = {"role": "user", "name": "Ana", "content": text, "timestamp": when}
            client.add([message], user_id="ana", infer=False)
        asked = client.search("When did Ana go to Lisbon?", user_id="ana", explain=True)
        assert asked.results[0].memory == "I flew to Lisbon last week" and asked.results[0].explain
        assert [h.explain.when for h in asked.results if h.explain] == [1.0, 0.5]
        off = client.search("When did Ana go to Lisbon?", user_id="ana", options=SearchOptions(when_weight=0))
        assert off.results[0].memory.startswith("Lisbon was lovely")
        march = (datetime(2024, 3, 5, tzinfo=timezone.utc), None)
        ranged = client.search("Lisbon", user_id="ana", time_range=march, options={"when_weight": 0})
        assert [h.memory for h in ranged.results] == ["I flew to Lisbon last week"]
        with pytest.raises(ValidationError):
            client.search("Lisbon", user_id="ana", time_range=(march[0], datetime(2024, 1, 1, tzinfo=timezone.utc)))
        with pytest.raises(ValidationError):
            client.search("Lisbon", user_id="ana", options={"when_weight": 7})
        # 00:00 UTC on March 8 is the 7th in California: not "today" there at 10 am, though it is in UTC
        assert client.search("who won the chess final?", user_id="ana").results == []  # never said: nothing
        assert len(client.search("who won the chess final?", user_id="ana", threshold=0).results) == 2
        morning = datetime(2024, 3, 8, 10, tzinfo=timezone(timedelta(hours=-8)))
        there = client.search("Lisbon today", user_id="ana", reference_date=morning)
        utc = client.search("Lisbon today", user_id="ana", reference_date=morning.astimezone(timezone.utc))
        assert there.results[0].memory.startswith("Lisbon was lovely")  # nothing from today: by relevance
        assert utc.results[0].memory == "I flew to Lisbon last week"  # said on the UTC day: first
        context = client.context("Lisbon", user_id="ana", reference_date=morning, relevant=2, profile=0)
        assert "2024-03-07 I flew to Lisbon" in context.text and "2024-03-08" not in context.text
        with pytest.raises(ValidationError):
            client.context("Lisbon", user_id="ana", relevant=-1)
        client.delete_all(user_id="ana")


def test_sessions_turns_summaries_and_sources_over_http(server: Server) -> None:
    with Client(server.url, server.keys["a"]) as client:
        for session, texts in [("trip/1", ["We land in Lisbon on Friday", "Book the tram tickets"]),
                               ("trip 2", ["The Porto hotel is by the river"])]:  # fmt: skip
            messages = [{"role": "user", "name": "Dee", "content": text} for text in texts]
            client.add(messages, user_id="dee", session_id=session, infer=False)
        sessions = client.sessions(user_id="dee")
        assert [s.session_id for s in sessions] == ["trip/1", "trip 2"] and sessions[0].turns == 2
        last = client.recent_turns(session_id="trip/1", user_id="dee", limit=1)
        assert [t.memory for t in last] == ["Book the tram tickets"]
        summary = client.summarize_session("trip/1", user_id="dee", sentences=1)
        assert summary.kind == "episode" and summary.metadata == {"summary_of": "trip/1"}
        assert [t.memory for t in client.expand(summary.id)] == ["We land in Lisbon on Friday", "Book the tram tickets"]
        with pytest.raises(ValidationError):
            client.recent_turns(session_id="trip/1", user_id="dee", limit=0)
        with pytest.raises(ValidationError, match="sentences"):
            client.summarize_session("trip/1", user_id="dee", sentences=0)
        with pytest.raises(NotFoundError):
            client.summarize_session("no such trip", user_id="dee")
        with pytest.raises(NotFoundError):
            client.expand("01NOPE")
        assert len(client.sessions(user_id="dee")) == 2  # the refused calls stored nothing
        client.delete_all(user_id="dee")
    with Client(server.url, server.keys["a_alice"]) as limited, pytest.raises(ConfigurationError):
        limited.sessions(user_id="dee")  # a key for alice only


@pytest.fixture
def opened() -> Iterator[list[Client | httpx.Client]]:
    """Clients a test opens, closed when it ends."""
    clients: list[Client | httpx.Client] = []
    yield clients
    for client in clients:
        client.close()


def client(opened: list[Client | httpx.Client], server: Server, key: str) -> Client:
    opened.append(c := Client(server.url, server.keys[key]))
    return c


def raw_client(opened: list[Client | httpx.Client], server: Server, **headers: str) -> httpx.Client:
    opened.append(c := httpx.Client(base_url=server.url, headers=headers))
    return c


def test_no_key_can_reach_another_tenant(server: Server, opened: list[Client | httpx.Client]) -> None:
    a, b = client(opened, server, "a"), client(opened, server, "b")
    mine = a.add("secret plans for the launch", user_id="carol", infer=False).results[0].id
    for call in (lambda: b.get(mine), lambda: b.update(mine, "hacked"), lambda: b.delete(mine),
                 lambda: b.history(mine)):  # fmt: skip
        with pytest.raises(NotFoundError):
            call()
    assert b.search("secret plans", user_id="carol").results == []
    assert b.get_all(user_id="carol").total == 0
    assert b.delete_all(user_id="carol").deleted == 0
    raw = raw_client(opened, server, **{"X-API-Key": server.keys["b"]})
    assert raw.get(f"/memories/{mine}").status_code == 404
    assert raw.put(f"/memories/{mine}", json={"text": "x"}).status_code == 404
    assert raw.delete(f"/memories/{mine}").status_code == 404
    assert raw.get(f"/memories/{mine}/history").status_code == 404
    assert raw.post("/search", json={"query": "secret", "user_id": "carol"}).json()["results"] == []
    assert raw.get("/v1/export").text == ""
    assert "secret" not in b.context("secret plans", user_id="carol").text
    assert b.consolidate(user_id="carol").examined == 0
    assert b.prune(user_id="carol", policy={"max_memories": 0}).forgotten == {}
    job = a.add("I live in Rome", user_id="carol").extraction
    assert job is not None and job.job_id and job.state == "done"
    assert raw.get("/v1/jobs", params={"state": "any"}).json()["results"] == []
    assert raw.get(f"/v1/jobs/{job.job_id}").status_code == 404
    assert raw.post(f"/v1/jobs/{job.job_id}/retry").status_code == 404
    assert "carol" not in {s.user_id for s in b.scopes(include_inactive=True)}
    replayed = raw.post("/v1/import", content=a.get(mine).model_dump_json().encode()).json()["results"][0]
    assert replayed["event"] == "ADD" and replayed["id"] != mine  # another tenant's id is neither revealed nor taken
    assert a.get(mine).memory == "secret plans for the launch" and a.get(mine).state.value == "active"
    with pytest.raises(NotFoundError):
        b.get(mine)


def test_a_key_limited_to_a_user(server: Server, opened: list[Client | httpx.Client]) -> None:
    a, alice_only = client(opened, server, "a"), client(opened, server, "a_alice")
    dave = a.add("dave's note", user_id="dave", infer=False).results[0].id
    with pytest.raises(ConfigurationError, match="forbidden"):
        alice_only.add("hi", user_id="dave")
    with pytest.raises(ConfigurationError, match="forbidden"):
        alice_only.search("note")  # no user named: not allowed either
    with pytest.raises(NotFoundError):
        alice_only.get(dave)
    assert alice_only.add("hello", user_id="alice", infer=False).results[0].event.value == "ADD"
    daves_job = a.add("I live in Oslo", user_id="dave").extraction
    assert daves_job is not None and daves_job.job_id
    raw = raw_client(opened, server, **{"X-API-Key": server.keys["a_alice"]})
    assert {j["user_id"] for j in raw.get("/v1/jobs", params={"state": "any"}).json()["results"]} <= {"alice"}
    assert raw.get("/v1/jobs", params={"user_id": "dave"}).status_code == 403
    assert raw.post(f"/v1/jobs/{daves_job.job_id}/retry").status_code == 404
    assert {s.user_id for s in alice_only.scopes(include_inactive=True)} <= {"alice"}


def test_keys_are_required_and_revocation_is_immediate(server: Server, opened: list[Client | httpx.Client]) -> None:
    assert httpx.post(server.url + "/v1/search", json={"query": "x"}).status_code == 401
    bad = httpx.post(server.url + "/v1/search", json={"query": "x"}, headers={"Authorization": "Bearer egm_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    with pytest.raises(ConfigurationError, match="unauthorized"):
        client(opened, server, "revoked").search("x", user_id="u")


def test_bad_input_is_a_4xx_with_a_stable_code(server: Server, opened: list[Client | httpx.Client]) -> None:
    raw = raw_client(opened, server, **{"X-API-Key": server.keys["a"]})
    cases = [
        (raw.post("/v1/memories", json={"messages": "", "user_id": "u"}), 400, "validation_error"),
        (raw.post("/v1/memories", json={"messages": "x"}), 400, "validation_error"),
        (raw.post("/v1/memories", content=b"{not json", headers={"content-type": "application/json"}), 422,
         "invalid_request"),
        (raw.post("/v1/memories", json={"messages": "x", "user_id": "u", "nope": 1}), 422, "invalid_request"),
        (raw.post("/v1/search", json={"query": "x", "limit": 0}), 400, "validation_error"),
        (raw.post("/v1/search", json={"query": "x", "filters": {"bad": 1}}), 400, "validation_error"),
        (raw.get("/v1/memories", params={"limit": 5000}), 422, "invalid_request"),
        (raw.get("/v1/memories", params={"cursor": "zzz"}), 400, "validation_error"),
        (raw.post("/v1/memories", content=b"x" * 2_000_000, headers={"content-type": "application/json"}), 413,
         "body_too_large"),
        (raw.post("/v1/memories", content=(b"x" * 100_000 for _ in range(20)),  # chunked: no declared length
                  headers={"content-type": "application/json"}), 413, "body_too_large"),
    ]  # fmt: skip
    for response, status, code in cases:
        assert response.status_code == status and response.json()["error"]["code"] == code, (status, response.text)


def test_mem0_routes_health_metrics_and_docs(server: Server, opened: list[Client | httpx.Client]) -> None:
    raw = raw_client(opened, server, Authorization=f"Bearer {server.keys['a']}")
    added = raw.post("/memories", json={"messages": [{"role": "user", "content": "I love jazz"}], "user_id": "m0",
                                        "run_id": "r1"}).json()  # fmt: skip
    memory_id = added["results"][0]["id"]
    assert raw.post("/search", json={"query": "jazz", "user_id": "m0"}).json()["results"]
    assert raw.put(f"/memories/{memory_id}", json={"data": "I love bebop"}).json()["memory"] == "I love bebop"
    assert len(raw.get(f"/memories/{memory_id}/history").json()) == 2
    assert raw.delete(f"/memories/{memory_id}").json()["deleted"] == 1
    assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
    assert "engramdb_requests_total" in httpx.get(server.url + "/metrics").text
    spec = httpx.get(server.url + "/openapi.json").json()
    assert {"/v1/memories", "/v1/search", "/v1/context", "/memories", "/search"} <= set(spec["paths"])


def test_rate_limit_and_loopback_only_without_auth(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'rl.db'}"
    with Memory(store) as m:
        secret, _ = create_key(m.store, "t")
    proc, url = _start(store, "--rate", "1")
    try:
        codes = [httpx.get(url + "/v1/memories", params={"user_id": "u"}, headers={"X-API-Key": secret}).status_code
                 for _ in range(6)]  # fmt: skip
        assert codes[0] == 200 and 429 in codes
    finally:
        _stop(proc)
    refused = subprocess.run([sys.executable, "-m", "engramdb", "serve", "--store", store, "--no-auth", "--host",
                              "0.0.0.0"], capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "loopback" in refused.stderr


def test_several_workers_share_one_store(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'workers.db'}"
    with Memory(store) as m:
        secret, _ = create_key(m.store, "t")
    proc, url = _start(store, "--workers", "2")
    try:
        clients = [Client(url, secret) for _ in range(4)]
        ids = [c.add(f"note number {i} about gardening", user_id="w", infer=False).results[0].id
               for i, c in enumerate(clients)]  # fmt: skip
        for c in clients:  # whichever worker answers sees every write
            assert {h.id for h in c.search("gardening", user_id="w", limit=10).results} == set(ids)
            c.close()
    finally:
        _stop(proc)


def test_two_servers_share_one_postgres_database(postgres_url: str) -> None:
    """Two separate server processes (each with two workers) on one database: every write is seen by all."""
    with Memory(postgres_url) as m:
        secret, _ = create_key(m.store, "t")
    servers = [_start(postgres_url, "--workers", "2"), _start(postgres_url)]
    try:
        clients = [Client(url, secret) for _, url in servers for _ in range(2)]
        ids = [c.add(f"note number {i} about gardening", user_id="w", infer=False).results[0].id
               for i, c in enumerate(clients)]  # fmt: skip
        for c in clients:
            assert {h.id for h in c.search("gardening", user_id="w", limit=10).results} == set(ids)
        clients[0].delete(ids[1])
        assert ids[1] not in {h.id for h in clients[-1].search("gardening", user_id="w").results}
        for c in clients:
            c.close()
    finally:
        for proc, _ in servers:
            _stop(proc)


def test_an_admin_key_manages_its_tenants_keys(server: Server, opened: list[Client | httpx.Client]) -> None:
    admin = raw_client(opened, server, **{"X-API-Key": server.keys["admin_a"]})
    made = admin.post("/v1/keys", json={"user_ids": ["zoe"], "name": "zoe's app"}).json()
    assert made["tenant_id"] == "tenant-a" and made["secret"].startswith("egm_")
    assert made["id"] in [k["id"] for k in admin.get("/v1/keys").json()]
    assert all("secret" not in k and "hash" not in k for k in admin.get("/v1/keys").json())
    zoe = raw_client(opened, server, **{"X-API-Key": made["secret"]})
    assert zoe.get("/v1/memories", params={"user_id": "zoe"}).status_code == 200
    assert zoe.get("/v1/keys").json()["error"]["code"] == "forbidden"  # not an admin key
    assert admin.delete(f"/v1/keys/{made['id']}").json()["revoked_at"]
    assert zoe.get("/v1/memories", params={"user_id": "zoe"}).status_code == 401  # at once
    b_keys = raw_client(opened, server, **{"X-API-Key": server.keys["b"]})
    assert b_keys.post("/v1/keys", json={}).status_code == 403
    with Memory(server.store) as m:
        other = m.store.list_keys("tenant-b")[0]
    assert admin.delete(f"/v1/keys/{other.id}").status_code == 404  # another tenant's key


def test_framework_adapters_work_over_the_client(server: Server, opened: list[Client | httpx.Client]) -> None:
    """The LangChain retriever and chat history take a remote Client as they take a Memory."""
    from langchain_core.messages import AIMessage, HumanMessage

    from engramdb.integrations.langchain import EngramChatMessageHistory, EngramRetriever

    remote = client(opened, server, "a")
    remote.add("Dana keeps bees on her roof", user_id="dana", infer=False)
    docs = EngramRetriever(memory=remote, user_id="dana", k=1).invoke("what does dana keep on her roof?")
    assert [d.page_content for d in docs] == ["Dana keeps bees on her roof"]
    history = EngramChatMessageHistory(remote, "chat-9", user_id="dana", infer=False)
    history.add_messages([HumanMessage(content="Hello"), AIMessage(content="Hi Dana")])
    assert [(type(m), m.content) for m in history.messages] == [(HumanMessage, "Hello"), (AIMessage, "Hi Dana")]


def test_the_server_awaits_postgres_writes(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL the write routes await the store's async transactions: no sync write runs."""
    import asyncio

    from engramdb.server import create_app
    from engramdb.server.app import ServerSettings
    from engramdb.stores.postgres import PostgresStore

    def no_sync(*args: object, **kwargs: object) -> None:
        raise AssertionError("a synchronous store write or read ran")

    for name in ("add", "update", "delete", "delete_scope", "get"):
        monkeypatch.setattr(PostgresStore, name, no_sync)

    async def main(memory: Memory) -> None:
        app = create_app(memory, ServerSettings(auth=False))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engram") as c:
            body = {"messages": "note about the async garden", "user_id": "aw", "infer": False}
            added = (await c.post("/v1/memories", json=body)).json()["results"][0]
            again = (await c.post("/memories", json=body)).json()["results"][0]  # the mem0 route
            assert added["event"] == "ADD" and again == {**added, "event": "NOOP"}
            changed = await c.put(f"/v1/memories/{added['id']}", json={"text": "note about the async orchard"})
            assert changed.json()["memory"] == "note about the async orchard"
            hits = (await c.post("/v1/search", json={"query": "orchard", "user_id": "aw"})).json()["results"]
            assert [h["id"] for h in hits] == [added["id"]]
            assert (await c.delete(f"/memories/{added['id']}")).json()["deleted"] == 1
            assert (await c.delete(f"/v1/memories/{added['id']}")).status_code == 404
            await c.post("/v1/memories", json={**body, "messages": "one more"})
            assert (await c.delete("/v1/memories", params={"user_id": "aw"})).json()["deleted"] == 1
            assert (await c.post("/v1/memories", json={"messages": "", "user_id": "aw"})).status_code == 400

    with Memory(postgres_url) as memory:
        asyncio.run(main(memory))
