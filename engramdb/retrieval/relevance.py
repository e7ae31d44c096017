"""Relevance: how well a hit answers the query, on a scale that means the same in every search.

``score`` orders one search's hits (fused ranks, see ``retrieval.fusion``): the best hit of a
search about something never said still scores near 1. ``relevance`` is absolute: a logistic
function of signals that do not depend on rank,

    relevance = σ(COSINE·cosine + COVERAGE·coverage + REACH·reach + WHO·who + BIAS)

- ``cosine``: the dense similarity of the query and the memory;
- ``coverage``: the share of the query's content words (stemmed, numbers left out) that the
  memory's text carries, leaving out the words that name whom it asks about (below); a time
  the query names ("last month") counts as one word, said by the memories from then;
- ``reach``: the same share for the search's candidates together — a word no candidate carries
  is one the scope has most likely never said (a thing, a name), whatever one memory carries;
- ``who``: 1 when the query names someone the scope has heard from (a speaker of its
  candidates, or the searched user), else 0.

*Who* a question asks about and *what* it asks are apart: "what does alice drink?", searching
Alice's memories, names her, and that says the scope is the right one, not that drinks were
spoken of; so a name the scope knows is ``who``, and coverage counts the other words (all of
them when the query is only a name). A name the scope never heard is an ordinary word, not
said. A time is one word said by when a memory was said, not by its words ("what did she paint
in July 2023?"). BM25 is not a feature: its scale grows with the size of the scope (its IDF),
so a value means something else in every scope.

The constants were fitted by logistic regression on development conversations: hits holding a
question's evidence against every hit of the same question asked in a scope that never speaks of
it, the two classes given equal weight, so 0.5 means "as likely the one as the other". Every
weight is positive: more similarity, more of the query's words, more relevance. ``WHO`` is set
by hand: fitted, it learnt that development questions name a speaker of their own scope, and
answered any question naming a known person whatever it asked (docs/benchmarks.md).
A search *abstains* (returns nothing) when its best hit's relevance is below the threshold
(``SearchOptions.threshold``, default ``config.ABSTAIN_BELOW``); threshold 0 never abstains.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..stores.lexicon import DEFAULT_LANGUAGE, stems
from .lexical import lexical_terms
from .temporal import TEXTS_CACHED
from .time_languages import find_phrases, plain
from .time_phrases import COMPOUND, PHRASE

COSINE = 7.0  # per unit of cosine: the static embedder's similarities of related texts span ~0.4–0.8
COVERAGE = 5.4  # all of the query's words in the memory, against none of them
REACH = 9.0  # all of the query's words somewhere among the candidates, against none of them
WHO = 2.0  # the query names someone the scope has heard from
UNSEEN = 0.5  # the cosine of a search without the dense retriever (dense_weight 0): related texts' middle
BIAS = -12.6  # no similarity and no word in common: relevance ~0; 0.5 needs most of the query said
_NUMBER = re.compile(r"\b\d+\b")  # a number alone ("2023"), not one inside a word ("Rex5")


@dataclass(frozen=True)
class Signals:
    """What one hit's relevance is computed from."""

    cosine: float
    coverage: float
    reach: float
    who: float


TIME = "\x00time"  # the word a time expression of the query stands for: no text carries it


def asked_words(query: str, *, timed: bool = False, language: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    """The query's content words, stemmed, without time expressions (of every language the
    search reads times in) and numbers; ``timed`` (the search found a time in it) adds the one
    word they stand for, ``TIME``."""
    rest = _NUMBER.sub(" ", PHRASE.sub(" ", COMPOUND.sub(" ", query)))
    spoken = {w for found in find_phrases(query) for w in found.said.split()}  # "el verano pasado"
    terms = [t for t in lexical_terms(rest) if plain(t) not in spoken]
    return frozenset(stems(" ".join(terms), language)) | ({TIME} if timed else frozenset())


def said_words(
    asked: frozenset[str],
    text: str,
    speaker: str | None,
    *,
    named: str = "",
    then: bool = False,
    language: str = DEFAULT_LANGUAGE,
) -> frozenset[str]:
    """The words of ``asked`` a memory says: in its text, its speaker's name, or ``named`` (the
    speakers the query names) for a memory without one; ``TIME`` when it is from the time asked of.

    A memory's words are stemmed once per text (``said_stems``): the same memories are
    candidates query after query, so a search mostly intersects two cached sets.
    """
    found = asked & (said_stems(text, language) | said_stems(speaker or named, language))
    return found | ({TIME} & asked) if then else found


@functools.lru_cache(maxsize=TEXTS_CACHED)
def said_stems(text: str, language: str) -> frozenset[str]:
    """Every content word of ``text``, stemmed as the index stems (``lexicon.stems``)."""
    return frozenset(stems(text, language))


def name_words(names: Iterable[str], asked: frozenset[str], language: str = DEFAULT_LANGUAGE) -> frozenset[str]:
    """The words of ``asked`` that name one of ``names`` (the speakers the query names)."""
    return asked & frozenset(stems(" ".join(names), language))


def what_words(asked: frozenset[str], names: frozenset[str]) -> frozenset[str]:
    """What the query asks: its words but those naming whom it asks about (all, when it is only names)."""
    return (asked - names) or asked


def coverage(asked: frozenset[str], said: Iterable[frozenset[str]]) -> float:
    """The share of ``asked`` found in any of ``said``; 0 for a query without content words."""
    if not asked:
        return 0.0
    found: set[str] = set()
    for memory in said:
        found |= asked & memory
    return len(found) / len(asked)


def relevance(signals: Signals) -> float:
    """The calibrated relevance of one hit, in (0, 1) (the module's formula)."""
    s = signals
    z = COSINE * s.cosine + COVERAGE * s.coverage + REACH * s.reach + WHO * s.who + BIAS
    return 1.0 / (1.0 + math.exp(-z))


def abstains(relevances: Iterable[float], threshold: float) -> bool:
    """True when no hit reaches ``threshold``: the search returns nothing (threshold 0: never)."""
    return threshold > 0 and max(relevances, default=0.0) < threshold
