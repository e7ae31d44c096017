"""A user's type checker sees engramdb's real types: the package ships ``py.typed``.

A script using the README's API passes ``mypy --strict``, and a script with wrong calls
fails it at those lines (without ``py.typed`` every engramdb name would be ``Any`` and both
scripts would pass).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

USER_SCRIPT = """
import asyncio

from engramdb import AsyncClient, AsyncMemory, Client, LLMConfig, Memory, MemoryConfig, SearchOptions
from engramdb.models import AddResult, MemoryItem, SearchResult


def library() -> None:
    m = Memory(":memory:", config=MemoryConfig(infer=False, search=SearchOptions(when_weight=0.5)))
    added: AddResult = m.add("I'm vegetarian", user_id="alice", metadata={"topic": "food"})
    found: SearchResult = m.search("what can alice eat?", user_id="alice", limit=5, explain=True)
    text: str = found.results[0].memory
    score: float = found.results[0].score
    page = m.get_all(user_id="alice", filters={"NOT": {"role": "assistant"}})
    items: list[MemoryItem] = page.results
    block: str = m.context("dinner plans", user_id="alice", max_tokens=500).text
    print(added.results[0].id, text, score, items, block, LLMConfig(model="m", base_url="http://localhost:1/v1"))
    m.close()


async def coroutines() -> None:
    async with AsyncMemory(":memory:") as m:
        added: AddResult = await m.add("I live in Berlin", user_id="alice")
        found: SearchResult = await m.search("where do I live?", user_id="alice", limit=3)
        item: MemoryItem = await m.get(added.results[0].id)
        print(found.results, item.memory)


def remote() -> None:
    with Client("http://127.0.0.1:8420", api_key="egm_x") as client:
        found: SearchResult = client.search("where does alice live?", user_id="alice")
        print(found.results, client.get_all(user_id="alice").results)


async def remote_async() -> None:
    async with AsyncClient("http://127.0.0.1:8420") as client:
        found: SearchResult = await client.search("q", user_id="alice")
        print(found.results)


asyncio.run(coroutines())
"""

WRONG_SCRIPT = """
from engramdb import AsyncMemory, Client, Memory


async def wrong() -> None:
    m = Memory(":memory:")
    m.search(42, user_id="alice")
    count: int = m.add("x", user_id="alice")
    found = AsyncMemory(":memory:").search("q", user_id="alice")
    print(found.results)
    Client("http://127.0.0.1:1").delete_all(user_id="alice", hard="yes")
"""


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    api = pytest.importorskip("mypy.api")
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(source))
    out, err, status = api.run(["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"), str(script)])
    return out + err, status


def test_the_readme_api_type_checks_strictly(tmp_path: Path) -> None:
    report, status = _mypy(tmp_path, USER_SCRIPT)
    assert status == 0, report


def test_wrong_calls_are_caught(tmp_path: Path) -> None:
    report, status = _mypy(tmp_path, WRONG_SCRIPT)
    assert status == 1
    flagged = {int(line.split(":")[1]) for line in report.splitlines() if ": error:" in line}
    assert {7, 8, 10, 11} <= flagged, report
