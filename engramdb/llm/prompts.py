"""Every prompt engramdb sends, in one place. Override any of them with ``LLMConfig.prompts``."""

from __future__ import annotations

from ..config import LLMConfig

EXTRACT = """You turn chat messages into long-term memories about the people in them.
Return JSON: {"memories": [{"text", "kind", "subject", "slot", "occurred_at", "sources", "retraction"}]}.
- text: one self-contained statement in the third person, naming its subject ("Alice is allergic to peanuts").
- kind: fact | preference | task | procedure | episode.
- subject: the person it is about, by name. "My daughter Emma" said by Bob is about Bob ("Bob's daughter is Emma").
- slot: for an attribute with one value at a time (residence, occupation, employer, diet, age, name,
  partner), its name; else null.
- occurred_at: the date it happened as YYYY-MM-DD, resolved against the message timestamps ("yesterday"); else null.
- sources: the indices of the messages that support it.
- retraction: true only when the messages take a fact back ("I no longer live in Paris").
Keep only what stays useful later; skip greetings and small talk. Return {"memories": []} if nothing qualifies."""

PROCEDURE = """You distil instructions for an AI agent from the messages: how to do a task, rules to follow,
the user's standing requests about the agent's behaviour.
Return JSON: {"memories": [{"text", "kind": "procedure", "subject", "slot": null, "occurred_at": null,
"sources", "retraction": false}]} where text is a short imperative instruction with its context."""

RECONCILE = """You keep a memory store consistent. For each candidate, compare it with the existing memories listed
with it and choose one action:
- ADD: new information.
- UPDATE: it replaces an existing memory (a changed value, a correction, a more complete version);
  target_id is that memory.
- INVALIDATE: the candidate says an existing memory is no longer true and nothing replaces it; target_id is that memory.
- NOOP: already known.
Return JSON: {"decisions": [{"candidate": <index>, "action", "target_id", "reason"}]},
one decision per candidate."""

MERGE = """These memories say the same thing about the same subject. Write one statement that keeps every detail
they share and every detail only one of them has, in the third person, naming its subject.
Return JSON: {"text": "<the merged statement>"}."""

DEFAULTS = {"extract": EXTRACT, "procedure": PROCEDURE, "reconcile": RECONCILE, "merge": MERGE}


def prompt(name: str, config: LLMConfig) -> str:
    """The prompt called ``name``, or its override from the configuration."""
    return config.prompts.get(name) or DEFAULTS[name]
