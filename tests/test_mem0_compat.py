"""The mem0 drop-in: mem0's configuration, signatures and result shapes on engramdb."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import warnings
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import pytest

from engramdb import Memory as Engram
from engramdb import ValidationError
from engramdb.compat.mem0 import AsyncMemory, Mem0CompatWarning, Memory, map_config
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
    assert plain.tenant_id == "x"  # a collection is a tenant: collections in one file never meet


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
        assert m.search("music", user_id="alice", threshold=0).results[0].memory == "Likes jazz and blues"
        assert m.get_all(user_id="bob").results[0].metadata == {"category": "work"}


@pytest.mark.parametrize("content", ["not json", json.dumps({"results": [{"no_memory": 1}]})])
def test_a_bad_mem0_export_is_refused(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = _import(str(bad), "--from-mem0", "--store", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 2 and "error" in result.stderr


def test_a_mem0_configuration_engramdb_cannot_honour_is_refused() -> None:
    with pytest.raises(ValidationError, match="no engramdb counterpart"):
        map_config({"embedder": {"provider": "vertexai", "config": {"model": "x"}}})
    with pytest.raises(ValidationError):
        map_config("not a dict")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="llm provider 'anthropic' has no engramdb counterpart"):
        map_config({"llm": {"provider": "anthropic", "config": {"model": "claude"}}})  # would have called OpenAI
    with pytest.raises(ValidationError, match="tenant_id"):
        map_config({"vector_store": {"provider": "qdrant", "config": {"collection_name": ""}}})


def _mem0_history_db(path: Path) -> None:
    """A history database as mem0 writes it (its table, none of engramdb's)."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE history (id TEXT PRIMARY KEY, memory_id TEXT, old_memory TEXT, new_memory TEXT, "
                     "event TEXT, created_at DATETIME, updated_at DATETIME, is_deleted INTEGER)")  # fmt: skip
        conn.execute("INSERT INTO history VALUES ('h1', 'm1', NULL, 'Likes jazz', 'ADD', '2025-01-01', NULL, 0)")


def _stored_in(path: Path, tenant: str = "default") -> list[str]:
    with Engram(f"sqlite:///{path}") as m:
        return sorted(i.memory for i in m.for_tenant(tenant).get_all(user_id="alice").results)


def test_the_paths_in_a_mem0_configuration_are_where_memories_go(tmp_path: Path) -> None:
    qdrant = tmp_path / "qdrant"  # mem0's local qdrant, chroma and faiss keep their files in a directory
    with Memory.from_config({"vector_store": {"provider": "qdrant", "config": {"path": str(qdrant)}}}) as m:
        m.add("I play the oboe", user_id="alice", infer=False)
        assert m.engram.store.location == str(qdrant / "engramdb.db")
    assert _stored_in(qdrant / "engramdb.db") == ["I play the oboe"]

    file = tmp_path / "chosen.sqlite"  # a path that names a file is the file
    with Memory({"vector_store": {"provider": "chroma", "config": {"path": str(file)}}}) as m:
        m.add("I play the harp", user_id="alice", infer=False)
    assert _stored_in(file) == ["I play the harp"]

    history = tmp_path / "history" / "history.db"  # no vector store path: history_db_path is the file
    history.parent.mkdir()
    with Memory.from_config({"history_db_path": str(history)}) as m:
        m.add("I play the lute", user_id="alice", infer=False)
    assert _stored_in(history) == ["I play the lute"]

    both = {"vector_store": {"provider": "qdrant", "config": {"path": str(tmp_path / "v"), "collection_name": "c"}},
            "history_db_path": str(tmp_path / "h.db")}  # fmt: skip
    with pytest.warns(Mem0CompatWarning, match="history_db_path .* same SQLite file"):
        m = Memory.from_config(both)
    with m:
        m.add("I play the viola", user_id="alice", infer=False)
    assert _stored_in(tmp_path / "v" / "engramdb.db", tenant="c") == ["I play the viola"]
    assert not (tmp_path / "h.db").exists()


def test_mem0s_own_history_database_is_left_untouched(tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    _mem0_history_db(history)
    before = history.read_bytes()
    with pytest.warns(Mem0CompatWarning, match="mem0's own history database") as caught:
        m = Memory.from_config({"history_db_path": str(history)})
    assert caught[0].filename == __file__  # the warning points at the caller's line, not at engramdb's
    with m:
        m.add("I play the sitar", user_id="alice", infer=False)
    assert history.read_bytes() == before
    assert _stored_in(tmp_path / "history-engramdb.db") == ["I play the sitar"]


def test_collections_in_one_directory_never_meet(tmp_path: Path) -> None:
    def config(collection: str) -> dict[str, object]:
        return {
            "vector_store": {"provider": "qdrant", "config": {"path": str(tmp_path), "collection_name": collection}}
        }

    with Memory.from_config(config("work")) as work, Memory.from_config(config("home")) as home:
        work.add("The deadline is Friday", user_id="alice", infer=False)
        assert home.search("deadline", filters={"user_id": "alice"})["results"] == []
        assert [r["memory"] for r in work.search("deadline", filters={"user_id": "alice"})["results"]] == [
            "The deadline is Friday"
        ]


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"graph_store": {"provider": "neo4j", "config": {"url": "bolt://db:7687"}}}, "'graph_store'"),
        ({"reranker": {"provider": "cohere"}}, "'reranker'"),
        ({"custom_fact_extraction_prompt": "Extract facts"}, "'custom_fact_extraction_prompt'"),
        ({"vector_stor": {"provider": "qdrant"}}, "configuration key 'vector_stor'"),
        ({"vector_store": {"provider": "qdrant", "config": {"url": "http://qdrant:6333"}}}, "vector_store.config.url"),
        ({"vector_store": {"provider": "pgvector", "config": {"dbname": "m", "hnsw": True}}},
         "vector_store.config.hnsw"),
        ({"llm": {"provider": "openai", "config": {"model": "gpt-4.1-nano", "max_tokens": 500}}},
         "llm.config.max_tokens"),
        ({"embedder": {"provider": "openai", "config": {"model": "m", "http_client_proxies": "x"}}},
         "embedder.config.http_client_proxies"),
        ({"version": "v1.0"}, "version 'v1.0'"),
    ],
)  # fmt: skip
def test_what_a_configuration_asks_for_and_engramdb_ignores_is_named(config: dict[str, object], named: str) -> None:
    with pytest.warns(Mem0CompatWarning, match=named.replace(".", "[.]")) as caught:
        map_config(config)
    assert all(w.filename == __file__ for w in caught)


