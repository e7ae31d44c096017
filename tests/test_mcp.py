"""The MCP server driven by the official mcp client, over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer

import engramdb
from engramdb import Memory
from engramdb.server import create_key
from engramdb.server.mcp_tools import build_mcp


def _data(result: Any) -> dict[str, Any]:
    """A result's JSON; a failure must be flagged as one (isError) and a success must not."""
    data = json.loads(result.content[0].text)
    assert result.is_error is ("error" in data), result
    return data  # type: ignore[no-any-return]


# what each tool declares it does: (readOnlyHint, destructiveHint, idempotentHint)
HINTS = {
    "add_memory": (False, False, True), "search_memory": (True, None, None), "get_memory": (True, None, None),
    "list_memories": (True, None, None), "update_memory": (False, False, False),
    "delete_memory": (False, True, True), "get_context": (True, None, None),
}  # fmt: skip


async def _exercise(client: Client) -> None:
    assert client.server_info.name == "engramdb" and client.server_info.version == engramdb.__version__
    tools = {t.name: t for t in (await client.list_tools()).tools}
    hints = {name: (t.annotations.read_only_hint, t.annotations.destructive_hint, t.annotations.idempotent_hint)
             for name, t in tools.items() if t.annotations}  # fmt: skip
    assert hints == HINTS and all(t.annotations and t.annotations.open_world_hint is False for t in tools.values())
    refusals = (("search_memory", {"query": "x", "limit": "ten"}, "invalid_request"),
                ("add_memory", {}, "invalid_request"), ("forget_everything", {}, "not_found"))  # fmt: skip
    for name, arguments, code in refusals:
        refused = await client.call_tool(name, arguments)
        assert refused.is_error and _data(refused)["error"]["code"] == code, refused
    assert "limit" in _data(await client.call_tool("search_memory", {"query": "x", "limit": "ten"}))["error"]["message"]
    added = _data(await client.call_tool("add_memory", {"text": "I'm allergic to peanuts"}))
    episode, fact = added["results"]
    assert fact["memory"] == "The user is allergic to peanuts" and episode["memory"] == "I'm allergic to peanuts"
    hits = _data(await client.call_tool("search_memory", {"query": "what am I allergic to?", "limit": 3}))
    assert fact["id"] in [h["id"] for h in hits["results"]]
    before = _data(await client.call_tool("search_memory", {"query": "allergies", "as_of": "2000-01-01T00:00:00Z"}))
    assert before["results"] == []  # nothing was known then
    bad = _data(await client.call_tool("search_memory", {"query": "allergies", "as_of": "soon"}))
    assert bad["error"]["code"] == "validation_error"
    assert _data(await client.call_tool("get_memory", {"memory_id": episode["id"]}))["user_id"] == "alice"
    updated = _data(await client.call_tool("update_memory", {"memory_id": episode["id"], "text": "peanuts: no"}))
    assert updated["memory"] == "peanuts: no"
    page = _data(await client.call_tool("list_memories", {"limit": 10}))
    assert page["total"] == 2
    context = _data(await client.call_tool("get_context", {"query": "what can I eat?", "max_tokens": 80}))
    assert context["tokens"] <= 80 and "peanuts" in context["text"]
    local = {"query": "what can I eat?", "reference_date": "2030-01-01T09:00:00+09:00"}
    assert _data(await client.call_tool("get_context", local))["items"][0]["when"].endswith("+09:00")
    late = _data(await client.call_tool("search_memory", {"query": "x", "reference_date": "late"}))
    assert late["error"]["code"] == "validation_error"
    refused = _data(await client.call_tool("search_memory", {"query": "x", "user_id": "bob"}))
    assert refused["error"]["code"] == "validation_error"  # the scope is fixed by configuration
    assert _data(await client.call_tool("delete_memory", {"memory_id": fact["id"]}))["deleted"] == 1
    missing = _data(await client.call_tool("get_memory", {"memory_id": "01NOPE"}))
    assert missing["error"]["code"] == "not_found"
    for text in ("I live in Paris", "I moved to Berlin"):
        await client.call_tool("add_memory", {"text": text})
    where = {"query": "where does the user live?", "limit": 10}
    now = [h["memory"] for h in _data(await client.call_tool("search_memory", where))["results"]]
    ever = [
        h["memory"]
        for h in _data(await client.call_tool("search_memory", {**where, "include_history": True}))["results"]
    ]
    assert "The user lives in Berlin" in now and "The user lives in Paris" not in now
    assert "The user lives in Paris" in ever


def test_mcp_over_stdio(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "engramdb", "mcp", "--store", f"sqlite:///{tmp_path / 'mcp.db'}", "--user", "alice"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )

    async def main() -> None:
        async with Client(params) as client:
            await _exercise(client)

    asyncio.run(main())


def start_mcp_http(store: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """``engramdb mcp --transport http`` as a process; its URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engramdb", "mcp", "--transport", "http", "--port", str(port), "--store", store, *extra],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, url


async def call_with_key(url: str, headers: dict[str, str], body: Any) -> None:
    """Run ``body(client)`` with the official client, sending ``headers`` on every request."""
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300))
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        await body(client)


def test_mcp_over_streamable_http(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mcp.db'}"
    with Memory(store) as m:
        key = create_key(m.store, "default", user_ids=["alice"])[0]
    proc, url = start_mcp_http(store, "--user", "alice")
    try:
        asyncio.run(call_with_key(url, {"Authorization": f"Bearer {key}"}, _exercise))
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_unexpected_fault_is_a_tool_error_without_its_traceback(tmp_path: Path) -> None:
    """A crash inside a tool (here one added to the real server) reaches the client as
    internal_error; what went wrong stays in the server's log."""

    async def broken() -> str:
        raise RuntimeError("secret detail of the fault")

    async def main(server: MCPServer[Any]) -> None:
        async with Client(server) as client:
            result = await client.call_tool("broken", {})
            assert result.is_error and _data(result)["error"]["code"] == "internal_error"
            assert "secret detail" not in result.content[0].text
            ok = await client.call_tool("list_memories", {})
            assert not ok.is_error and _data(ok)["total"] == 0

    with Memory(f"sqlite:///{tmp_path / 'mcp.db'}") as memory:
        server = build_mcp(memory, user_id="alice")
        server.tool()(broken)
        asyncio.run(main(server))
