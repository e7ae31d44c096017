"""mem0's own SDK, unmodified, against a real ``engramdb serve`` process.

``MemoryClient`` and ``AsyncMemoryClient`` (the installed ``mem0ai`` package) are pointed at
the server with ``host=`` and an engramdb key, and every call a mem0 user makes is checked by
what it returns. mem0 reads two settings at import: ``MEM0_TELEMETRY`` (off here, so nothing
is sent anywhere) and ``MEM0_DIR`` (where it keeps its config file: a temporary directory).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx
import pytest
from test_server import _start, _stop

from engramdb import Memory
from engramdb.server import create_key


@dataclass
class Server:
    url: str
    keys: dict[str, str]


@pytest.fixture(scope="module")
def mem0(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The mem0 package, imported with telemetry off and its config directory out of the home."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEM0_TELEMETRY", "False")
        env.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0-home")))
        module = importlib.import_module("mem0")
        telemetry = importlib.import_module("mem0.memory.telemetry")
        assert telemetry.client_telemetry.posthog is None  # no event can leave the machine
        yield module


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server; each test works in its own tenant, so none sees another's memories."""
    store = f"sqlite:///{tmp_path_factory.mktemp('mem0-sdk') / 'server.db'}"
    with Memory(store) as m:
        tenants = ("sync", "async", "limits", "refusals", "other", "selfhosted")
        keys = {tenant: create_key(m.store, tenant)[0] for tenant in tenants}
        keys["limits_alice"] = create_key(m.store, "limits", user_ids=["alice"])[0]
        keys["selfhosted_alice"] = create_key(m.store, "selfhosted", user_ids=["alice"])[0]
    proc, url = _start(store)
    yield Server(url, keys)
    _stop(proc)


async def _call(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """One SDK call, awaited when the client is the async one: the same steps drive both."""
    result = getattr(client, method)(*args, **kwargs)
    return await result if inspect.isawaitable(result) else result


def _client(mem0: ModuleType, server: Server, tenant: str, *, asynchronous: bool) -> Any:
    cls = mem0.AsyncMemoryClient if asynchronous else mem0.MemoryClient
    return cls(api_key=server.keys[tenant], host=server.url)


async def _close(client: Any) -> None:
    if hasattr(client, "async_client"):
        await client.async_client.aclose()
    else:
        client.client.close()


def test_the_client_checks_its_key_on_the_ping(mem0: ModuleType, server: Server) -> None:
    client = mem0.MemoryClient(api_key=server.keys["sync"], host=server.url)
    assert (client.org_id, client.project_id, client.user_email) == ("sync", "sync", None)  # the key's tenant
    client.client.close()
    with httpx.Client() as http, pytest.raises(ValueError, match="401"):  # our client: closed when refused
        mem0.MemoryClient(api_key="egm_not-a-key", host=server.url, client=http)
    with pytest.raises(ValueError, match="401"):
        mem0.AsyncMemoryClient(api_key="egm_not-a-key", host=server.url)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["MemoryClient", "AsyncMemoryClient"])
async def test_every_call_of_the_client(mem0: ModuleType, server: Server, asynchronous: bool) -> None:
    tenant = "async" if asynchronous else "sync"
    client = _client(mem0, server, tenant, asynchronous=asynchronous)
    try:
        await _writes_and_reads(mem0, client)
        await _deletes_and_reset(mem0, client)
    finally:
        await _close(client)


