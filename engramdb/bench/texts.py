"""The synthetic texts the store benchmarks add and ask: seeded, so runs compare."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from ..embedders.static import BUNDLED_PATH
from .extract import builtin_messages


def word_list() -> list[str]:
    vocab = json.loads((BUNDLED_PATH / "tokenizer.json").read_text())["model"]["vocab"]
    words = vocab if isinstance(vocab, dict) else dict(vocab)
    return sorted(w for w in words if w.isalpha() and w.isascii() and len(w) > 3)


def sentences(n: int, rng: np.random.Generator, words: list[str], *, start: int = 0) -> list[str]:
    """``n`` sentences of 6-20 words; ``#i`` from ``start`` on keeps each text distinct."""
    lengths = rng.integers(6, 20, size=n)
    picks = rng.integers(0, len(words), size=int(lengths.sum()))
    out, pos = [], 0
    for i, length in enumerate(lengths):
        out.append(" ".join(words[j] for j in picks[pos : pos + length]) + f" #{start + i}")
        pos += length
    return out


def fresh_queries(n: int, rng: np.random.Generator, words: list[str], asked: set[str]) -> list[str]:
    """``n`` six-word queries none of which was asked before (``asked`` is extended)."""
    out: list[str] = []
    while len(out) < n:
        query = " ".join(words[j] for j in rng.integers(0, len(words), size=6))
        if query not in asked:
            asked.add(query)
            out.append(query)
    return out


def chat_turns(n: int, seed: int, session_turns: int) -> list[tuple[str, str]]:
    """(speaker, text) for ``n`` one-message adds, sessions of ``session_turns``, no text twice in one.

    ``bench extract``'s built-in mix (about 40% statements the rules read). A text repeated in
    its session would be a duplicate, and a duplicate writes nothing: every add here writes.
    """
    out: list[tuple[str, str]] = []
    said: set[str] = set()
    for speaker, text in _endless(seed):
        if len(out) == n:
            return out
        if len(out) % session_turns == 0:
            said = set()
        if text not in said:
            said.add(text)
            out.append((speaker, text))
    raise AssertionError("unreachable: the stream is endless")


def _endless(seed: int) -> Iterator[tuple[str, str]]:
    while True:
        yield from builtin_messages(1_000, seed=seed)
        seed += 1_000_003
