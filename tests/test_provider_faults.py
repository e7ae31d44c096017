"""An LLM that answers 200 with something other than a completion: a captive portal's HTML page,
an empty body, JSON cut off by a proxy. Each is a provider failure like a 500: the turn stays
stored, the job counts an attempt and is retried, then failed, and other jobs go on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, get_args

import httpx
import pytest
from live import serving

from engramdb import Event, Memory, MemoryConfig, ProviderError
from engramdb.config import LLMConfig
from engramdb.embedders import Embedder
from engramdb.llm import OpenAIChat
from engramdb.server import create_key
from engramdb.testing import Body, Reply, ScriptedOpenAIServer

ATTEMPTS = 2
FAULTS: list[Body] = [b for b in get_args(Body) if b != "completion"]


@pytest.fixture
def llm() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server


def llm_config(llm: ScriptedOpenAIServer) -> LLMConfig:
    return LLMConfig(model="scripted", base_url=llm.base_url, api_key="test", max_retries=0, timeout_s=5)


@pytest.fixture
def memory(store_url: str, llm: ScriptedOpenAIServer, default_embedder: Embedder) -> Iterator[Memory]:
    config = MemoryConfig(llm=llm_config(llm), extraction_attempts=ATTEMPTS)
    with Memory(store_url, embedder=default_embedder, config=config) as m:
        yield m


def fact(text: str) -> Reply:
    memories = [{"text": text, "kind": "fact", "subject": "Alice", "slot": None, "occurred_at": None,
                 "sources": [0], "retraction": False}]  # fmt: skip
    return Reply(content=json.dumps({"memories": memories}))


def broken(body: Body) -> Reply:
    """A 200 whose body is broken; its content would be a valid extraction, were it delivered."""
    return Reply(content=fact("Alice is tall").content, body=body)


@pytest.mark.parametrize("body", FAULTS)
def test_the_llm_client_raises_a_provider_error(llm: ScriptedOpenAIServer, body: Body) -> None:
    llm.script(broken(body))
    with pytest.raises(ProviderError, match="not a chat completion") as caught:
        OpenAIChat(llm_config(llm)).complete_json("system", "user", schema_name="memories", schema={})
    assert caught.value.status == 200
    assert len(llm.requests) == 1  # a transport-level failure: not a malformed answer to ask again


@pytest.mark.parametrize("body", FAULTS)
def test_add_keeps_the_turn_and_the_job_fails_after_its_attempts(
    memory: Memory, llm: ScriptedOpenAIServer, body: Body
) -> None:
    llm.script(broken(body))
    result = memory.add("I'm tall", user_id="alice")
    assert [(r.memory, r.event) for r in result.results] == [("I'm tall", Event.ADD)]
    status = result.extraction
    assert status.state == "pending" and status.job_id and "not a chat completion" in (status.error or "")
    assert memory.job(status.job_id).attempts == 1
    llm.script(broken(body))
    assert memory.process_pending() == 0
    job = memory.job(status.job_id)
    assert (job.state, job.attempts) == ("failed", ATTEMPTS)
    assert memory.process_pending() == 0 and len(llm.requests) == ATTEMPTS  # a failed job is not retried
    assert [m.memory for m in memory.get_all(user_id="alice").results] == ["I'm tall"]


def test_a_failing_job_does_not_stop_the_others(memory: Memory, llm: ScriptedOpenAIServer) -> None:
    llm.script(broken("html"), broken("empty"))
    first = memory.add("I'm tall", user_id="alice").extraction.job_id
    second = memory.add("I'm a nurse", user_id="bob").extraction.job_id
    assert first and second
    llm.script(broken("truncated"), fact("Bob is a nurse"))  # oldest first: the first job fails again
    assert memory.process_pending() == 1
    assert memory.job(first).state == "failed" and memory.job(second).state == "done"
    assert [m.memory for m in memory.get_all(user_id="bob", kind="fact").results] == ["Bob is a nurse"]


def test_the_worker_thread_counts_the_attempt_and_goes_on(memory: Memory, llm: ScriptedOpenAIServer) -> None:
    llm.script(broken("html"))
    first = memory.add("I'm tall", user_id="alice", wait=False).extraction.job_id
    assert first and memory.wait_for_jobs(timeout=30)
    job = memory.job(first)
    assert (job.state, job.attempts) == ("pending", 1) and "not a chat completion" in (job.error or "")
    llm.script(fact("Alice is a nurse"))
    second = memory.add("I'm a nurse", user_id="alice", wait=False).extraction.job_id
    assert second and memory.wait_for_jobs(timeout=30)
    assert memory.job(second).state == "done"


def test_rest_add_answers_200_with_the_stored_turn(memory: Memory, llm: ScriptedOpenAIServer) -> None:
    secret, _ = create_key(memory.store, memory.tenant_id)
    with serving(memory) as (url, _), httpx.Client(base_url=url, headers={"X-API-Key": secret}, timeout=30) as http:
        llm.script(broken("html"))
        response = http.post("/v1/memories", json={"messages": "I'm tall", "user_id": "alice"})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert [(r["memory"], r["event"]) for r in body["results"]] == [("I'm tall", "ADD")]
        assert body["extraction"]["state"] == "pending" and body["extraction"]["job_id"]
        listed = http.get("/v1/memories", params={"user_id": "alice"}).json()
        assert [m["memory"] for m in listed["results"]] == ["I'm tall"]
