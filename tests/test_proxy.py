"""engramdb proxy: a real proxy process between the openai client and an OpenAI-protocol server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from engramdb import Memory
from engramdb.server import create_key
from engramdb.testing import Reply, ScriptedOpenAIServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _key(store: str, tenant: str = "default", users: list[str] | None = None) -> str:
    """An API key in the store, for the proxy's callers (``default`` is the tenant Memory(store) reads)."""
    with Memory(store) as m:
        return create_key(m.store, tenant, user_ids=users)[0]


def _start_proxy(upstream: str, store: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engramdb", "proxy", "--upstream", upstream, "--port", str(port), "--store", store,
         *extra],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/models", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)
    assert proc.stderr is not None
    proc.stderr.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ScriptedOpenAIServer, openai.OpenAI, str]]:
    store = f"sqlite:///{tmp_path / 'proxy.db'}"
    key = _key(store)
    with ScriptedOpenAIServer() as upstream:
        proc, url = _start_proxy(upstream.base_url, store)
        client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, default_headers={"X-API-Key": key})
        try:
            yield upstream, client, store
        finally:
            client.close()
            _stop(proc)


def _memories(store: str, user: str, count: int) -> list[str]:
    """The turns the proxy recorded (after its response: wait for them)."""
    deadline = time.monotonic() + 10
    with Memory(store) as m:
        while True:
            found = [i.memory for i in m.get_all(user_id=user, kind="episode").results]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def test_the_proxy_adds_context_and_records_turns(setup: tuple[ScriptedOpenAIServer, openai.OpenAI, str]) -> None:
    upstream, client, store = setup
    upstream.script(Reply(content="Noted, no peanuts."), Reply(content="Try roasted chickpeas."))
    first = client.chat.completions.create(
        model="scripted", user="alice",
        messages=[{"role": "user", "content": "I'm allergic to peanuts and I live in Lisbon"}],
    )  # fmt: skip
    assert first.choices[0].message.content == "Noted, no peanuts."
    assert _memories(store, "alice", 2) == ["I'm allergic to peanuts and I live in Lisbon", "Noted, no peanuts."]

    second = client.chat.completions.create(
        model="scripted", user="alice",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Which snack should I buy?"}],
    )  # fmt: skip
    assert second.choices[0].message.content == "Try roasted chickpeas."
    sent = upstream.requests[-1]["body"]["messages"]
    assert sent[0]["role"] == "system" and sent[0]["content"].startswith("Be brief.")
    assert "allergic to peanuts" in sent[0]["content"] and sent[1:] == [
        {"role": "user", "content": "Which snack should I buy?"}
    ]


def test_streams_are_relayed_and_recorded(setup: tuple[ScriptedOpenAIServer, openai.OpenAI, str]) -> None:
    upstream, client, store = setup
    upstream.script(Reply(content="Sure, jazz it is tonight."))
    stream = client.chat.completions.create(
        model="scripted", stream=True, messages=[{"role": "user", "content": "Play me some jazz"}],
        extra_headers={"X-Engram-User": "bob", "X-Engram-Session": "evening"},
    )  # fmt: skip
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Sure, jazz it is tonight."
    assert _memories(store, "bob", 2) == ["Play me some jazz", "Sure, jazz it is tonight."]
    with Memory(store) as m:
        assert {i.session_id for i in m.get_all(user_id="bob").results} == {"evening"}


def test_requests_without_a_user_pass_through(setup: tuple[ScriptedOpenAIServer, openai.OpenAI, str]) -> None:
    upstream, client, store = setup
    upstream.script(Reply(content="Hello!"), Reply(status=429, content="slow down"))
    messages = [{"role": "user", "content": "Hi"}]
    assert client.chat.completions.create(model="scripted", messages=messages).choices[0].message.content == "Hello!"
    assert upstream.requests[-1]["body"]["messages"] == messages
    with pytest.raises(openai.RateLimitError):  # upstream errors come back as they were
        client.chat.completions.create(model="scripted", user="carol", messages=messages)
    with Memory(store) as m:
        assert m.stats().memories == 0


def test_an_unreachable_upstream_is_a_502(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'p.db'}"
    headers = {"X-API-Key": _key(store)}
    proc, url = _start_proxy(f"http://127.0.0.1:{_free_port()}/v1", store)
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            reply = client.post("/chat/completions", json={"model": "m", "user": "u",
                                "messages": [{"role": "user", "content": "hello"}]})  # fmt: skip
            assert reply.status_code == 502 and reply.json()["error"]["type"] == "upstream_error"
            assert client.post("/chat/completions", content=b"{not json").status_code == 400
    finally:
        _stop(proc)


