"""Failed extraction jobs: listed, and run again once the LLM answers, in the library on both
stores and over REST against a real server process (confined to the key's tenant and users).

The LLM is the scripted OpenAI-compatible server: its broken answers (an HTML page on a 200)
make a job fail; a valid completion then lets a retry finish it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from test_provider_faults import broken, fact, llm_config
from test_server import _start, _stop

from engramdb import Memory, MemoryConfig, ValidationError
from engramdb.embedders import Embedder
from engramdb.server import create_key
from engramdb.testing import ScriptedOpenAIServer


@pytest.fixture
def llm() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server


def failing_memory(url: str, llm: ScriptedOpenAIServer, embedder: Embedder | None = None) -> Memory:
    """A memory whose jobs fail for good at their first failed attempt."""
    return Memory(url, embedder=embedder, config=MemoryConfig(llm=llm_config(llm), extraction_attempts=1))


def fail_one(m: Memory, llm: ScriptedOpenAIServer, text: str, user: str) -> str:
    llm.script(broken("html"))
    job_id = m.add(text, user_id=user).extraction.job_id
    assert job_id and m.job(job_id).state == "failed"
    return job_id


def test_failed_jobs_are_listed_and_a_retry_finishes_one(
    store_url: str, llm: ScriptedOpenAIServer, default_embedder: Embedder
) -> None:
    with failing_memory(store_url, llm, default_embedder) as m:
        first = fail_one(m, llm, "I'm tall", "alice")
        second = fail_one(m, llm, "I'm a nurse", "bob")
        listed = m.jobs()
        assert [j.id for j in listed.results] == [first, second] and listed.next_cursor is None
        job = listed.results[0]
        assert (job.user_id, job.attempts) == ("alice", 1) and "not a chat completion" in (job.error or "")
        assert [m.get(i).memory for i in job.episode_ids] == ["I'm tall"]
        assert [j.id for j in m.jobs(user_ids=["bob"]).results] == [second]
        assert m.jobs(user_ids=[]).results == []
        paged = m.jobs(limit=1)
        assert [j.id for j in paged.results] == [first] and paged.next_cursor
        assert [j.id for j in m.jobs(limit=1, cursor=paged.next_cursor).results] == [second]

        llm.script(broken("empty"))  # the LLM still broken: failed again at once, with the new error
        again = m.retry_job(first)
        assert (again.state, again.attempts) == ("failed", 2) and "not a chat completion" in (again.error or "")
        llm.script(fact("Alice is tall"))
        done = m.retry_job(first)
        assert (done.state, done.error) == ("done", None)
        assert [r.memory for r in done.results] == ["Alice is tall"]
        assert [x.memory for x in m.get_all(user_id="alice", kind="fact").results] == ["Alice is tall"]
        asked = len(llm.requests)
        assert m.retry_job(first).state == "done" and len(llm.requests) == asked  # done: never run twice
        assert [j.id for j in m.jobs().results] == [second]
        assert [j.id for j in m.jobs(state="done").results] == [first]
        assert {j.id for j in m.jobs(state=None).results} == {first, second}


def test_bad_job_queries_are_validation_errors(tmp_path: Path, llm: ScriptedOpenAIServer) -> None:
    with failing_memory(f"sqlite:///{tmp_path / 'm.db'}", llm) as m:
        with pytest.raises(ValidationError, match="state must be one of"):
            m.jobs(state="broken")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="cursor"):
            m.jobs(cursor="!!not-a-cursor")
        with pytest.raises(ValidationError):
            m.jobs(limit=0)


# --- over REST ------------------------------------------------------------------------------


@dataclass
class Site:
    url: str
    keys: dict[str, str]
    jobs: dict[str, str]


@contextmanager
def failed_jobs_site(folder: Path) -> Iterator[tuple[Site, ScriptedOpenAIServer]]:
    """A real server over a store with three failed jobs (alice's and bob's in tenant-a,
    carol's in tenant-b), whose LLM is the scripted server; keys for either tenant and alice."""
    with ScriptedOpenAIServer() as llm:
        store = f"sqlite:///{folder / 'jobs.db'}"
        with failing_memory(store, llm) as memory:
            a = memory.for_tenant("tenant-a")
            jobs = {"alice": fail_one(a, llm, "I'm tall", "alice"), "bob": fail_one(a, llm, "I'm a nurse", "bob")}
            jobs["carol"] = fail_one(memory.for_tenant("tenant-b"), llm, "I sail", "carol")
            keys = {
                "a": create_key(memory.store, "tenant-a")[0],
                "b": create_key(memory.store, "tenant-b")[0],
                "a_alice": create_key(memory.store, "tenant-a", user_ids=["alice"])[0],
            }
        env = {"ENGRAMDB_LLM_MODEL": "scripted", "ENGRAMDB_LLM_BASE_URL": llm.base_url, "ENGRAMDB_LLM_API_KEY": "t"}
        proc, url = _start(store, env=env)
        yield Site(url, keys, jobs), llm
        _stop(proc)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, ScriptedOpenAIServer]]:
    with failed_jobs_site(tmp_path_factory.mktemp("jobs")) as served:
        yield served


