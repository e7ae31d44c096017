"""LLM extraction against a scripted OpenAI-compatible server: real HTTP, the real openai client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engramdb import Event, Memory, MemoryConfig, MemoryState
from engramdb.config import LLMConfig
from engramdb.embedders import Embedder
from engramdb.testing import Reply, ScriptedOpenAIServer


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as s:
        yield s


def llm_config(server: ScriptedOpenAIServer, **overrides: Any) -> MemoryConfig:
    llm = LLMConfig(model="scripted", base_url=server.base_url, api_key="test", max_retries=1, timeout_s=5)
    return MemoryConfig(llm=llm.model_copy(update=overrides.pop("llm", {})), **overrides)


@pytest.fixture
def memory(db_path: Path, server: ScriptedOpenAIServer, default_embedder: Embedder) -> Iterator[Memory]:
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder, config=llm_config(server)) as m:
        yield m


def extraction(*memories: dict[str, Any]) -> Reply:
    return Reply(content=json.dumps({"memories": list(memories)}), prompt_tokens=120, completion_tokens=30)


def fact(text: str, slot: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"text": text, "kind": "fact", "subject": "Alice", "slot": slot, "occurred_at": None, "sources": [0],
            "retraction": False, **extra}  # fmt: skip


def decisions(*items: dict[str, Any]) -> Reply:
    return Reply(content=json.dumps({"decisions": list(items)}))


def say(memory: Memory, text: str, **kwargs: Any):  # type: ignore[no-untyped-def]
    message = {"role": "user", "name": "Alice", "content": text, "timestamp": "2024-05-02T10:00:00Z"}
    return memory.add([message], user_id="alice", **kwargs)


def test_add_extracts_with_one_call_and_records_usage(memory: Memory, server: ScriptedOpenAIServer) -> None:
    server.script(extraction(fact("Alice is allergic to peanuts", occurred_at="2024-05-01")))
    result = say(memory, "peanuts make me ill")
    assert [(r.memory, r.event) for r in result.results] == [
        ("peanuts make me ill", Event.ADD), ("Alice is allergic to peanuts", Event.ADD)]  # fmt: skip
    assert result.extraction.extractor == "llm" and result.extraction.state == "done"
    assert (result.extraction.usage.calls, result.extraction.usage.prompt_tokens) == (1, 120)
    body = server.requests[-1]["body"]
    assert body["response_format"]["type"] == "json_schema" and body["model"] == "scripted"
    sent = json.loads(body["messages"][1]["content"])
    assert sent["messages"][0]["name"] == "Alice" and sent["reference_date"] == "2024-05-02"
    stored = memory.get(result.results[1].id)
    assert stored.subject == "Alice" and stored.occurred_at.day == 1 and stored.sources == [result.results[0].id]


def test_every_decision_type(memory: Memory, server: ScriptedOpenAIServer) -> None:
    server.script(extraction(fact("Alice lives in Paris", "residence")))
    paris = say(memory, "home is Paris").results[1]
    update = {"candidate": 0, "action": "UPDATE", "target_id": paris.id, "reason": "moved"}
    server.script(extraction(fact("Alice lives in Berlin", "residence")), decisions(update))
    berlin = say(memory, "we moved to Berlin").results[1]
    assert (berlin.event, berlin.previous_id, berlin.reason) == (Event.UPDATE, paris.id, "moved")
    assert memory.get(paris.id).state is MemoryState.SUPERSEDED

    server.script(extraction(fact("Alice lives in Berlin", "residence")),
                  decisions({"candidate": 0, "action": "ADD"}))  # fmt: skip
    assert say(memory, "Berlin is home now").results[1].event is Event.NOOP  # an exact duplicate stays a NOOP

    server.script(extraction(fact("Alice likes Berlin's parks")), decisions({"candidate": 0, "action": "NOOP"}))
    assert [r.kind for r in say(memory, "nice parks").results] == ["episode"]  # NOOP without a target: nothing

    server.script(extraction(fact("Alice lives in Berlin", "residence", retraction=True)),
                  decisions({"candidate": 0, "action": "INVALIDATE", "target_id": berlin.id}))  # fmt: skip
    retracted = say(memory, "I left Berlin").results[1]
    assert (retracted.event, retracted.id) == (Event.INVALIDATE, berlin.id)
    assert memory.get(berlin.id).state is MemoryState.INVALIDATED


def test_invalidation_without_a_retraction_becomes_an_update(memory: Memory, server: ScriptedOpenAIServer) -> None:
    server.script(extraction(fact("Alice works at Initech", "employer")))
    old = say(memory, "work: Initech").results[1]
    server.script(extraction(fact("Alice works at Acme", "employer")),
                  decisions({"candidate": 0, "action": "INVALIDATE", "target_id": old.id}))  # fmt: skip
    new = say(memory, "work: Acme").results[1]
    assert (new.event, new.memory, new.previous_id) == (Event.UPDATE, "Alice works at Acme", old.id)


def test_a_target_the_model_was_not_shown_is_refused(memory: Memory, server: ScriptedOpenAIServer) -> None:
    server.script(extraction(fact("Alice plays chess")))
    say(memory, "chess")
    server.script(extraction(fact("Alice plays go")),
                  decisions({"candidate": 0, "action": "UPDATE", "target_id": "01NOTSHOWN"}))  # fmt: skip
    assert say(memory, "go").results[1].event is Event.ADD


def test_malformed_json_is_repaired_or_asked_again(memory: Memory, server: ScriptedOpenAIServer) -> None:
    wrapped = "Sure, here it is:\n```json\n" + extraction(fact("Alice is a nurse")).content + "\n```"
    server.script(Reply(content=wrapped))
    result = say(memory, "I'm a nurse")
    assert result.results[1].memory == "Alice is a nurse" and result.extraction.usage.calls == 1

    server.script(Reply(content='{"memories": [{"text": '), extraction(fact("Alice is tall")),
                  decisions({"candidate": 0, "action": "ADD"}))  # fmt: skip
    result = say(memory, "I'm tall")
    assert result.results[1].memory == "Alice is tall" and result.extraction.usage.calls == 3  # 2 + reconcile
    assert "not a valid JSON object" in server.requests[-2]["body"]["messages"][-1]["content"]


def test_a_server_without_json_schema_gets_json_mode(memory: Memory, server: ScriptedOpenAIServer) -> None:
    server.script(Reply(status=400, content="response_format json_schema is not supported"),
                  extraction(fact("Alice is tall")))  # fmt: skip
    assert say(memory, "I'm tall").results[1].memory == "Alice is tall"
    assert server.requests[-1]["body"]["response_format"] == {"type": "json_object"}


def test_429_is_retried_with_backoff(memory: Memory, server: ScriptedOpenAIServer) -> None:
    server.script(Reply(status=429, content="slow down"), extraction(fact("Alice is tall")))
    result = say(memory, "I'm tall")
    assert result.extraction.state == "done" and result.results[1].memory == "Alice is tall"
    assert len(server.requests) == 2


def test_a_failed_llm_keeps_the_messages_and_retries_later(
    db_path: Path, server: ScriptedOpenAIServer, default_embedder: Embedder
) -> None:
    config = llm_config(server, llm={"timeout_s": 0.5, "max_retries": 0}, extraction_attempts=3)
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder, config=config) as memory:
        server.script(Reply(delay_s=2, content="{}"))
        result = say(memory, "my sister Maya lives in Porto")
        assert [r.event for r in result.results] == [Event.ADD]
        status = result.extraction
        assert status.state == "pending" and status.job_id and "LLM request failed" in (status.error or "")
        assert memory.search("Maya", user_id="alice").results[0].memory == "my sister Maya lives in Porto"
        assert memory.job(status.job_id).attempts == 1

        server.script(extraction(fact("Alice's sister Maya lives in Porto")))
        assert memory.process_pending() == 1
        job = memory.job(status.job_id)
        assert job.state == "done" and [r.memory for r in job.results] == ["Alice's sister Maya lives in Porto"]
        assert memory.process_pending() == 0
        assert memory.get_all(user_id="alice").total == 2


def test_a_job_fails_after_its_attempts(
    db_path: Path, server: ScriptedOpenAIServer, default_embedder: Embedder
) -> None:
    config = llm_config(server, llm={"max_retries": 0}, extraction_attempts=2)
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder, config=config) as memory:
        server.script(Reply(status=500), Reply(status=500))
        job_id = say(memory, "hello").extraction.job_id
        assert memory.process_pending() == 0
        assert memory.job(job_id).state == "failed" and memory.process_pending() == 0


def test_background_extraction_returns_at_once(memory: Memory, server: ScriptedOpenAIServer) -> None:
    server.script(Reply(delay_s=0.3, content=extraction(fact("Alice is tall")).content))
    result = say(memory, "I'm tall", wait=False)
    assert result.extraction.state == "pending" and len(result.results) == 1
    assert memory.search("tall", user_id="alice").results  # the message is searchable before extraction
    assert memory.wait_for_jobs(timeout=10)
    job = memory.job(result.extraction.job_id)
    assert job.state == "done" and job.results[0].memory == "Alice is tall" and job.usage.calls == 1


CHILD = textwrap.dedent(
    """
    import sys, time
    from engramdb import Memory, MemoryConfig
    from engramdb.config import LLMConfig
    llm = LLMConfig(model="scripted", base_url=sys.argv[2], api_key="t", max_retries=0, timeout_s=30)
    m = Memory(f"sqlite:///{sys.argv[1]}", config=MemoryConfig(llm=llm))
    r = m.add([{"role": "user", "name": "Alice", "content": "I'm tall"}], user_id="alice", wait=False)
    print(r.extraction.job_id, flush=True)
    time.sleep(60)
    """
)


def test_a_crash_between_the_write_and_extraction_is_completed_on_restart(
    db_path: Path, server: ScriptedOpenAIServer, default_embedder: Embedder
) -> None:
    server.script(Reply(delay_s=30, content="{}"))  # the child's extraction hangs until it is killed
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db_path), server.base_url], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert child.stdout is not None
    job_id = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder, config=llm_config(server)) as memory:
        assert memory.job(job_id).state == "pending"
        assert [m.memory for m in memory.get_all(user_id="alice").results] == ["I'm tall"]
        server.script(extraction(fact("Alice is tall")))
        assert memory.process_pending() == 1
        assert memory.process_pending() == 0
        assert sorted(m.memory for m in memory.get_all(user_id="alice").results) == ["Alice is tall", "I'm tall"]


def test_consolidation_asks_the_llm_for_one_statement(memory: Memory, server: ScriptedOpenAIServer) -> None:
    ids = [memory.add(t, user_id="alice", kind="fact").results[0].id
           for t in ("Alice is allergic to peanuts", "Alice is allergic to peanuts and cashews")]  # fmt: skip
    server.script(Reply(content=json.dumps({"text": "Alice is allergic to peanuts and cashews (both nuts)"})))
    result = memory.consolidate(user_id="alice")
    assert result.usage.calls == 1 and len(result.merged) == 1
    merged = memory.get(result.merged[0].survivor)
    assert merged.memory == "Alice is allergic to peanuts and cashews (both nuts)"
    assert merged.merged_from == sorted(ids)
    assert {memory.get(i).superseded_by for i in ids} == {merged.id}
    assert "memories" in json.loads(server.requests[-1]["body"]["messages"][1]["content"])


def test_procedures_come_from_the_procedure_prompt(memory: Memory, server: ScriptedOpenAIServer) -> None:
    steps = {"text": "When booking flights for the user, pick an aisle seat and avoid red-eyes", "kind": "fact",
             "subject": None, "sources": [0, 1]}  # fmt: skip
    server.script(extraction(steps))
    messages = [{"role": "user", "content": "For flights: aisle, and never a red-eye"},
                {"role": "assistant", "content": "Noted"}]  # fmt: skip
    result = memory.add(messages, agent_id="travel-bot", kind="procedure")
    assert [r.kind for r in result.results] == ["episode", "episode", "procedure"]
    assert "distil instructions" in server.requests[-1]["body"]["messages"][0]["content"]
    procedures = memory.get_all(agent_id="travel-bot", kind="procedure").results
    assert [p.memory for p in procedures] == [steps["text"]] and len(procedures[0].sources) == 2


def test_prompts_can_be_overridden(db_path: Path, server: ScriptedOpenAIServer, default_embedder: Embedder) -> None:
    config = llm_config(server, llm={"prompts": {"extract": "Extract facts. Answer in JSON."}})
    with Memory(f"sqlite:///{db_path}", embedder=default_embedder, config=config) as memory:
        server.script(extraction())
        say(memory, "hello")
        assert server.requests[-1]["body"]["messages"][0]["content"] == "Extract facts. Answer in JSON."


def test_a_retried_job_keeps_the_adds_options_and_tenant(
    store_url: str, server: ScriptedOpenAIServer, default_embedder: Embedder
) -> None:
    """The job's payload goes through the store (JobPayload): a retry derives as the add asked."""
    config = llm_config(server, llm={"max_retries": 0}, extraction_attempts=3)
    with Memory(store_url, embedder=default_embedder, config=config) as base:
        memory = base.for_tenant("acme-jobs")
        server.script(Reply(status=500))
        result = memory.add([{"role": "user", "name": "Alice", "content": "I'm tall"}], user_id="alice",
                            kind="procedure", metadata={"source": "intake"}, importance=0.9)  # fmt: skip
        assert result.extraction.state == "pending"
        server.script(extraction(fact("Alice is tall")))
        assert base.process_pending() == 0  # another tenant's job is not the default tenant's to run
        assert memory.process_pending() == 1
        derived = [m for m in memory.get_all(user_id="alice").results if m.memory == "Alice is tall"]
        assert len(derived) == 1 and derived[0].metadata == {"source": "intake"} and derived[0].importance == 0.9
        assert derived[0].kind == "procedure"
        assert base.get_all(user_id="alice").total == 0  # nothing in the default tenant
