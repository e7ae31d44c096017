"""The benchmark commands run end to end on tiny inputs (figures are printed, not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TINY_LOCOMO = [
    {
        "sample_id": "tiny-1",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a grey kitten called Pixel last week."},
                {"speaker": "Ben", "dia_id": "D1:2", "text": "Lovely! I started learning the cello."},
                {
                    "speaker": "Ann",
                    "dia_id": "D1:3",
                    "text": "Look at this.",
                    "blip_caption": "a photo of a lighthouse",
                },
            ],
            "session_2_date_time": "10:00 am on 20 June, 2023",
            "session_2": [
                {"speaker": "Ben", "dia_id": "D2:1", "text": "My cello teacher says I am improving fast."},
                {"speaker": "Ann", "dia_id": "D2:2", "text": "Pixel knocked my plant over again."},
            ],
        },
        "qa": [
            {"question": "What is the name of Ann's kitten?", "answer": "Pixel", "evidence": ["D1:1"], "category": 4},
            {
                "question": "What instrument does Ben play?",
                "answer": "cello",
                "evidence": ["D1:2", "D2:1"],
                "category": 1,
            },
            {"question": "What did Ann photograph?", "answer": "a lighthouse", "evidence": ["D1:3"], "category": 4},
            {"question": "When did Ann adopt a kitten?", "answer": "May 2023", "evidence": ["D1:1"], "category": 2},
            {"question": "What is Ben's dog called?", "adversarial_answer": "Rex", "evidence": [], "category": 5},
        ],
    }
]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAMDB_")}
    return subprocess.run(
        [sys.executable, "-m", "engramdb", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_bench_locomo_on_a_tiny_conversation(tmp_path: Path) -> None:
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(TINY_LOCOMO))
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    proc = run(
        "bench", "locomo", "--data", str(data), "--k", "1,3", "--out", str(out), "--chart", str(png), "-o", "rrf_k=30",
        "--context-turns", "1", "--baseline",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "single-hop" in proc.stdout and "R@3" in proc.stdout
    result = json.loads(out.read_text())
    assert result["overall_1_4"]["questions"] == 4
    assert result["per_category"]["single-hop"]["R@3"] == 1.0  # kitten and the photo caption are found
    assert result["options"]["rrf_k"] == 30 and result["context_turns"] == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bm25 = result["baseline_bm25"]["per_category"]  # "photograph" never meets "photo", nor "instrument" "cello"
    assert bm25["single-hop"]["R@3"] == 0.5 and bm25["multi-hop"]["R@3"] == 0.0 and bm25["temporal"]["R@3"] == 1.0
    assert "BM25 R@3" in proc.stdout and "below BM25 alone" in proc.stdout


def test_bench_locomo_rejects_bad_options(tmp_path: Path) -> None:
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(TINY_LOCOMO))
    proc = run("bench", "locomo", "--data", str(data), "-o", "no_such_option=1")
    assert proc.returncode == 2 and "bad --k or --option" in proc.stderr
    assert run("bench", "locomo", "--data", str(tmp_path / "missing.json")).returncode == 2


def test_bench_store_small(tmp_path: Path) -> None:
    out = tmp_path / "store.json"
    proc = run("bench", "store", "--sizes", "300", "--scopes", "1,10", "--queries", "20", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert [(r["memories"], r["scopes"]) for r in rows] == [(300, 1), (300, 10)]
    assert all(r["add_per_s"] > 0 and r["search_ms"]["p50"] > 0 for r in rows)


def test_bench_store_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    out = tmp_path / "pg.json"
    proc = run("bench", "store", "--sizes", "300", "--scopes", "1,10", "--queries", "20", "--store", postgres_url,
               "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert [(r["memories"], r["scopes"]) for r in rows] == [(300, 1), (300, 10)]  # each run in its own tenant
    assert all(r["search_ms"]["p50"] > 0 and r["unscoped_search_ms"]["p50"] > 0 for r in rows)


def test_bench_extract_small(tmp_path: Path) -> None:
    out = tmp_path / "extract.json"
    proc = run("bench", "extract", "--adds", "40", "--llm-adds", "8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    rules, llm = result["rules"], result["scripted_llm"]
    assert rules["adds"] == 40 and rules["llm_calls_per_add"] == 0 and 0 < rules["share_of_adds_read"] < 1
    assert llm["adds"] == 8 and llm["llm_calls_per_add"] >= 1 and llm["prompt_tokens_per_add"] > 100


def _lme_question(qid: str, qtype: str, question: str, sessions: list[tuple[str, list[tuple[str, str, bool]]]],
                  answer: list[str]) -> dict[str, object]:  # fmt: skip
    return {
        "question_id": qid, "question_type": qtype, "question": question, "answer": "-",
        "question_date": "2023/06/01 (Thu) 10:00", "answer_session_ids": answer,
        "haystack_session_ids": [sid for sid, _ in sessions],
        "haystack_dates": ["2023/05/20 (Sat) 02:21" for _ in sessions],
        "haystack_sessions": [[{"role": r, "content": c, **({"has_answer": True} if a else {})} for r, c, a in turns]
                              for _, turns in sessions],
    }  # fmt: skip


TINY_LME = [
    _lme_question("q1", "single-session-user", "What breed is my dog?", [
        ("s1", [("user", "We adopted a greyhound called Biscuit", True), ("assistant", "Lovely name!", False)]),
        ("s2", [("user", "I need a recipe for lentil soup", False), ("assistant", "", False)]),
    ], ["s1"]),
    _lme_question("q2", "multi-session", "Which instruments do I play?", [
        ("s3", [("user", "I started cello lessons in January", True)]),
        ("s4", [("user", "My piano teacher is strict", True), ("assistant", "Practice helps.", False)]),
        ("s1", [("user", "We adopted a greyhound called Biscuit", False), ("assistant", "Lovely name!", False)]),
    ], ["s3", "s4"]),
]  # fmt: skip


def test_bench_longmemeval_on_two_questions(tmp_path: Path) -> None:
    data = tmp_path / "lme.json"
    data.write_text(json.dumps(TINY_LME))
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    proc = run("bench", "longmemeval", "--data", str(data), "--k", "1,3", "--out", str(out), "--chart", str(png),
               "--baseline")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "pooled" in proc.stdout and "per-question" in proc.stdout and "BM25 turn R@3" in proc.stdout
    result = json.loads(out.read_text())
    pooled = result["pooled"]
    assert pooled["turn"]["overall"]["questions"] == 2 and pooled["session"]["overall"]["questions"] == 2
    assert pooled["turn"]["single-session-user"]["R@3"] == 1.0  # the greyhound turn is found
    assert pooled["session"]["multi-session"]["R@3"] == 1.0  # both instrument sessions
    assert result["per-question"]["turn"]["multi-session"]["R@3"] == 1.0
    assert pooled["baseline_bm25"]["turn"]["overall"]["questions"] == 2
    assert 0 <= pooled["baseline_bm25"]["turn"]["overall"]["R@1"] <= 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = run("bench", "longmemeval", "--data", str(data), "--setting", "sideways")
    assert bad.returncode == 2 and "--setting" in bad.stderr
