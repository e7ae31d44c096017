"""engramdb migrate: SQLite → PostgreSQL → SQLite, everything kept and verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engramdb import Memory
from engramdb.embedders import Embedder
from engramdb.server import create_key
from engramdb.server.auth import hash_secret


def _migrate(source: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engramdb", "migrate", "--from", source, "--to", target, "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip


def _fill(memory: Memory) -> dict[str, str]:
    memory.add("I live in Paris", user_id="alice")
    memory.add("I moved to Berlin", user_id="alice", metadata={"source": "chat", "n": [1, 2]})
    memory.add([{"role": "user", "name": "Bob", "content": "I'm allergic to cats"}], user_id="bob", session_id="s1")
    other = memory.for_tenant("acme").add("Acme's quarterly plan is secret", user_id="carol").results[0].id
    gone = memory.add("Delete me later", user_id="alice").results[0].id
    memory.delete(gone)
    secret, _ = create_key(memory.store, "acme", user_ids=["carol"])
    return {"other": other, "secret": secret}


def test_a_store_moves_to_postgres_and_back_whole(
    tmp_path: Path, postgres_url: str, default_embedder: Embedder
) -> None:
    first = f"sqlite:///{tmp_path / 'first.db'}"
    with Memory(first, embedder=default_embedder) as m:
        facts = _fill(m)
        before = [h.memory for h in m.search("where does alice live", user_id="alice").results]
        history = [(h.event, h.new_memory) for h in m.history(m.get_all(user_id="alice").results[0].id)]

    there = _migrate(first, postgres_url)
    assert there.returncode == 0, there.stderr
    report = json.loads(there.stdout)
    rows = {t["table"]: t["target_rows"] for t in report["tables"]}
    assert rows["memories"] >= 6 and rows["history"] > rows["memories"] and rows["api_keys"] == 1
    assert all(t["source_sha256"] == t["target_sha256"] for t in report["tables"])

    back = f"sqlite:///{tmp_path / 'back.db'}"
    again = _migrate(postgres_url, back)
    assert again.returncode == 0, again.stderr
    assert [t["target_sha256"] for t in json.loads(again.stdout)["tables"]] == [
        t["source_sha256"] for t in report["tables"]
    ]  # the round trip is byte-for-byte the same data (read before anything touched the copies)

    with Memory(postgres_url, embedder=default_embedder) as pg:
        assert [h.memory for h in pg.search("where does alice live", user_id="alice").results] == before
        assert [(h.event, h.new_memory) for h in pg.history(pg.get_all(user_id="alice").results[0].id)] == history
        assert pg.for_tenant("acme").get(facts["other"]).memory == "Acme's quarterly plan is secret"
        assert pg.get_all(user_id="carol").total == 0  # the tenant boundary came along
        assert pg.store.find_key(hash_secret(facts["secret"]))

    with Memory(back, embedder=default_embedder) as m:
        assert [h.memory for h in m.search("where does alice live", user_id="alice").results] == before


def test_migrate_refuses_a_target_that_is_not_empty(tmp_path: Path, default_embedder: Embedder) -> None:
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    for url in (a, b):
        with Memory(url, embedder=default_embedder) as m:
            m.add("something", user_id="u")
    result = _migrate(a, b)
    assert result.returncode == 4
    assert "not empty" in result.stderr


def test_migrate_refuses_the_same_store_and_an_unknown_scheme(tmp_path: Path) -> None:
    a = f"sqlite:///{tmp_path / 'a.db'}"
    same = _migrate(a, a)
    assert same.returncode == 4 and "same store" in same.stderr
    unknown = _migrate(a, "mysql://db/x")
    assert unknown.returncode == 4 and "unsupported store URL" in unknown.stderr
