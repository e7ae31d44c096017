"""Turn a natural-language query into the terms a BM25 index should match.

Queries are questions ("what can alice eat?"); their function words match everything and
drown the rare words that carry the meaning, so they are dropped before matching.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

STOPWORDS = frozenset(
    """a about after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves
    out over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves s t don't i'm
    it's what's""".split()  # noqa: SIM905
)


def words(text: str) -> list[str]:
    """The lower-cased words of a text, a possessive's "'s" dropped ("Alice's" → "alice")."""
    return [word_of(w) for w in raw_words(text)]


def raw_words(text: str) -> list[str]:
    """The lower-cased tokens of a text, as written: ``word_of`` makes each a word."""
    return _WORD.findall(text.lower())  # type: ignore[no-any-return]


def word_of(token: str) -> str:
    return token.split("'")[0] if token.endswith("'s") else token


def lexical_terms(query: str, *, max_terms: int = 32) -> list[str]:
    """Lower-cased content words of the query, deduplicated, in order."""
    seen: dict[str, None] = {}
    for word in words(query):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    return list(seen)[:max_terms]
