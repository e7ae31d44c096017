"""The dense half of a search embeds the query without the names of the scope's speakers.

A stored message's vector is of its words alone: the speaker's name is in its own column,
never in the text (``ingest.index_text``). A question about a person carries the name
("what does Caroline like to cook?"), so its vector is pulled towards every turn that
mentions or addresses that person and away from the answer, said by them without naming
themselves. Removing the names the scope knows (the ``speaker`` of its messages) from the text
the embedder sees leaves what is asked about; BM25 keeps the full query, where the name
scores on the speaker column (``stores.lexicon``), and so does every later factor.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from .lexical import lexical_terms

__all__ = ["name_pattern", "speaker_words", "without_speakers"]

POSSESSIVE = r"(?:['’]s\b|['’](?!\w))?"  # "Caroline's", "Caroline’s", "James'": the possessive goes with the name
NAMES_CACHED = 1024  # compiled patterns kept: one per set of names, i.e. per scope searched


def speaker_words(names: Iterable[str]) -> tuple[str, ...]:
    """The words of speakers' names that a query may carry, lower-cased, longest first.

    Each word of a name counts on its own ("Alice Smith" is asked about as "Alice"), as
    ``hybrid.named_speakers`` counts it. A word that is a function word too ("Will", "May")
    is kept in the query: in "what will Alice do?" it is not the name. Longest first, so an
    alternation tries "Annabel" before "Anna".
    """
    found = {w for name in names for w in lexical_terms(name)}
    return tuple(sorted(found, key=lambda w: (-len(w), w)))


@functools.lru_cache(maxsize=NAMES_CACHED)
def name_pattern(name_words: tuple[str, ...]) -> re.Pattern[str] | None:
    """Whole words among ``name_words``, any case, with a possessive; None for no words.

    Whole words: "Al" never matches inside "Always". Cached, as a scope's names are the
    same from one search to the next."""
    if not name_words:
        return None
    alternatives = "|".join(re.escape(w) for w in name_words)
    return re.compile(rf"(?<![\w'’])(?:{alternatives}){POSSESSIVE}(?![\w'’])", re.IGNORECASE)


_SPACE = re.compile(r"\s+")
_BEFORE_MARK = re.compile(r"\s+([?!.,;:])")  # "what does , like" → "what does, like"


def without_speakers(text: str, names: Iterable[str]) -> str:
    """``text`` with every word of the ``names`` removed, or ``text`` itself if nothing of
    substance would remain.

    "What does Alice like to cook?" with the speaker Alice is "What does like to cook?": the
    embedder needs no grammar, only what the question is about. A query that is a name and
    function words ("Alice?", "who is Alice") keeps the name: without it no content word is
    left, and a vector of "who is" is about nothing.
    """
    pattern = name_pattern(speaker_words(names))
    if pattern is None:
        return text
    stripped = _BEFORE_MARK.sub(r"\1", _SPACE.sub(" ", pattern.sub(" ", text))).strip(" ,;:")
    return stripped if lexical_terms(stripped) else text