def test_the_proxy_refuses_an_upstream_that_is_not_a_url(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "engramdb", "proxy", "--upstream", "localhost:11434"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "http(s) URL" in result.stderr


def test_the_responses_api_gets_context_and_records_turns(
    setup: tuple[ScriptedOpenAIServer, openai.OpenAI, str],
) -> None:
    upstream, client, store = setup
    upstream.script(Reply(content="Noted, no peanuts."), Reply(content="Try roasted chickpeas."))
    first = client.responses.create(
        model="scripted", user="alice", input="I'm allergic to peanuts and I live in Lisbon"
    )
    assert first.output_text == "Noted, no peanuts." and first.status == "completed"
    assert "instructions" not in upstream.requests[-1]["body"]  # nothing known yet: nothing added
    assert _memories(store, "alice", 2) == ["I'm allergic to peanuts and I live in Lisbon", "Noted, no peanuts."]

    asked = [{"role": "user", "content": [{"type": "input_text", "text": "Which snack should I buy?"}]}]
    second = client.responses.create(model="scripted", user="alice", instructions="Be brief.", input=asked)  # type: ignore[arg-type]
    assert second.output_text == "Try roasted chickpeas."
    sent = upstream.requests[-1]["body"]
    assert sent["instructions"].startswith("Be brief.\n\n") and "allergic to peanuts" in sent["instructions"]
    assert sent["input"] == asked  # the context is in the instructions, the input is the caller's
    assert _memories(store, "alice", 4)[2:] == ["Which snack should I buy?", "Try roasted chickpeas."]


def test_responses_streams_are_relayed_and_recorded(setup: tuple[ScriptedOpenAIServer, openai.OpenAI, str]) -> None:
    upstream, client, store = setup
    upstream.script(Reply(content="Sure, jazz it is tonight."))
    events = list(client.responses.create(
        model="scripted", stream=True, input=[{"role": "user", "content": "Play me some jazz"}],
        extra_headers={"X-Engram-User": "bob", "X-Engram-Session": "evening"},
    ))  # fmt: skip
    assert [e.type for e in events][:2] == ["response.created", "response.in_progress"]
    assert events[-1].type == "response.completed" and events[-1].response.output_text == "Sure, jazz it is tonight."  # type: ignore[union-attr]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Sure, jazz it is tonight."
    assert _memories(store, "bob", 2) == ["Play me some jazz", "Sure, jazz it is tonight."]
    with Memory(store) as m:
        assert {i.session_id for i in m.get_all(user_id="bob").results} == {"evening"}


def test_responses_without_a_user_pass_through(setup: tuple[ScriptedOpenAIServer, openai.OpenAI, str]) -> None:
    upstream, client, store = setup
    upstream.script(Reply(content="Hello!"), Reply(status=429, content="slow down"))
    assert client.responses.create(model="scripted", input="Hi", instructions="Be kind.").output_text == "Hello!"
    assert upstream.requests[-1]["body"] == {"model": "scripted", "input": "Hi", "instructions": "Be kind."}
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="scripted", user="carol", input="Hi")
    with Memory(store) as m:
        assert m.stats().memories == 0


def test_turns_that_say_nothing_are_not_recorded(setup: tuple[ScriptedOpenAIServer, openai.OpenAI, str]) -> None:
    upstream, client, store = setup
    upstream.script(Reply(content="Noted!"), Reply(content="You're welcome 👍"), Reply(content="Ok."),
                    Reply(content="Good to know: Lisbon it is."))  # fmt: skip
    client.chat.completions.create(model="scripted", user="dana", messages=[{"role": "user", "content": "ok"}])
    client.responses.create(model="scripted", user="dana", input="thanks a lot!")
    assert list(client.responses.create(model="scripted", user="dana", input="I moved to Lisbon", stream=True))
    client.chat.completions.create(model="scripted", user="dana", messages=[{"role": "user", "content": "👍"}])
    recorded = _memories(store, "dana", 2)
    assert recorded == ["I moved to Lisbon", "Good to know: Lisbon it is."]  # "Ok." and the rest: not memories
    with Memory(store) as m:
        assert "Noted!" not in m.context("what did I say?", user_id="dana").text


@pytest.mark.parametrize(
    ("text", "nothing"),
    [("Noted!", True), ("ok", True), ("OK 👍", True), ("thanks", True), ("Thank you so much!", True), ("👍", True),
     ("You're welcome!", True), ("Sounds good, will do.", True), ("Sure, got it.", True), ("Vale, gracias", True),
     ("", True), ("Lisbon", False), ("42", False), ("Noted, no peanuts.", False), ("I'm vegetarian", False),
     ("ok ok ok ok ok ok ok ok", False), ("thanks, the salmon was great", False)],
)  # fmt: skip
def test_which_texts_say_nothing(text: str, nothing: bool) -> None:
    from engramdb.server.proxy_turns import contentless

    assert contentless(text) is nothing
