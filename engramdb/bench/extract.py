"""``engramdb bench extract``: what extraction costs per add, with rules and with an LLM.

Rules: one message per ``add`` (as a chat adds turns), on LoCoMo turns when ``--data`` is
given, else on a built-in mix of first-person statements and small talk; prints adds/s and
the share of adds that produced derived memories.
LLM: the same adds against the scripted OpenAI-compatible server on loopback, answering
every extraction with one fact per message and every reconciliation with ADD; prints LLM
calls and tokens per add (cl100k counts of the real prompts) — the figures a paid API bills.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ..config import LLMConfig, MemoryConfig
from ..memory import Memory
from ..testing import Reply, ScriptedOpenAIServer
from .progress import progress_bar

STATEMENTS = [
    "I live in {city}", "I moved to {city} last month", "I'm allergic to {food}", "I love {hobby}",
    "I work as a {job}", "My favorite food is {food}", "I don't eat {food}", "I'm learning {lang}",
    "My daughter's name is {name}", "I'm planning to visit {city} in May", "I hate {hobby}",
]  # fmt: skip
SMALL_TALK = [
    "That sounds great!", "What do you think about {hobby}?", "Haha, yes.", "Can you book a table for two?",
    "Thanks, that helps a lot", "How was your weekend?", "Tell me more about {city}", "Sure, go ahead",
    "Did you see the game yesterday?",
]  # fmt: skip
FILL = {
    "city": ["Paris", "Berlin", "Lisbon", "Oslo", "Kyoto", "Austin"],
    "food": ["peanuts", "shellfish", "pork", "gluten", "sushi", "lentils"],
    "hobby": ["hiking", "chess", "jazz", "pottery", "climbing"],
    "job": ["nurse", "teacher", "pilot", "chef"],
    "lang": ["Japanese", "Spanish", "Italian"],
    "name": ["Emma", "Leo", "Maya"],
}


def builtin_messages(n: int, seed: int = 3) -> list[tuple[str, str]]:
    """(speaker, text) pairs: about 40% statements a rule can read, the rest small talk."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pool = STATEMENTS if rng.random() < 0.4 else SMALL_TALK
        text = pool[int(rng.integers(len(pool)))]
        values = {k: v[int(rng.integers(len(v)))] for k, v in FILL.items()}
        out.append((["Alice", "Bob"][i % 2], text.format(**values)))
    return out


def locomo_messages(path: Path, n: int) -> list[tuple[str, str]]:
    from .locomo_data import load

    out: list[tuple[str, str]] = []
    for conv in load(path):
        for _, _, turns in conv.sessions:
            out.extend((t["speaker"], t["text"]) for t in turns if t.get("text"))
    return out[:n]


def _add_all(memory: Memory, messages: list[tuple[str, str]], console: Console, label: str) -> dict[str, Any]:
    produced, read, derived, calls, prompt, completion = 0, 0, 0, 0, 0, 0
    with progress_bar(console) as progress:
        task = progress.add_task(label, total=len(messages))
        started = time.perf_counter()
        for speaker, text in messages:
            result = memory.add([{"role": "user", "name": speaker, "content": text}], user_id="bench")
            new = [r for r in result.results if r.kind != "episode" and r.event.value in ("ADD", "UPDATE")]
            produced += bool(new)
            read += any(r.kind != "episode" for r in result.results)
            derived += len(new)
            if result.extraction is not None:
                usage = result.extraction.usage
                calls, prompt = calls + usage.calls, prompt + usage.prompt_tokens
                completion += usage.completion_tokens
            progress.advance(task)
        seconds = time.perf_counter() - started
    n = max(1, len(messages))
    return {
        "adds": len(messages), "adds_per_s": round(len(messages) / seconds, 1),
        "share_of_adds_with_memories": round(produced / n, 3), "share_of_adds_read": round(read / n, 3),
        "derived_per_add": round(derived / n, 3),
        "llm_calls_per_add": round(calls / n, 3), "prompt_tokens_per_add": round(prompt / n, 1),
        "completion_tokens_per_add": round(completion / n, 1),
    }  # fmt: skip


def _respond(body: dict[str, Any]) -> Reply:
    """One fact per message on extraction; ADD for every candidate on reconciliation."""
    schema = body.get("response_format", {}).get("json_schema", {}).get("name")
    payload = json.loads(body["messages"][-1]["content"])
    if schema == "decisions" or "candidates" in payload:
        return Reply(content=json.dumps({"decisions": [{"candidate": c["index"], "action": "ADD"}
                                                       for c in payload["candidates"]]}))  # fmt: skip
    memories = [{"text": f"{m['name'] or 'The user'} said: {m['content']}", "kind": "fact", "subject": m["name"],
                 "sources": [m["index"]]} for m in payload["messages"]]  # fmt: skip
    return Reply(content=json.dumps({"memories": memories}))


def run_extract_bench(*, data: Path | None, adds: int, llm_adds: int, console: Console) -> dict[str, Any]:
    messages = locomo_messages(data, adds) if data else builtin_messages(adds)
    with tempfile.TemporaryDirectory() as tmp:
        config = MemoryConfig(store=f"sqlite:///{tmp}/rules.db", durability="normal")
        with Memory(config=config) as memory:
            rules = _add_all(memory, messages, console, "rules")
        with ScriptedOpenAIServer(responder=_respond) as server:
            llm = LLMConfig(model="scripted", base_url=server.base_url, api_key="bench", max_retries=0)
            config = MemoryConfig(store=f"sqlite:///{tmp}/llm.db", durability="normal", llm=llm)
            with Memory(config=config) as memory:
                scripted = _add_all(memory, messages[:llm_adds], console, "scripted LLM")
    return {"corpus": str(data) if data else "built-in", "rules": rules, "scripted_llm": scripted}
