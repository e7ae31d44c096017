"""The README's Python blocks run, in order, as one script: the documentation cannot rot.

The blocks are written for a reader's machine; the few addresses in them that name a
service (the LLM server, PostgreSQL, engramdb's server and its key) are pointed at real
ones started here: the scripted OpenAI-compatible server, the test PostgreSQL, a real
engramdb server on loopback. Nothing else is changed, and the default file of
``Memory()`` lands in a throwaway data directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live import serving

from engramdb import Memory, MemoryConfig
from engramdb.embedders import Embedder
from engramdb.testing import Reply, ScriptedOpenAIServer

README = Path(__file__).parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LLM_URL = "http://localhost:11434/v1"
POSTGRES_URL = "postgresql://user:pass@db.internal/memory"
SERVER_URL, SERVER_KEY = "http://127.0.0.1:8420", "egm_..."


def blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def _llm_reply(body: dict[str, Any]) -> Reply:
    """A model that finds nothing to extract, keeps every candidate and merges by joining."""
    asked = json.loads(body["messages"][-1]["content"])
    texts = asked.get("memories")
    if isinstance(texts, list) and all(isinstance(t, str) for t in texts):
        return Reply(content=json.dumps({"text": " ".join(texts)}))  # a merge
    return Reply(content=json.dumps({"memories": [], "decisions": []}))


@pytest.fixture
def server_url(tmp_path: Path, default_embedder: Embedder) -> Iterator[tuple[str, str]]:
    """engramdb's REST server on a real loopback socket, with one key."""
    with Memory(f"sqlite:///{tmp_path / 'served.db'}", embedder=default_embedder,
                config=MemoryConfig(infer=False)) as memory, serving(memory) as (url, secret):  # fmt: skip
        yield url, secret


def test_the_readme_has_the_blocks_this_test_knows() -> None:
    text = "\n".join(blocks())
    assert len(blocks()) >= 7
    for address in (LLM_URL, POSTGRES_URL, SERVER_URL, SERVER_KEY):
        assert address in text, address


def test_every_python_block_of_the_readme_runs(tmp_path: Path, postgres_url: str, server_url: tuple[str, str]) -> None:
    url, key = server_url
    with ScriptedOpenAIServer(responder=_llm_reply) as llm:
        joined = "&" if "?" in postgres_url else "?"  # the test server's URL may carry options of its own
        script = "\n".join(blocks()).replace(POSTGRES_URL + "?", postgres_url + joined)
        for placeholder, real in ((LLM_URL, llm.base_url), (POSTGRES_URL, postgres_url), (SERVER_URL, url),
                                  (SERVER_KEY, key)):  # fmt: skip
            script = script.replace(placeholder, real)
        (tmp_path / "readme.py").write_text(script, encoding="utf-8")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
        run = subprocess.run([sys.executable, "readme.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        assert any(r["path"] == "/v1/chat/completions" for r in llm.requests)  # the LLM block reached the LLM
