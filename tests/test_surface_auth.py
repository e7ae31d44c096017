"""``engramdb proxy`` and ``engramdb mcp --transport http`` take the same API keys as ``serve``.

Real processes: the proxy in front of the scripted OpenAI server, driven by the openai client;
the MCP server driven by the official mcp client; the CLI refusing an open bind without keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from mcp.client import Client
from test_mcp import call_with_key, start_mcp_http
from test_proxy import _start_proxy, _stop

from engramdb import Memory, testing
from engramdb.server import create_key
from engramdb.testing import Reply, ScriptedOpenAIServer

HELLO = [{"role": "user", "content": "I live in Lisbon"}]


def _keys(store: str, **specs: tuple[str, list[str] | None]) -> dict[str, str]:
    with Memory(store) as m:
        return {name: create_key(m.store, tenant, user_ids=users)[0] for name, (tenant, users) in specs.items()}


def _episodes(store: str, tenant: str, user: str) -> list[str]:
    with Memory(store) as m:
        return [i.memory for i in m.for_tenant(tenant).get_all(user_id=user, kind="episode").results]


# --- the proxy ----------------------------------------------------------------------------


@dataclass
class Proxy:
    url: str
    store: str
    keys: dict[str, str]
    upstream: ScriptedOpenAIServer
    headers: list[dict[str, str]]  # what the upstream received, lower-case names

    def client(self, key: str | None, api_key: str = "sk-upstream") -> openai.OpenAI:
        extra = {"X-API-Key": self.keys.get(key, key)} if key else None
        return openai.OpenAI(base_url=self.url, api_key=api_key, max_retries=0, default_headers=extra)


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    store = f"sqlite:///{tmp_path / 'proxy.db'}"
    keys = _keys(store, alice=("acme", ["alice"]), acme=("acme", None))
    with Memory(store) as m:  # the same user in another tenant: never the proxy's to show
        m.add("I live in Paris", user_id="alice", infer=False)
    seen: list[dict[str, str]] = []
    plain = testing._handler

    def recording(server: ScriptedOpenAIServer) -> Any:
        class Handler(plain(server)):  # type: ignore[misc]
            def do_POST(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                super().do_POST()

        return Handler

    monkeypatch.setattr(testing, "_handler", recording)
    with ScriptedOpenAIServer() as upstream:
        proc, url = _start_proxy(upstream.base_url, store)
        try:
            yield Proxy(url, store, keys, upstream, seen)
        finally:
            _stop(proc)


def test_the_proxy_needs_a_key(proxy: Proxy) -> None:
    for key in (None, "egm_not-a-key"):
        with proxy.client(key) as client:
            with pytest.raises(openai.AuthenticationError) as refused:
                client.chat.completions.create(model="m", user="alice", messages=HELLO)
            assert refused.value.status_code == 401
            with pytest.raises(openai.AuthenticationError):
                client.models.list()  # every route, not only chat
    bearer = httpx.post(proxy.url + "/chat/completions", json={"model": "m", "messages": HELLO},
                        headers={"Authorization": "Bearer egm_not-a-key"}, timeout=30)  # fmt: skip
    assert bearer.status_code == 401 and bearer.json()["error"]["code"] == "unauthorized"
    assert proxy.upstream.requests == [] and _episodes(proxy.store, "acme", "alice") == []


def test_the_proxy_acts_in_the_keys_tenant_for_its_users_only(proxy: Proxy) -> None:
    proxy.upstream.script(Reply(content="Lisbon, noted."), Reply(content="Sunny."))
    with proxy.client("alice") as client:
        assert client.chat.completions.create(model="m", user="alice", messages=HELLO).choices[0].message.content
        for named in ({"user": "bob"}, {"extra_headers": {"X-Engram-User": "bob"}}):
            with pytest.raises(openai.PermissionDeniedError) as refused:
                client.chat.completions.create(model="m", messages=HELLO, **named)  # type: ignore[call-overload]
            assert refused.value.status_code == 403
    deadline = time.monotonic() + 10
    while len(_episodes(proxy.store, "acme", "alice")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _episodes(proxy.store, "acme", "alice") == ["I live in Lisbon", "Lisbon, noted."]
    assert _episodes(proxy.store, "acme", "bob") == [] and len(proxy.upstream.requests) == 1
    with proxy.client("alice") as client:
        client.chat.completions.create(model="m", user="alice", messages=[{"role": "user", "content": "Weather?"}])
    context = proxy.upstream.requests[-1]["body"]["messages"][0]["content"]
    assert "Lisbon" in context and "Paris" not in context  # the default tenant's alice stays out
    with proxy.client("acme") as client:  # an unrestricted key acts for any user of its tenant
        proxy.upstream.script(Reply(content="Hi bob."))
        assert client.chat.completions.create(model="m", user="bob", messages=HELLO).choices[0].message.content


def test_the_upstream_gets_the_callers_authorization_and_never_the_engramdb_key(proxy: Proxy) -> None:
    proxy.upstream.script(Reply(content="one"), Reply(content="two"))
    with proxy.client("alice") as client:
        client.chat.completions.create(model="m", user="alice", messages=HELLO)
    assert proxy.headers[-1]["authorization"] == "Bearer sk-upstream" and "x-api-key" not in proxy.headers[-1]
    with proxy.client(None, api_key=proxy.keys["alice"]) as client:  # the key as the bearer token
        client.chat.completions.create(model="m", user="alice", messages=HELLO)
    assert "authorization" not in proxy.headers[-1] and "x-api-key" not in proxy.headers[-1]
    assert not any(proxy.keys["alice"] in json.dumps(h) for h in proxy.headers)


def test_the_proxy_without_auth_is_for_loopback_callers(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'open.db'}"
    with ScriptedOpenAIServer() as upstream:
        upstream.script(Reply(content="Noted."))
        proc, url = _start_proxy(upstream.base_url, store, "--no-auth")
        try:
            with openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0) as client:
                assert client.chat.completions.create(model="m", user="alice", messages=HELLO).choices
        finally:
            _stop(proc)


# --- MCP over HTTP --------------------------------------------------------------------------


def _tool(result: Any) -> tuple[bool, dict[str, Any]]:
    return bool(result.is_error), json.loads(result.content[0].text)


@dataclass
class Mcp:
    url: str
    store: str
    keys: dict[str, str]
    ids: dict[str, str]  # bob's memory in acme, alice's in the default tenant


@pytest.fixture
def mcp_server(tmp_path: Path) -> Iterator[Mcp]:
    """An MCP server with no --user: the key alone says who the tools act for."""
    store = f"sqlite:///{tmp_path / 'mcp.db'}"
    keys = _keys(store, alice=("acme", ["alice"]), pair=("acme", ["alice", "bob"]), acme=("acme", None))
    with Memory(store) as m:
        ids = {
            "bob": m.for_tenant("acme").add("bob likes tea", user_id="bob", infer=False).results[0].id,
            "default": m.add("alice lives in Paris", user_id="alice", infer=False).results[0].id,
        }
    proc, url = start_mcp_http(store)
    try:
        yield Mcp(url, store, keys, ids)
    finally:
        proc.terminate()
        proc.wait(10)


def test_mcp_over_http_needs_a_key(mcp_server: Mcp) -> None:
    url, keys = mcp_server.url, mcp_server.keys
    hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer egm_not-a-key"}, {"X-API-Key": "egm_not-a-key"}):
        refused = httpx.post(url, json=hello, headers={**accept, **headers}, timeout=30)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"

    async def without_key() -> None:
        async with Client(url) as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the SDK's own error for a 401; what matters is no session
        asyncio.run(without_key())

    async def listed(client: Client) -> None:
        assert len((await client.list_tools()).tools) == 7

    asyncio.run(call_with_key(url, {"X-API-Key": keys["acme"]}, listed))


def test_mcp_tools_act_for_the_keys_tenant_and_users(mcp_server: Mcp) -> None:
    url, store, keys, ids = mcp_server.url, mcp_server.store, mcp_server.keys, mcp_server.ids

    async def as_alice(client: Client) -> None:
        failed, added = _tool(await client.call_tool("add_memory", {"text": "I live in Lisbon"}))
        assert not failed and added["results"][0]["memory"] == "I live in Lisbon"
        failed, page = _tool(await client.call_tool("list_memories", {}))  # the key's one user, bound like --user
        assert not failed and {i["user_id"] for i in page["results"]} == {"alice"} and page["total"] == 2
        for call, args in [("search_memory", {"query": "tea", "user_id": "bob"}),
                           ("list_memories", {"user_id": "bob"}),
                           ("add_memory", {"text": "bob hates tea", "user_id": "bob"}),
                           ("get_context", {"query": "tea", "user_id": "bob"})]:  # fmt: skip
            failed, error = _tool(await client.call_tool(call, args))
            assert failed and error["error"]["code"] == "forbidden", call
        for call, args in [("get_memory", {}), ("delete_memory", {}), ("update_memory", {"text": "x"})]:
            for other in ("bob", "default"):  # another user's memory, another tenant's: not found
                failed, error = _tool(await client.call_tool(call, {"memory_id": ids[other], **args}))
                assert failed and error["error"]["code"] == "not_found", (call, other)
        failed, found = _tool(await client.call_tool("search_memory", {"query": "where does alice live?"}))
        found_ = [h["memory"] for h in found["results"]]
        assert not failed and any("Lisbon" in h for h in found_) and not any("Paris" in h for h in found_)

    async def as_pair(client: Client) -> None:
        failed, error = _tool(await client.call_tool("list_memories", {}))  # two users: the call must name one
        assert failed and error["error"]["code"] == "forbidden"
        failed, page = _tool(await client.call_tool("list_memories", {"user_id": "bob"}))
        assert not failed and [i["memory"] for i in page["results"]] == ["bob likes tea"]

    async def as_tenant(client: Client) -> None:
        failed, item = _tool(await client.call_tool("get_memory", {"memory_id": ids["bob"]}))
        assert not failed and item["user_id"] == "bob"

    asyncio.run(call_with_key(url, {"Authorization": f"Bearer {keys['alice']}"}, as_alice))
    asyncio.run(call_with_key(url, {"X-API-Key": keys["pair"]}, as_pair))
    asyncio.run(call_with_key(url, {"Authorization": f"Token {keys['acme']}"}, as_tenant))  # mem0's spelling
    with Memory(store) as m:  # nothing of bob's or of the default tenant changed
        assert m.for_tenant("acme").get(ids["bob"]).memory == "bob likes tea"
        assert m.get(ids["default"]).memory == "alice lives in Paris"
        assert [i.memory for i in m.get_all(user_id="alice").results] == ["alice lives in Paris"]
        assert "I live in Lisbon" in [i.memory for i in m.for_tenant("acme").get_all(user_id="alice").results]


def test_mcp_over_http_without_auth_is_for_loopback_callers(tmp_path: Path) -> None:
    proc, url = start_mcp_http(f"sqlite:///{tmp_path / 'open.db'}", "--no-auth", "--user", "alice")

    async def main() -> None:
        async with Client(url) as client:  # no key: the flags alone fix the scope, as over stdio
            failed, added = _tool(await client.call_tool("add_memory", {"text": "I live in Lisbon"}))
            assert not failed and added["results"]
            failed, error = _tool(await client.call_tool("list_memories", {"user_id": "bob"}))
            assert failed and error["error"]["code"] == "validation_error"

    try:
        asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(10)


# --- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["proxy", "--upstream", "http://127.0.0.1:9/v1"], ["mcp", "--transport", "http"], ["serve"]],
    ids=["proxy", "mcp", "serve"],
)
def test_no_auth_is_refused_off_loopback(command: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engramdb", *command, "--no-auth", "--host", "0.0.0.0",
         "--store", f"sqlite:///{tmp_path / 'x.db'}"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 2 and "--no-auth serves only on loopback" in result.stderr
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened
