"""``engramdb bench locomo``: evidence recall of ``search`` on LoCoMo conversations.

Each conversation is ingested into its own scope through the public API only: every turn
is a message with its speaker's name and its session's date as timestamp; a shared image
is stored as its caption ("[photo: ...]"), as a chat client would store an attachment.
Then every question runs through ``search`` in that scope, and we measure which of its
evidence turns come back in the top k (Maharana et al., ACL 2024; data CC BY-NC 4.0).
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..config import MemoryConfig, SearchOptions
from ..memory import Memory
from .abstention import Asked, best_relevance, summary
from .locomo_data import CATEGORIES, Conversation, load, mean, turn_message
from .progress import progress_bar
from .stats import peak_rss_mb, percentiles


def ingest(memory: Memory, conv: Conversation) -> dict[str, set[str]]:
    """Add every turn; return memory id → the dia_ids it stands for (duplicates share an id)."""
    dia_of: dict[str, set[str]] = defaultdict(set)
    for name, when, turns in conv.sessions:
        messages = [turn_message(t, when) for t in turns if t.get("text") or t.get("blip_caption")]
        if not messages:
            continue
        result = memory.add(messages, user_id=conv.sample_id, session_id=f"{conv.sample_id}:{name}")
        for item, message in zip(result.results, messages, strict=False):  # the turns come first
            dia_of[item.id].add(message["id"])
        for derived in result.results[len(messages) :]:  # a derived memory stands for the turns it came from
            dia_of[derived.id].update(d for source in derived.sources for d in dia_of.get(source, ()))
    return dia_of


def run_locomo(
    data: Path,
    *,
    ks: list[int],
    embedder: str | None,
    limit_conversations: int | None,
    options: SearchOptions,
    console: Console,
    context_turns: int | None = None,
    baseline: bool = False,
    abstention: bool = False,
) -> dict[str, Any]:
    conversations = load(data, limit_conversations)
    right: list[Asked] = []
    dia_by: dict[str, dict[str, set[str]]] = {}
    max_k = max(ks)
    recall: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    complete: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    latencies: list[float] = []
    turns = 0
    ingest_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        ingest_options = {} if context_turns is None else {"context_turns": context_turns}
        store = f"sqlite:///{tmp}/locomo.db"
        config = MemoryConfig(store=store, embedder=embedder, search=options, durability="normal", **ingest_options)
        with Memory(config=config) as memory, progress_bar(console) as progress:
            task = progress.add_task("conversations", total=len(conversations))
            for conv in conversations:
                t0 = time.perf_counter()
                dia_of = dia_by[conv.sample_id] = ingest(memory, conv)
                ingest_seconds += time.perf_counter() - t0
                turns += sum(len(ids) for ids in dia_of.values())
                for q in conv.questions:
                    if not q.evidence:
                        continue
                    t0 = time.perf_counter()
                    asked = max((when for _, when, _ in conv.sessions if when), default=None)  # after the last session
                    hits = memory.search(q.text, user_id=conv.sample_id, limit=max_k, reference_date=asked).results
                    latencies.append((time.perf_counter() - t0) * 1000)
                    for k in ks:
                        found = set().union(*(dia_of.get(h.id, set()) for h in hits[:k])) & q.evidence
                        recall[q.category][k].append(len(found) / len(q.evidence))
                        complete[q.category][k].append(float(found == q.evidence))
                    if abstention and q.category in (1, 2, 3, 4):
                        right.append(_asked(memory, q, conv.sample_id, asked, dia_of, max_k))
                progress.advance(task)
            wrong = _elsewhere(memory, conversations, max_k) if abstention else []
    result = summarise(recall, complete, ks, latencies, turns, ingest_seconds, len(conversations), options)
    if baseline:
        from .baseline import bm25_recall, summarise_baseline

        result["baseline_bm25"] = summarise_baseline(bm25_recall(conversations, ks), ks)
    if abstention:
        result["abstention"] = summary(right, wrong, max_k, options.threshold)
    return {**result, "context_turns": config.context_turns}


def _asked(memory: Memory, q: Any, user: str, asked: Any, dia_of: dict[str, set[str]], k: int) -> Asked:
    """A question in its own conversation with threshold 0: its best relevance and recall@k."""
    hits = memory.search(q.text, user_id=user, limit=k, reference_date=asked, threshold=0).results
    found = set().union(*(dia_of.get(h.id, set()) for h in hits)) & q.evidence
    return Asked(best_relevance(hits), len(found) / len(q.evidence))


def _elsewhere(memory: Memory, conversations: list[Conversation], k: int) -> list[float]:
    """Every scored question asked in the next conversation's scope: its best hit's relevance."""
    best = []
    for i, conv in enumerate(conversations):
        other = conversations[(i + 1) % len(conversations)]
        if other is conv:
            continue
        asked = max((when for _, when, _ in conv.sessions if when), default=None)
        for q in conv.questions:
            if q.evidence and q.category in (1, 2, 3, 4):
                hits = memory.search(q.text, user_id=other.sample_id, limit=k, reference_date=asked, threshold=0)
                best.append(best_relevance(hits.results))
    return best


def summarise(
    recall: dict[int, dict[int, list[float]]],
    complete: dict[int, dict[int, list[float]]],
    ks: list[int],
    latencies: list[float],
    turns: int,
    ingest_seconds: float,
    conversations: int,
    options: SearchOptions,
) -> dict[str, Any]:
    per_category = {}
    for cat in sorted(recall):
        per_category[CATEGORIES.get(cat, str(cat))] = {
            "questions": len(recall[cat][ks[0]]),
            **{f"R@{k}": mean(recall[cat][k]) for k in ks},
            **{f"all@{k}": mean(complete[cat][k]) for k in ks},
        }
    main = [c for c in recall if c in (1, 2, 3, 4)]
    overall = {
        "questions": sum(len(recall[c][ks[0]]) for c in main),
        **{f"R@{k}": mean([v for c in main for v in recall[c][k]]) for k in ks},
        **{f"all@{k}": mean([v for c in main for v in complete[c][k]]) for k in ks},
    }
    return {
        "conversations": conversations,
        "overall_1_4": overall,
        "per_category": per_category,
        "ingest_turns_per_s": round(turns / ingest_seconds, 1) if ingest_seconds else 0.0,
        "search_ms": percentiles(latencies),
        "peak_rss_mb": peak_rss_mb(),
        "options": options.model_dump(),
    }


def render(result: dict[str, Any], ks: list[int]) -> Table:
    table = Table(title=f"LoCoMo evidence recall ({result['conversations']} conversations)")
    table.add_column("category")
    table.add_column("questions", justify="right")
    for k in ks:
        table.add_column(f"R@{k}", justify="right")
    for k in ks:
        table.add_column(f"all@{k}", justify="right")
    baseline = result.get("baseline_bm25")
    if baseline:
        table.add_column(f"BM25 R@{max(ks)}", justify="right")
    rows = [*result["per_category"].items(), ("overall (1-4)", result["overall_1_4"])]
    for name, row in rows:
        cells = [*(f"{row[f'R@{k}']:.3f}" for k in ks), *(f"{row[f'all@{k}']:.3f}" for k in ks)]
        if baseline:
            base = baseline["overall_1_4"] if name.startswith("overall") else baseline["per_category"][name]
            cells.append(f"{base[f'R@{max(ks)}']:.3f}")
        table.add_row(name, str(row["questions"]), *cells)
    s = result["search_ms"]
    table.caption = (
        f"search p50 {s['p50']:.2f} ms · p95 {s['p95']:.2f} ms · p99 {s['p99']:.2f} ms · "
        f"ingest {result['ingest_turns_per_s']:,.0f} turns/s · peak RSS {result['peak_rss_mb']} MB"
    )
    if baseline:
        from .baseline import below_baseline

        below = below_baseline(result, max(ks))
        table.caption += f" · below BM25 alone at R@{max(ks)}: {', '.join(below) or 'none'}"
    return table


def chart(result: dict[str, Any], ks: list[int], path: Path) -> None:
    """A PNG of recall@k per category (``charts.plot_recall``)."""
    from .charts import plot_recall

    rows = {**result["per_category"], "overall (1-4)": result["overall_1_4"]}
    plot_recall({n: [r[f"R@{k}"] for k in ks] for n, r in rows.items()}, ks,
                "engramdb on LoCoMo: evidence recall@k by category", path)  # fmt: skip
