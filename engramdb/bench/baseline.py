"""The yardstick ``bench locomo --baseline`` compares against: BM25 alone over each turn.

bm25s over each conversation's turns (their text, a shared image as its caption, exactly as
engramdb ingests them), English stop words and the Snowball stemmer, the question as the
query. The issue's rule "no category below BM25" is checked against these figures, so they
must be reproducible from the repository rather than quoted.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..errors import ConfigurationError
from .locomo_data import CATEGORIES, Conversation, mean, turn_message


def bm25_recall(conversations: list[Conversation], ks: list[int]) -> dict[int, dict[int, list[float]]]:
    """Per category, per k: each question's share of evidence turns in BM25's top k."""
    bm25s, stemmer = _bm25()
    recall: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for conv in conversations:
        said = [t for _, _, ts in conv.sessions for t in ts if t.get("text") or t.get("blip_caption")]
        turns = [turn_message(t, None) for t in said]
        ids = [t["id"] for t in turns]
        retriever = bm25s.BM25()
        retriever.index(_tokens(bm25s, [t["content"] for t in turns], stemmer), show_progress=False)
        for q in conv.questions:
            if not q.evidence:
                continue
            ranked = _search(bm25s, retriever, q.text, stemmer, min(max(ks), len(ids)))
            for k in ks:
                found = {ids[i] for i in ranked[:k]} & q.evidence
                recall[q.category][k].append(len(found) / len(q.evidence))
    return recall


def bm25_longmemeval(questions: list[Any], setting: str, ks: list[int]) -> dict[str, Any]:
    """``bench longmemeval``'s yardstick: BM25 alone over the same turns, in the same scopes."""
    from .longmemeval_data import Recall, said, score

    bm25s, stemmer = _bm25()
    recall: Recall = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    pools = [questions] if setting == "pooled" else [[q] for q in questions]
    for pool in pools:
        sessions = {s.id: s for q in pool for s in q.sessions}
        turns = [(name, t["content"]) for s in sessions.values() for name, t in said(s)]
        retriever = bm25s.BM25()
        retriever.index(_tokens(bm25s, [text for _, text in turns], stemmer), show_progress=False)
        turn_of = {name: {name} for name, _ in turns}
        for q in pool:
            ranked = _search(bm25s, retriever, q.text, stemmer, min(max(ks), len(turns)))
            score([turns[i][0] for i in ranked], turn_of, q, ks, recall)
    return recall


def _bm25() -> tuple[Any, Any]:
    try:
        import bm25s
        import Stemmer
    except ImportError as exc:
        raise ConfigurationError("the baseline needs bm25s: pip install 'engramdb[bench]'") from exc
    return bm25s, Stemmer.Stemmer("english")


def _tokens(bm25s: Any, texts: list[str], stemmer: Any, *, return_ids: bool = True) -> Any:
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=return_ids)


def _search(bm25s: Any, retriever: Any, question: str, stemmer: Any, k: int) -> list[int]:
    """Turn indexes, best first; only turns that share a word with the question."""
    words = _tokens(bm25s, [question], stemmer, return_ids=False)
    docs, scores = retriever.retrieve(words, k=k, show_progress=False)
    return [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


def summarise_baseline(recall: dict[int, dict[int, list[float]]], ks: list[int]) -> dict[str, Any]:
    """Mean recall@k per category and over categories 1-4, shaped like the main result."""
    main = [c for c in recall if c in (1, 2, 3, 4)]
    per_category = {CATEGORIES.get(c, str(c)): {f"R@{k}": mean(recall[c][k]) for k in ks} for c in sorted(recall)}
    return {
        "per_category": per_category,
        "overall_1_4": {f"R@{k}": mean([v for c in main for v in recall[c][k]]) for k in ks},
    }


def below_baseline(result: dict[str, Any], k: int) -> list[str]:
    """The categories whose recall@k falls below BM25 alone (the issue's floor)."""
    baseline = result["baseline_bm25"]["per_category"]
    return [name for name, row in result["per_category"].items() if row[f"R@{k}"] < baseline[name][f"R@{k}"]]
