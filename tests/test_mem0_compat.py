"""The mem0 drop-in: mem0's configuration, signatures and result shapes on engramdb."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engramdb import Memory as Engram
from engramdb.compat.mem0 import Memory, map_config
from engramdb.testing import Reply, ScriptedOpenAIServer


def test_mem0_configuration_maps_to_engramdb() -> None:
    config = map_config({
        "vector_store": {"provider": "pgvector", "config": {"user": "mem", "password": "pw", "host": "db",
                                                            "port": 5433, "dbname": "memories"}},
        "embedder": {"provider": "ollama", "config": {"model": "nomic-embed-text",
                                                      "ollama_base_url": "http://gpu:11434"}},
        "llm": {"provider": "ollama", "config": {"model": "llama3.1", "temperature": 0.1}},
        "version": "v1.1",
    })  # fmt: skip
    assert config.store == "postgresql://mem:pw@db:5433/memories"
    assert config.embedder == "ollama:nomic-embed-text"
    assert config.embedder_options.base_url == "http://gpu:11434/v1"
    assert config.llm is not None and config.llm.model == "llama3.1"
    assert config.llm.base_url == "http://localhost:11434/v1" and config.llm.temperature == 0.1
    plain = map_config({"vector_store": {"provider": "qdrant", "config": {"collection_name": "x"}}})
    assert plain.store is None and plain.llm is None and plain.embedder is None  # offline defaults


def test_mem0_code_runs_unchanged(tmp_path: Path) -> None:
    m = Memory.from_config({"engramdb": {"store": f"sqlite:///{tmp_path / 'm.db'}"}})
    added = m.add([{"role": "user", "content": "I'm vegetarian and I live in Paris"}], user_id="alice")
    assert {r["memory"] for r in added["results"]} == {"The user is vegetarian", "The user lives in Paris"}
    assert all(r["event"] == "ADD" for r in added["results"])
    raw = m.add("Remind me to buy oat milk", user_id="alice", infer=False, metadata={"topic": "shopping"})
    assert raw["results"][0]["event"] == "ADD"

    found = m.search("what does alice eat?", filters={"user_id": "alice"}, top_k=2)  # mem0 2.x
    assert len(found["results"]) == 2 and {"id", "memory", "score", "user_id", "created_at"} <= set(found["results"][0])
    assert m.search("diet", user_id="alice", limit=1)["results"]  # mem0 1.x
    shopping = m.get_all(filters={"user_id": "alice", "topic": "shopping"})["results"]
    assert [r["memory"] for r in shopping] == ["Remind me to buy oat milk"]
    assert shopping[0]["metadata"] == {"topic": "shopping"}

    fact = next(r for r in added["results"] if "Paris" in r["memory"])
    assert m.update(fact["id"], data="The user lives in Lyon") == {"message": "Memory updated successfully!"}
    assert m.get(fact["id"])["memory"] == "The user lives in Lyon"
    assert [h["event"] for h in m.history(fact["id"])] == ["ADD", "UPDATE"]
    assert m.delete(fact["id"]) == {"message": "Memory deleted successfully!"}
    assert m.get(fact["id"]) is None
    assert m.delete_all(user_id="alice") == {"message": "Memories deleted successfully!"}
    assert m.get_all(user_id="alice")["results"] == []
    m.reset()
    m.close()


def test_mem0_llm_configuration_drives_extraction(tmp_path: Path) -> None:
    with ScriptedOpenAIServer() as server:
        server.script(Reply(content=json.dumps({"memories": [
            {"text": "Alice plays the cello", "kind": "fact", "subject": "Alice", "slot": None,
             "occurred_at": None, "sources": [0], "retraction": False}]})))  # fmt: skip
        m = Memory.from_config({
            "llm": {"provider": "openai", "config": {"model": "gpt-4.1-nano", "api_key": "k",
                                                     "openai_base_url": server.base_url}},
            "engramdb": {"store": f"sqlite:///{tmp_path / 'llm.db'}"},
        })  # fmt: skip
        result = m.add("I play the cello on weekends", user_id="alice")
        assert [r["memory"] for r in result["results"]] == ["Alice plays the cello"]
        assert server.requests[-1]["body"]["model"] == "gpt-4.1-nano"
        m.close()


def _import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engramdb", "import", *args, "--json"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip


def test_import_from_a_mem0_history_database_and_export(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    with sqlite3.connect(history) as conn:
        conn.execute(
            "CREATE TABLE history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, new_memory TEXT, "
            "event TEXT, created_at DATETIME, updated_at DATETIME, is_deleted INTEGER, actor_id TEXT, role TEXT)"
        )
        conn.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)", [
            ("h1", "3f1c9a52-0000-4000-8000-000000000001", None, "Likes jazz", "ADD", "2025-01-01T10:00:00", None, 0),
            ("h2", "3f1c9a52-0000-4000-8000-000000000001", "Likes jazz", "Likes jazz and blues", "UPDATE",
             "2025-02-01T10:00:00", "2025-02-01T10:00:00", 0),
            ("h3", "3f1c9a52-0000-4000-8000-000000000002", None, "Has a cat", "ADD", "2025-01-02T10:00:00", None, 0),
            ("h4", "3f1c9a52-0000-4000-8000-000000000002", "Has a cat", None, "DELETE", "2025-03-01T10:00:00",
             None, 1),
        ])  # fmt: skip
    store = f"sqlite:///{tmp_path / 'into.db'}"
    refused = _import(str(history), "--from-mem0", "--store", store)
    assert refused.returncode == 2 and "whose memories" in refused.stderr
    done = _import(str(history), "--from-mem0", "--user", "alice", "--store", store)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"added": 1, "skipped": 0}
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"results": [
        {"id": "3f1c9a52-0000-4000-8000-00000000000a", "memory": "Works at a bakery", "user_id": "bob",
         "metadata": {"category": "work"}, "created_at": "2025-04-01T08:00:00+00:00"}]}))  # fmt: skip
    assert _import(str(export), "--from-mem0", "--store", store).returncode == 0
    with Engram(store) as m:
        item = m.get("3f1c9a52-0000-4000-8000-000000000001")  # mem0's ids are kept
        assert item.memory == "Likes jazz and blues" and item.user_id == "alice" and item.kind == "fact"
        assert m.search("music", user_id="alice").results[0].memory == "Likes jazz and blues"
        assert m.get_all(user_id="bob").results[0].metadata == {"category": "work"}


@pytest.mark.parametrize("content", ["not json", json.dumps({"results": [{"no_memory": 1}]})])
def test_a_bad_mem0_export_is_refused(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = _import(str(bad), "--from-mem0", "--store", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 2 and "error" in result.stderr


def test_a_mem0_configuration_engramdb_cannot_honour_is_refused() -> None:
    from engramdb import ValidationError

    with pytest.raises(ValidationError, match="no engramdb counterpart"):
        map_config({"embedder": {"provider": "vertexai", "config": {"model": "x"}}})
    with pytest.raises(ValidationError):
        map_config("not a dict")  # type: ignore[arg-type]
