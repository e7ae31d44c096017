"""Views of one Memory (``with_config``, ``for_tenant``) and long sessions."""

from __future__ import annotations

import pytest

from engramdb import ConfigurationError, LLMConfig, Memory, SearchOptions, ValidationError


@pytest.mark.parametrize(
    "change",
    [{"tenant_id": "other"}, {"store": ":memory:"}, {"llm": LLMConfig(model="m")}, {"embedder": "hash:64"},
     {"extraction_attempts": 2}, {"synchronous": "NORMAL"}],
    ids=lambda c: next(iter(c)),
)  # fmt: skip
def test_a_view_refuses_what_it_cannot_change(memory: Memory, change: dict[str, object]) -> None:
    """These were silently ignored: the view kept the old tenant, store, LLM and embedder."""
    with pytest.raises(ConfigurationError, match=next(iter(change))):
        memory.with_config(**change)


def test_a_view_changes_per_call_settings(memory: Memory) -> None:
    memory.add("I keep bees on the roof", user_id="alice")
    view = memory.with_config(search=SearchOptions(when_weight=1.0), parallel_search=False, infer=True)
    assert view.config.search.when_weight == 1.0 and view.config.parallel_search is False
    assert memory.config.parallel_search is True  # the original is untouched
    assert [h.memory for h in view.search("bees", user_id="alice").results] == ["I keep bees on the roof"]
    with pytest.raises(ValidationError):
        memory.with_config(context_turns=99)


def test_a_summary_covers_every_turn_of_a_long_session(memory: Memory) -> None:
    """The summary read only the first 1,000 turns of a session."""
    turns = [{"role": "user", "content": f"turn number {i} about the garden"} for i in range(1_205)]
    for start in range(0, len(turns), 500):
        memory.add(turns[start : start + 500], user_id="alice", session_id="long")
    summary = memory.summarize_session("long", user_id="alice")
    assert len(summary.sources) == 1_205
    assert [e.turns for e in memory.sessions(user_id="alice")] == [1_205]
