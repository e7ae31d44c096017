"""``engramdb bench longmemeval``: evidence recall of ``search`` on LongMemEval questions.

Every turn goes in through the public API as its own ``add`` (its role, its session's date as
timestamp), the way a chat client stores a conversation as it happens; every question is
searched with ``reference_date`` = its date. Two settings:

- **pooled** (the headline): every question's sessions in one scope, each session once, so
  the other questions' sessions are distractors (~1,400 turns for the dev subset);
- **per-question**: each question's own sessions in a scope of its own.

Turn-level recall@k is the share of a question's ``has_answer`` turns among the top k;
session-level, the share of its answer sessions that a top-k hit comes from. A derived
memory stands for the turns it came from. ``--baseline`` puts BM25 alone beside it.
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
from .longmemeval_data import Question, Recall, Session, load, said, score
from .progress import progress_bar
from .stats import peak_rss_mb, percentiles

SETTINGS = ("pooled", "per-question")


def ingest(memory: Memory, user: str, sessions: list[Session], turn_of: dict[str, set[str]]) -> int:
    """Add every turn of the sessions, one ``add`` each; ``turn_of`` maps memory id → turn names."""
    added = 0
    for session in sessions:
        for name, turn in said(session):
            message = {"role": turn["role"], "content": turn["content"], "timestamp": session.date}
            result = memory.add([message], user_id=user, session_id=session.id)
            turn_of[result.results[0].id].add(name)
            for derived in result.results[1:]:
                turn_of[derived.id].update(n for source in derived.sources for n in turn_of.get(source, ()))
            added += 1
    return added


def _setting(
    questions: list[Question],
    setting: str,
    config: MemoryConfig,
    ks: list[int],
    progress: Any,
    right: list[Asked] | None = None,
) -> tuple[Recall, list[float], float, int]:
    """One setting's recall; ``right`` collects each question's threshold-0 search (``--abstention``)."""
    recall: Recall = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    latencies: list[float] = []
    ingest_s, turns = 0.0, 0
    with (
        tempfile.TemporaryDirectory() as tmp,
        Memory(config=config.model_copy(update={"store": f"sqlite:///{tmp}/lme.db"})) as memory,
    ):
        turn_of: dict[str, set[str]] = defaultdict(set)
        if setting == "pooled":
            unique = {s.id: s for q in questions for s in q.sessions}
            t0 = time.perf_counter()
            turns = ingest(memory, "pool", list(unique.values()), turn_of)
            ingest_s = time.perf_counter() - t0
        task = progress.add_task(f"{setting} questions", total=len(questions))
        for q in questions:
            user = "pool" if setting == "pooled" else q.id
            if setting != "pooled":
                t0 = time.perf_counter()
                turns += ingest(memory, user, q.sessions, turn_of)
                ingest_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            found = memory.search(q.text, user_id=user, limit=max(ks), reference_date=q.date).results
            latencies.append((time.perf_counter() - t0) * 1000)
            score([h.id for h in found], turn_of, q, ks, recall)
            if right is not None:
                whole = memory.search(q.text, user_id=user, limit=max(ks), reference_date=q.date, threshold=0).results
                named = set().union(*(turn_of.get(h.id, set()) for h in whole)) & q.evidence
                right.append(Asked(best_relevance(whole), len(named) / len(q.evidence) if q.evidence else 0.0))
            progress.advance(task)
    return recall, latencies, ingest_s, turns


def run_longmemeval(
    data: Path, *, ks: list[int], settings: list[str], embedder: str | None, options: SearchOptions,
    console: Console, limit: int | None = None, baseline: bool = False, infer: bool = True, abstention: bool = False,
) -> dict[str, Any]:  # fmt: skip
    questions = load(data, limit)
    config = MemoryConfig(embedder=embedder, search=options, durability="normal", infer=infer)
    result: dict[str, Any] = {"questions": len(questions), "options": options.model_dump(), "infer": infer}
    right: list[Asked] = []
    with progress_bar(console) as progress:
        if abstention and "pooled" not in settings:
            _setting(questions, "pooled", config, ks, progress, right)
        for setting in settings:
            asked = right if abstention and setting == "pooled" else None
            recall, latencies, ingest_s, turns = _setting(questions, setting, config, ks, progress, asked)
            result[setting] = {
                **summarise(recall, ks),
                "search_ms": percentiles(latencies),
                "ingest_turns_per_s": round(turns / ingest_s, 1) if ingest_s else 0.0,
            }
            if baseline:
                from .baseline import bm25_longmemeval

                result[setting]["baseline_bm25"] = summarise(bm25_longmemeval(questions, setting, ks), ks)
        if abstention:
            result["abstention"] = summary(right, _elsewhere(questions, config, max(ks), progress), max(ks),
                                           options.threshold)  # fmt: skip
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _elsewhere(questions: list[Question], config: MemoryConfig, k: int, progress: Any) -> list[float]:
    """Each question asked in the haystack of the next question that shares none of its sessions
    (each haystack in a scope of its own): its best hit's relevance, threshold 0."""
    best: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Memory(config=config.model_copy(update={"store": f"sqlite:///{tmp}/lme.db"})) as memory,
    ):
        turn_of: dict[str, set[str]] = defaultdict(set)
        for q in questions:
            ingest(memory, q.id, q.sessions, turn_of)
        task = progress.add_task("questions in another haystack", total=len(questions))
        for i, q in enumerate(questions):
            own = {s.id for s in q.sessions}
            others = (questions[(i + j) % len(questions)] for j in range(1, len(questions)))
            other = next((o for o in others if own.isdisjoint(s.id for s in o.sessions)), None)
            if other is not None:
                hits = memory.search(q.text, user_id=other.id, limit=k, reference_date=q.date, threshold=0).results
                best.append(best_relevance(hits))
            progress.advance(task)
    return best