def test_call_arguments_engramdb_ignores_are_named(tmp_path: Path) -> None:
    with Memory.from_config({"engramdb": {"store": f"sqlite:///{tmp_path / 'a.db'}"}}) as m:
        with pytest.warns(Mem0CompatWarning, match=r"add\(prompt=\.\.\.\)"):
            added = m.add("I knit scarves", user_id="alice", infer=False, prompt="Extract hobbies")
        memory_id = added["results"][0]["id"]
        with pytest.warns(Mem0CompatWarning, match=r"search\(colour=\.\.\.\)"):
            m.search("knit", filters={"user_id": "alice"}, colour="red")
        with pytest.warns(Mem0CompatWarning, match=r"search\(rerank=True\)"):
            m.search("knit", filters={"user_id": "alice"}, rerank=True)
        with pytest.warns(Mem0CompatWarning, match=r"update\(expiration_date=\.\.\.\)"):
            m.update(memory_id, text="I knit hats", expiration_date="2030-01-01")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # what mem0 2.x and 1.x both take warns about nothing
            assert m.get(memory_id)["memory"] == "I knit hats"
            assert m.search("hats", user_id="alice", limit=1)["results"][0]["id"] == memory_id
            assert m.get_all(filters={"AND": [{"user_id": "alice"}, {"run_id": "*"}]})["results"][0]["id"] == memory_id


def test_times_of_an_add_are_kept(tmp_path: Path) -> None:
    with Memory.from_config({"engramdb": {"store": f"sqlite:///{tmp_path / 't.db'}"}}) as m:
        said = m.add("We met in Porto", user_id="alice", infer=False, timestamp=1_700_000_000)["results"][0]["id"]
        assert m.engram.get(said).occurred_at is not None and m.engram.get(said).occurred_at.year == 2023
        last_day = (date.today() - timedelta(days=2)).isoformat()
        gone = m.add("The sale ends soon", user_id="alice", infer=False, expiration_date=last_day)["results"][0]
        recalled = m.search("the sale ends", filters={"user_id": "alice"})["results"]
        assert [r["memory"] for r in recalled] == ["We met in Porto"]  # expired: out of recall
        kept = m.get_all(filters={"user_id": "alice"}, show_expired=True)["results"]
        assert {r["id"]: r["expiration_date"] for r in kept}[gone["id"]] == last_day


async def test_async_memory_awaits_the_same_methods(tmp_path: Path) -> None:
    qdrant = tmp_path / "qdrant"
    m = AsyncMemory.from_config({"vector_store": {"provider": "qdrant", "config": {"path": str(qdrant)}}})
    async with m:
        added = await m.add([{"role": "user", "content": "I'm vegetarian and I live in Paris"}], user_id="alice")
        assert {r["memory"] for r in added["results"]} == {"The user is vegetarian", "The user lives in Paris"}
        found = await m.search("vegetarian", filters={"AND": [{"user_id": "alice"}]}, top_k=1)
        assert [r["memory"] for r in found["results"]] == ["The user is vegetarian"]
        fact = next(r for r in added["results"] if "Paris" in r["memory"])
        assert await m.update(fact["id"], "The user lives in Lyon") == {"message": "Memory updated successfully!"}
        assert (await m.get(fact["id"]))["memory"] == "The user lives in Lyon"
        assert [h["event"] for h in await m.history(fact["id"])] == ["ADD", "UPDATE"]
        assert len((await m.get_all(filters={"user_id": "alice"}))["results"]) == 3
        assert await m.delete(fact["id"]) == {"message": "Memory deleted successfully!"}
        assert await m.get(fact["id"]) is None
        assert await m.delete_all(user_id="alice") == {"message": "Memories deleted successfully!"}
        assert (await m.get_all(filters={"user_id": "alice"}))["results"] == []
        await m.add("I keep bees", agent_id="helper", infer=False)
        await m.reset()
        assert (await m.get_all(filters={"agent_id": "helper"}))["results"] == []
        with pytest.warns(Mem0CompatWarning, match=r"get_all\(colour=\.\.\.\)"):
            await m.get_all(filters={"user_id": "alice"}, colour="red")
    assert (qdrant / "engramdb.db").is_file()