async def _writes_and_reads(mem0: ModuleType, client: Any) -> None:
    derived = await _call(client, "add", [{"role": "user", "content": "I'm vegetarian and I live in Paris"}],
                          user_id="alice")  # fmt: skip
    assert derived["status"] == "SUCCEEDED"
    assert {(r["memory"], r["event"]) for r in derived["results"]} == {
        ("The user is vegetarian", "ADD"), ("The user lives in Paris", "ADD"),
    }  # fmt: skip
    raw = await _call(client, "add", "Remind me to buy oat milk", user_id="alice", infer=False,
                      metadata={"topic": "shopping"})  # fmt: skip
    assert [(r["memory"], r["event"]) for r in raw["results"]] == [("Remind me to buy oat milk", "ADD")]
    await _call(client, "add", "Book a table for two", user_id="bob", agent_id="concierge", run_id="trip-1",
                infer=False)  # fmt: skip

    plain = await _call(client, "search", "vegetarian", filters={"user_id": "alice"}, top_k=1)
    assert [h["memory"] for h in plain["results"]] == ["The user is vegetarian"]
    hit = plain["results"][0]
    assert hit["user_id"] == "alice" and 0 < hit["score"] <= 1 and {"id", "created_at", "metadata"} <= set(hit)
    combined = await _call(client, "search", "what should I buy?", filters={
        "AND": [{"user_id": "alice"}, {"run_id": "*"}, {"metadata": {"topic": "shopping"}}]})  # fmt: skip
    assert [h["memory"] for h in combined["results"]] == ["Remind me to buy oat milk"]
    options = mem0.client.types.SearchMemoryOptions(filters={"AND": [{"agent_id": "concierge"}]}, top_k=5)
    assert [h["run_id"] for h in (await _call(client, "search", "table", options))["results"]] == ["trip-1"]
    either = await _call(client, "search", "table", filters={"OR": [{"user_id": "bob"}, {"user_id": "carol"}]})
    assert [h["memory"] for h in either["results"]] == ["Book a table for two"]

    first = await _call(client, "get_all", filters={"user_id": "alice"}, page=1, page_size=2)
    second = await _call(client, "get_all", filters={"user_id": "alice"}, page=2, page_size=2)
    assert first["count"] == second["count"] == 4  # the message, two facts derived from it, the reminder
    assert first["previous"] is None and first["next"].endswith("page=2&page_size=2") and len(first["results"]) == 2
    assert second["next"] is None and second["previous"].endswith("page=1&page_size=2")
    listed = {r["memory"]: r for r in first["results"] + second["results"]}
    assert listed["Remind me to buy oat milk"]["metadata"] == {"topic": "shopping"}

    fact = next(r for r in derived["results"] if "Paris" in r["memory"])
    got = await _call(client, "get", fact["id"])
    assert (got["id"], got["memory"], got["user_id"], got["run_id"]) == (fact["id"], fact["memory"], "alice", None)
    updated = await _call(client, "update", fact["id"], text="The user lives in Lyon")
    assert updated["memory"] == "The user lives in Lyon" and updated["id"] == fact["id"]
    assert (await _call(client, "get", fact["id"]))["memory"] == "The user lives in Lyon"
    history = await _call(client, "history", fact["id"])
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in history] == [
        ("ADD", None, "The user lives in Paris"), ("UPDATE", "The user lives in Paris", "The user lives in Lyon"),
    ]  # fmt: skip
    assert {h["memory_id"] for h in history} == {fact["id"]} and {h["user_id"] for h in history} == {"alice"}

    users = await _call(client, "users")
    assert {(e["type"], e["name"], e["total_memories"]) for e in users["results"]} == {
        ("user", "alice", 4), ("user", "bob", 1), ("agent", "concierge", 1), ("run", "trip-1", 1),
    }  # fmt: skip
    assert users["count"] == 4


async def _deletes_and_reset(mem0: ModuleType, client: Any) -> None:
    reminder = (await _call(client, "search", "oat milk", filters={"user_id": "alice"}, top_k=1))["results"][0]
    assert (await _call(client, "delete", reminder["id"]))["message"] == "Memory deleted successfully!"
    with pytest.raises(mem0.exceptions.MemoryNotFoundError):
        await _call(client, "get", reminder["id"])
    assert (await _call(client, "get_all", filters={"user_id": "alice"}))["count"] == 3

    removed = await _call(client, "delete_all", user_id="alice")
    assert removed["message"] == "Memories deleted successfully!" and removed["deleted"] == 3
    assert (await _call(client, "get_all", filters={"user_id": "alice"}))["results"] == []
    await _call(client, "add", "I collect stamps", user_id="dora", infer=False)
    options = mem0.client.types.DeleteAllMemoryOptions(filters={"user_id": "dora"})
    assert (await _call(client, "delete_all", options))["deleted"] == 1  # filters travel as the str() of a dict

    assert (await _call(client, "reset"))["message"].startswith("Client reset successful")
    assert (await _call(client, "users"))["results"] == []
    assert (await _call(client, "get_all", filters={"agent_id": "concierge"}))["count"] == 0