def summarise(recall: Recall, ks: list[int]) -> dict[str, Any]:
    """Mean recall@k per level and question type (``overall`` last), with question counts."""
    out: dict[str, Any] = {}
    for level, by_type in recall.items():
        names = [*sorted(t for t in by_type if t != "overall"), "overall"]
        out[level] = {
            t: {"questions": len(by_type[t][ks[0]]), **{f"R@{k}": _mean(by_type[t][k]) for k in ks}}
            for t in names
            if t in by_type
        }
    return out


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def render(result: dict[str, Any], setting: str, ks: list[int]) -> Table:
    part = result[setting]
    baseline = part.get("baseline_bm25")
    table = Table(title=f"LongMemEval evidence recall, {setting} ({result['questions']} questions)")
    table.add_column("question type")
    table.add_column("n", justify="right")
    for level in ("turn", "session"):
        for k in ks:
            table.add_column(f"{level} R@{k}", justify="right")
    if baseline:
        table.add_column(f"BM25 turn R@{max(ks)}", justify="right")
    for name, row in part["turn"].items():
        cells = [f"{row[f'R@{k}']:.3f}" for k in ks]
        session = part.get("session", {}).get(name)
        cells += [f"{session[f'R@{k}']:.3f}" if session else "-" for k in ks]
        if baseline:
            cells.append(f"{baseline['turn'][name][f'R@{max(ks)}']:.3f}")
        table.add_row(name, str(row["questions"]), *cells)
    s = part["search_ms"]
    table.caption = (
        f"search p50 {s['p50']:.2f} ms · p95 {s['p95']:.2f} ms · p99 {s['p99']:.2f} ms · "
        f"ingest {part['ingest_turns_per_s']:,.0f} turns/s (one add per turn) · peak RSS {result['peak_rss_mb']} MB"
    )
    if baseline:
        below = [n for n, row in part["turn"].items() if row[f"R@{max(ks)}"] < baseline["turn"][n][f"R@{max(ks)}"]]
        table.caption += f" · below BM25 alone at turn R@{max(ks)}: {', '.join(below) or 'none'}"
    return table


def chart(result: dict[str, Any], ks: list[int], path: Path) -> None:
    """A PNG of turn-level recall@k per question type, pooled setting first."""
    from .charts import plot_recall

    setting = next(s for s in SETTINGS if s in result)
    rows = {name: [row[f"R@{k}"] for k in ks] for name, row in result[setting]["turn"].items()}
    plot_recall(rows, ks, f"engramdb on LongMemEval ({setting}): turn recall@k by question type", path)