def call(site: Site, key: str, method: str, path: str, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {site.keys[key]}"}
    return httpx.request(method, site.url + path, params=params, headers=headers, timeout=30)


def listed(site: Site, key: str, **params: str) -> list[str | None]:
    answer = call(site, key, "GET", "/v1/jobs", **params)
    assert answer.status_code == 200, answer.text
    return [j["user_id"] for j in answer.json()["results"]]


def test_rest_lists_only_the_jobs_a_key_reaches(site: tuple[Site, ScriptedOpenAIServer]) -> None:
    s, _ = site
    assert listed(s, "a") == ["alice", "bob"]
    assert listed(s, "b") == ["carol"]
    assert listed(s, "a_alice") == ["alice"]
    assert listed(s, "a", user_id="bob") == ["bob"]
    refused = call(s, "a_alice", "GET", "/v1/jobs", user_id="bob")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    for key, job in (("b", "alice"), ("a_alice", "bob"), ("a", "carol")):
        for method, path in (("GET", ""), ("POST", "/retry")):
            answer = call(s, key, method, f"/v1/jobs/{s.jobs[job]}{path}")
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", (key, job)
    assert httpx.get(s.url + "/v1/jobs").status_code == 401


@pytest.mark.parametrize(
    ("params", "code"),
    [({"state": "broken"}, "invalid_request"), ({"limit": "0"}, "invalid_request"),
     ({"cursor": "!!"}, "validation_error")],
)  # fmt: skip
def test_rest_bad_job_queries_are_typed_4xx(site: tuple[Site, ScriptedOpenAIServer], params: dict[str, str],
                                            code: str) -> None:  # fmt: skip
    answer = call(site[0], "a", "GET", "/v1/jobs", **params)
    assert 400 <= answer.status_code < 500 and answer.json()["error"]["code"] == code, answer.text


def test_rest_retry_runs_the_job_against_the_llm_now(site: tuple[Site, ScriptedOpenAIServer]) -> None:
    s, llm = site
    job = s.jobs["bob"]
    llm.script(broken("truncated"))
    again = call(s, "a", "POST", f"/v1/jobs/{job}/retry")
    assert again.status_code == 200 and again.json()["state"] == "failed" and again.json()["attempts"] == 2
    llm.script(fact("Bob is a nurse"))
    done = call(s, "a", "POST", f"/v1/jobs/{job}/retry").json()
    assert done["state"] == "done" and [r["memory"] for r in done["results"]] == ["Bob is a nurse"]
    facts = call(s, "a", "GET", "/v1/memories", user_id="bob", kind="fact").json()["results"]
    assert [f["memory"] for f in facts] == ["Bob is a nurse"]
    assert listed(s, "a") == ["alice"] and listed(s, "a", state="done") == ["bob"]
    assert json.loads(call(s, "a", "GET", f"/v1/jobs/{job}").text)["state"] == "done"


def test_a_rules_add_records_its_job_done_with_what_it_derived(smart: Memory) -> None:
    memory = smart
    """The rules derive in the add's own transaction: its job is written done, once, with the
    memories it wrote. A duplicate message's job is written pending and run after the write,
    from the stored id."""
    first = memory.add("I live in Paris", user_id="u", session_id="s")
    job = memory.job(first.extraction.job_id or "")
    derived = [r for r in first.results if r.kind != "episode"]
    assert job.state == "done" and job.attempts == 0 and derived
    assert [r.id for r in job.results] == [r.id for r in derived]
    again = memory.add("I live in Paris", user_id="u", session_id="s")
    assert again.results[0].event == "NOOP"
    rerun = memory.job(again.extraction.job_id or "")
    assert rerun.state == "done" and again.extraction.state == "done" and rerun.id != job.id