async def test_a_key_reaches_its_tenant_and_users_only(mem0: ModuleType, server: Server) -> None:
    full = _client(mem0, server, "limits", asynchronous=False)
    alice = _client(mem0, server, "limits_alice", asynchronous=True)
    other = _client(mem0, server, "other", asynchronous=False)
    try:
        bobs = full.add("Bob's locker code is 4411", user_id="bob", agent_id="gym", infer=False)["results"][0]
        mine = (await alice.add("I swim on Tuesdays", user_id="alice", infer=False))["results"][0]
        forbidden = [
            lambda: alice.add("hi", user_id="bob"), lambda: alice.search("code", filters={"user_id": "bob"}),
            lambda: alice.search("code", filters={"agent_id": "gym"}), lambda: alice.get_all(filters={}),
            lambda: alice.delete_all(user_id="bob"), lambda: alice.delete_users(agent_id="gym"),
        ]  # fmt: skip
        for call in forbidden:  # a 403, which mem0's SDK raises as AuthenticationError
            with pytest.raises(mem0.exceptions.AuthenticationError, match="may only act for users alice"):
                await call()
        hidden = [lambda: alice.get(bobs["id"]), lambda: alice.update(bobs["id"], text="0000"),
                  lambda: alice.delete(bobs["id"]), lambda: alice.history(bobs["id"])]  # fmt: skip
        for call in hidden:
            with pytest.raises(mem0.exceptions.MemoryNotFoundError):
                await call()
        seen = await alice.users()
        assert [(e["type"], e["name"]) for e in seen["results"]] == [("user", "alice")]  # not bob, not his agent
        await alice.reset()  # deletes what the key can see: alice
        assert full.get(bobs["id"])["memory"] == "Bob's locker code is 4411"
        with pytest.raises(mem0.exceptions.MemoryNotFoundError):
            full.get(mine["id"])
        with pytest.raises(mem0.exceptions.MemoryNotFoundError):
            other.get(bobs["id"])  # another tenant's id names nothing
        assert other.get_all(filters={"user_id": "bob"})["count"] == 0
        assert other.search("locker", filters={"user_id": "bob"})["results"] == []
    finally:
        for client in (full, alice, other):
            await _close(client)


def test_what_engramdb_cannot_honour_is_refused_by_name(mem0: ModuleType, server: Server) -> None:
    client = mem0.MemoryClient(api_key=server.keys["refusals"], host=server.url)
    try:
        kept = client.add("I like chess", user_id="u", infer=False, metadata={"topic": "games"})["results"][0]
        # any key that is not one of mem0's fields is a metadata key, as in mem0's library
        assert [h["id"] for h in client.search("chess", filters={"user_id": "u", "topic": "games"})["results"]] == [
            kept["id"]
        ]
        assert client.search("chess", filters={"user_id": "u", "topic": "cooking"})["results"] == []
        refused = [
            (lambda: client.add("x", user_id="u", custom_instructions="be brief"), "'custom_instructions'"),
            (lambda: client.search("x", filters={"user_id": "u"}, categories=["hobbies"]), "'categories'"),
            (lambda: client.search("x", filters={"AND": [{"user_id": "u"}, {"app_id": "a"}]}), "'app_id'"),
            (lambda: client.search("x", filters={"user_id": "u", "metadata": {"k": {"icontains": "v"}}}),
             "'icontains'"),
            (lambda: client.search("x", filters={"OR": [{"user_id": "u"}, {"run_id": "*"}]}), "under OR or NOT"),
            (lambda: client.search("x", filters={"user_id": "u", "a key": "v"}), "bad metadata field"),
            (lambda: client.update(kept["id"], expiration_date=None), "'expiration_date'"),
            (lambda: client.delete_all(app_id="a"), "'app_id'"),
            (lambda: client.delete_users(app_id="a"), "'app_id'"),
        ]  # fmt: skip
        for call, named in refused:
            with pytest.raises(mem0.exceptions.ValidationError) as caught:
                call()
            assert named in caught.value.message and '"code":"validation_error"' in caught.value.message
        with pytest.raises(mem0.exceptions.ValidationError, match="Extra inputs are not permitted"):
            client.search("x", filters={"user_id": "u"}, colour="red")  # an option mem0 does not have either
        assert client.get(kept["id"])["memory"] == "I like chess"  # nothing was changed by the refusals
    finally:
        client.client.close()


