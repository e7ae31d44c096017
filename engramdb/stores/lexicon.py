"""The lexical index both SQL stores keep: BM25 per owner scope, in two plain tables.

Full-text engines keep one index per table: FTS5 (and a GIN index) score with statistics
from every row in the file, so one tenant's data moved another's ranking, and a scoped search
walked every row of the file that shared a word with the query before filtering to the scope.
Here the unit is the **owner scope** (``ingest.owner_scope``: a user and agent, or a session
alone) of one tenant: ``lex_scopes`` counts each scope's documents and their lengths, and
``lex_postings`` holds, per scope and term, the memories carrying it, keyed scope first: the
postings one add writes (one scope's) lie together, where a term-first key scattered them
over the whole index, one page per word, and a commit rewrote hundreds of pages. A search reads the
postings of the scopes it may see (``reach``) and computes BM25 from those scopes' numbers
alone, so its results (ids, order, scores) are the same whatever other scopes or tenants
hold, and its cost grows with the scope, not the file.

Terms are content words (``retrieval.lexical``'s tokenisation and stop words), stemmed with
Snowball in the store's language, and stored as 63-bit hashes: the tables never hold a word,
so erasing a memory's row erases its words (issue of hard deletes), and a term costs 8 bytes.
Both stores run the same statement (``search_sql``), so they return the same hits.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..ingest import owner_scope
from ..models import Scope
from ..retrieval.lexical import STOPWORDS, raw_words, word_of, words

K1 = 1.2  # BM25 term-frequency saturation: the usual value
B = 0.75  # BM25 length normalisation of the text field
SPEAKER_WEIGHT = 0.5  # a query word naming the speaker counts half a word of the text
TEXT, SPEAKER = 0, 1  # the two fields of a memory: its index text, and who said it
DEFAULT_LANGUAGE = "english"


Posting = tuple[int, int, int, int]  # term, field, tf, dl: plain tuples, made by the million


class _Unstemmed:
    """The ``simple`` language: words as they are (PostgreSQL's configuration of that name)."""

    @staticmethod
    def stemWords(words: list[str]) -> list[str]:  # PyStemmer's name
        return words


@functools.lru_cache(maxsize=8)
def _stemmer(language: str) -> object:
    import Stemmer  # PyStemmer: Snowball's C stemmers

    if language == "simple":
        return _Unstemmed()
    try:
        return Stemmer.Stemmer(language)
    except KeyError:
        raise ConfigurationError(
            f"no stemmer for the language {language!r}; one of: {', '.join(Stemmer.algorithms())}"
        ) from None


def check_language(language: str) -> str:
    _stemmer(language)
    return language


@functools.lru_cache(maxsize=1 << 17)  # a language's words repeat: a stem is hashed once per process
def term_hash(stem: str) -> int:
    """A stem's id: 63 bits of BLAKE2b, the same in every process and store."""
    return int.from_bytes(hashlib.blake2b(stem.encode(), digest_size=8).digest(), "little") >> 1


_TERMS: dict[str, dict[str, int]] = {}  # language → word → term id: a word is stemmed and hashed once
TERMS_KEPT = 1 << 17  # words remembered per language before the memo starts afresh (~15 MB)


def stems(text: str, language: str) -> list[str]:
    """The content words of a text, stemmed: what a document is indexed by (before hashing)."""
    content = [w for w in words(text) if w not in STOPWORDS]
    return _stemmer(language).stemWords(content)  # type: ignore[attr-defined, no-any-return]


def _term_ids(text: str, language: str) -> list[int]:
    """The term ids of a text's content words, stemmed: what a document is indexed by.

    Through a memo of the tokens seen, each to its term id or ``STOP`` (a stop word): a token
    is normalised, stemmed and hashed once. Indexing spends its time here, as a bulk add's
    texts hold tens of words each."""
    known = _TERMS.setdefault(language, {})
    tokens = raw_words(text)
    ids = list(map(known.get, tokens))
    if None in ids:
        missing = list(dict.fromkeys(t for t, i in zip(tokens, ids, strict=True) if i is None))
        fresh = _ids_of(missing, language)
        if len(known) + len(fresh) > TERMS_KEPT:
            known.clear()  # another thread may be reading it: every call reads its own ``fresh``
        known.update(fresh)
        ids = [fresh[t] if i is None else i for t, i in zip(tokens, ids, strict=True)]
    return [i for i in ids if i != STOP]  # type: ignore[misc]


STOP = -1  # a stop word's entry in the memo (term ids are 63-bit, never negative)


def _ids_of(tokens: list[str], language: str) -> dict[str, int]:
    """Each token's term id, or ``STOP``: its word (``retrieval.lexical.word_of``) stemmed and hashed."""
    plain = [word_of(t) for t in tokens]
    content = [w for w in plain if w not in STOPWORDS]
    stems = dict(zip(content, _stemmer(language).stemWords(content), strict=True))  # type: ignore[attr-defined]
    return {t: STOP if w in STOPWORDS else term_hash(stems[w]) for t, w in zip(tokens, plain, strict=True)}


def postings(index_text: str, speaker: str | None, language: str) -> list[Posting]:
    """A memory's postings: each distinct term of its text and of its speaker's name."""
    out: list[Posting] = []
    for field, text in ((TEXT, index_text), (SPEAKER, speaker)):
        if text:
            ids = _term_ids(text, language)
            length = len(ids)
            out.extend((term, field, tf, length) for term, tf in Counter(ids).items())
    return out


def query_terms(terms: Iterable[str], language: str) -> list[int]:
    """The ids of a query's terms (``retrieval.lexical.lexical_terms``), deduplicated."""
    seen: dict[int, None] = {}
    for stem in _stemmer(language).stemWords(list(terms)):  # type: ignore[attr-defined]
        seen.setdefault(term_hash(stem), None)
    return list(seen)


def tenant_key(tenant_id: str) -> int:
    """The id of a tenant in the postings: a tenant-wide search reads its range, no other."""
    return term_hash("tenant\x1e" + tenant_id)


def scope_key(tenant_id: str, scope: Scope) -> int:
    """The id of a memory's owner scope in this tenant."""
    owner = owner_scope(scope)
    parts = (tenant_id, owner.user_id, owner.agent_id, owner.session_id)
    raw = "\x1f".join("\x00" if p is None else p for p in parts)
    return term_hash("scope\x1e" + raw)


def owner_columns(tenant_id: str, scope: Scope) -> tuple[int, str, str | None, str | None, str | None]:
    """``lex_scopes``' key and columns for a memory's scope."""
    owner = owner_scope(scope)
    return scope_key(tenant_id, scope), tenant_id, owner.user_id, owner.agent_id, owner.session_id


def reach(scope: Scope, mark: str) -> tuple[str | None, list[str]]:
    """Which owner scopes a search in ``scope`` reads (a condition on ``lex_scopes``).

    A search naming a user reads that user's scopes (with every agent, or the one named); one
    naming only an agent reads the agent's. A memory of a user's session belongs to the user,
    so a search naming only a session reads the whole tenant, and the session is then a filter.
    None: the whole tenant, every scope of it.
    """
    conditions, params = [], []
    if scope.user_id is not None or scope.agent_id is not None:
        for column, value in (("user_id", scope.user_id), ("agent_id", scope.agent_id)):
            if value is not None:
                conditions.append(f"sc.{column} = {mark}")
                params.append(value)
    return (" AND ".join(conditions) if conditions else None), params


CUT_FACTOR = 4  # hits joined to their rows first: this many times the limit, the best by score


def search_sql(mark: str, key: str, n_terms: int, reach_sql: str | None, where: str, limit: int) -> str:
    """One statement: the reached scopes' numbers, the terms' document frequencies, BM25.

    ``key`` is how a posting names its memory (``m.rowid`` on SQLite, ``m.id`` on
    PostgreSQL); parameters, in order (``search_params``): the tenant, ``reach``'s, the term
    ids, the tenant's key (``tenant_key``), ``where``'s, the limit, ``where``'s again, the
    limit again. A memory must carry a term in its text; a term naming its speaker adds to
    it. Scores are rounded to 9 places before ordering, so that both stores' sums (whose
    order may differ in the last bit) rank the same, ties by id.
    """
    terms = ", ".join(mark for _ in range(n_terms))
    # CROSS JOIN fixes SQLite's join order (the hits, then their rows: left to itself, a
    # scoped search walked the user's rows instead, 0.2 → 8 ms), and the terms as a list
    # (not a joined relation) make them part of each seek on PostgreSQL too: each reached
    # scope and term is one seek into the postings, which are keyed scope first. ``st`` is
    # materialised, or PostgreSQL sums the scopes' counts again for every hit; ``hit`` too,
    # or SQLite seeks every posting twice, once for ``df`` and once for ``s`` (PostgreSQL
    # materialises a CTE read twice anyway): 123 → 84 ms for a tenant-wide search of 1M
    # memories in 1,000 scopes. Then only the best ``CUT_FACTOR`` × limit hits (``edge``) are
    # joined to their rows to be filtered; the rest only if too few of those pass (``rest``,
    # skipped otherwise). Joining every hit read a row per hit, 25,000 of them for a
    # tenant-wide search of 1M memories: 93 → 58 ms. ``edge`` sits 2e-9 below the cut, so a
    # hit left out rounds below every hit kept, and the result is exactly that of joining them all.
    cut = max(1, CUT_FACTOR * limit)
    return f"""
        WITH sc AS (SELECT sc.scope, sc.docs, sc.text_len FROM lex_scopes sc
                    WHERE sc.tenant_id = {mark} AND {reach_sql or "1 = 1"}),
        st AS MATERIALIZED (SELECT CAST(SUM(docs) AS DOUBLE PRECISION) AS n,
                      CAST(SUM(text_len) AS DOUBLE PRECISION) / SUM(docs) AS avgdl FROM sc),
        hit AS MATERIALIZED (SELECT p.mem, p.term, p.field, p.tf, p.dl FROM sc CROSS JOIN lex_postings p
                WHERE p.term IN ({terms}) AND p.tenant = {mark} AND p.scope = sc.scope),
        df AS (SELECT term, field, COUNT(*) AS d FROM hit GROUP BY term, field),
        s AS MATERIALIZED (SELECT hit.mem,
                     SUM(ln(1 + (st.n - df.d + 0.5) / (df.d + 0.5)) * hit.tf * {K1 + 1} /
                         (hit.tf + {K1} * CASE hit.field WHEN {TEXT} THEN {1 - B} + {B} * hit.dl / st.avgdl
                                                          ELSE 1 END)
                         * CASE hit.field WHEN {TEXT} THEN 1 ELSE {SPEAKER_WEIGHT} END) AS score
              FROM hit JOIN df ON df.term = hit.term AND df.field = hit.field CROSS JOIN st
              GROUP BY hit.mem HAVING MIN(hit.field) = {TEXT}),
        edge AS MATERIALIZED (SELECT coalesce((SELECT score FROM s ORDER BY score DESC LIMIT 1 OFFSET {cut - 1}),
                                              -1e300) - 2e-9 AS at),
        found AS MATERIALIZED (SELECT m.id, s.score FROM edge CROSS JOIN s CROSS JOIN memories m
                               WHERE {key} = s.mem AND s.score >= edge.at AND {where}),
        rest AS (SELECT m.id, s.score FROM edge CROSS JOIN s CROSS JOIN memories m
                 WHERE (SELECT count(*) FROM found) < {mark} AND {key} = s.mem AND s.score < edge.at AND {where})
        SELECT u.id, ROUND(CAST(u.score AS NUMERIC), 9) AS s
        FROM (SELECT id, score FROM found UNION ALL SELECT id, score FROM rest) u
        ORDER BY 2 DESC, u.id LIMIT {mark}"""


def search_params(
    tenant_id: str, reach_params: Sequence[Any], ids: Sequence[int], where_params: Sequence[Any], limit: int
) -> list[Any]:
    """``search_sql``'s parameters, in its order."""
    filtered = [*where_params, limit]
    return [tenant_id, *reach_params, *ids, tenant_key(tenant_id), *filtered, *filtered]


ScopeRow = tuple[int, str, "str | None", "str | None", "str | None", int, int]  # upsert_scope_sql's values
PostingRow = tuple[int, int, int, int, Any, int, int]  # tenant, term, scope, field, mem, tf, dl


@dataclass(frozen=True)
class Entry:
    """What indexing (or unindexing) one memory writes: its scope's change and its postings."""

    scope_row: ScopeRow  # the counts signed: +1 document to index it, -1 to take it out
    posting_rows: list[PostingRow]


def entry(
    tenant_id: str, scope: Scope, mem: Any, index_text: str, speaker: str | None, language: str, *, sign: int = 1
) -> Entry:
    """One memory's rows: ``sign`` 1 to index it, -1 to take it out (the rows to delete)."""
    items = postings(index_text, speaker, language)
    key, tenant, user, agent, session = owner_columns(tenant_id, scope)
    text_len = next((dl for _, field, _, dl in items if field == TEXT), 0)
    tkey = tenant_key(tenant_id)
    rows = [(tkey, term, key, field, mem, tf, dl) for term, field, tf, dl in items]
    return Entry((key, tenant, user, agent, session, sign, sign * text_len), rows)


POSTING_KEY = 5  # a posting row's first five values are its key


def insert_postings_sql(mark: str) -> str:
    return f"INSERT INTO lex_postings (tenant, term, scope, field, mem, tf, dl) VALUES ({', '.join([mark] * 7)})"


def delete_postings_sql(mark: str) -> str:
    """Takes a posting row's key (its first ``POSTING_KEY`` values)."""
    columns = ("tenant", "term", "scope", "field", "mem")
    return "DELETE FROM lex_postings WHERE " + " AND ".join(f"{c} = {mark}" for c in columns)


def posting_keys(entries: Sequence[Entry]) -> list[tuple[Any, ...]]:
    """The keys of the entries' postings: ``delete_postings_sql``'s parameters."""
    return [r[:POSTING_KEY] for e in entries for r in e.posting_rows]


def upsert_scope_sql(mark: str) -> str:
    return (
        "INSERT INTO lex_scopes (scope, tenant_id, user_id, agent_id, session_id, docs, text_len) "
        f"VALUES ({', '.join([mark] * 7)}) ON CONFLICT (scope) DO UPDATE SET "
        "docs = lex_scopes.docs + excluded.docs, text_len = lex_scopes.text_len + excluded.text_len"
    )


def drop_empty_scope_sql(mark: str) -> str:
    """An emptied scope leaves no row (its ids are the user's, and an average needs documents)."""
    return f"DELETE FROM lex_scopes WHERE scope = {mark} AND docs <= 0"


def merged(entries: Sequence[Entry]) -> list[ScopeRow]:
    """The scope changes of many entries, one row per scope in key order (a stable lock order)."""
    by_scope: dict[int, ScopeRow] = {}
    for e in entries:
        key, tenant, user, agent, session, docs, length = e.scope_row
        if key in by_scope:
            docs, length = docs + by_scope[key][5], length + by_scope[key][6]
        by_scope[key] = (key, tenant, user, agent, session, docs, length)
    return [by_scope[k] for k in sorted(by_scope)]