def test_the_wire_token_header_slashes_and_error_shape(server: Server) -> None:
    """What the SDK relies on, seen on the wire: no redirect for its slashes, its header accepted."""
    headers = {"Authorization": f"Token {server.keys['other']}"}
    with httpx.Client(base_url=server.url, headers=headers, follow_redirects=False) as raw:
        assert raw.get("/v1/ping/").json() == {
            "status": "ok", "message": "pong", "org_id": "other", "project_id": "other", "user_email": None,
        }  # fmt: skip
        added = raw.post("/v3/memories/add/", json={"messages": [{"role": "user", "content": "hello"}],
                                                    "user_id": "u", "infer": False})  # fmt: skip
        memory_id = added.json()["results"][0]["id"]
        for response in (
            raw.get(f"/v1/memories/{memory_id}/"),
            raw.get(f"/v1/memories/{memory_id}/history/"),
            raw.post("/v3/memories/", json={"filters": {"user_id": "u"}}),
            raw.get("/v1/entities/"),
        ):
            assert response.status_code == 200, response.text
        assert raw.get(f"/v1/memories/{memory_id}").json()["memory"] == "hello"  # engramdb's own route, beside it
        missing = raw.get("/v1/memories/01ZZZZZZZZZZZZZZZZZZZZZZZZ/")
        assert missing.status_code == 404 and set(missing.json()["error"]) == {"code", "message"}
        bad = raw.post("/v3/memories/search/", json={"query": "x", "top_k": "5"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        assert raw.get("/v1/ping/", headers={"Authorization": "Token egm_wrong"}).status_code == 401


def test_the_self_hosted_server_routes(server: Server) -> None:
    """mem0's own REST server (``/memories``, ``/search``, ``/reset``): its paths, engramdb's answers."""
    with (
        httpx.Client(base_url=server.url, headers={"X-API-Key": server.keys["selfhosted"]}) as raw,
        httpx.Client(base_url=server.url, headers={"X-API-Key": server.keys["selfhosted_alice"]}) as alice,
    ):
        for user, text in (("alice", "I grow tomatoes"), ("alice", "I keep bees"), ("bob", "I repair bikes")):
            body = {"messages": [{"role": "user", "content": text}], "user_id": user, "run_id": "r1", "infer": False}
            assert raw.post("/memories", json=body).json()["results"][0]["event"] == "ADD"
        listed = raw.get("/memories", params={"user_id": "alice"}).json()
        assert sorted(r["memory"] for r in listed["results"]) == ["I grow tomatoes", "I keep bees"]
        assert raw.get("/memories", params={"run_id": "r1"}).json()["total"] == 3
        assert alice.get("/memories", params={"user_id": "bob"}).status_code == 403
        assert alice.delete("/memories", params={"user_id": "bob"}).status_code == 403
        assert alice.post("/reset").status_code == 403  # the whole tenant is more than alice
        assert raw.delete("/memories", params={"user_id": "alice"}).json()["deleted"] == 2
        assert raw.get("/memories", params={"user_id": "alice"}).json()["results"] == []
        assert raw.delete("/memories").status_code == 400  # no scope: /reset is the way to clear everything
        assert raw.post("/reset").json() == {"message": "All memories reset"}
        assert raw.get("/memories").json()["total"] == 0
