"""The benchmark commands run end to end on tiny inputs (figures are printed, not asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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
        "--context-turns", "1", "--baseline", "-o", "threshold=0",  # "photograph" meets "photo" by meaning alone
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


def test_bench_locomo_abstention_curve(tmp_path: Path) -> None:
    """Two conversations: each one's questions are also asked in the other's scope."""
    other = {**TINY_LOCOMO[0], "sample_id": "other"}
    data, out = tmp_path / "two.json", tmp_path / "r.json"
    data.write_text(json.dumps([*TINY_LOCOMO, other]))
    proc = run("bench", "locomo", "--data", str(data), "--k", "1,3", "--abstention", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "abstention trade-off" in proc.stdout and "(default)" in proc.stdout
    part = json.loads(out.read_text())["abstention"]
    assert part["k"] == 3 and part["right_questions"] == part["wrong_questions"] == 8
    first = part["curve"][0]
    assert first["threshold"] == 0 and first["wrong_scope_abstained"] == 0 and first["right_scope_answered"] == 1
    assert part["at_default"]["threshold"] == part["default_threshold"] == 0.2
    shares = [p["wrong_scope_abstained"] for p in part["curve"]]
    assert shares == sorted(shares)  # a higher threshold abstains on at least as many


def test_bench_locomo_rejects_bad_options(tmp_path: Path) -> None:
    data = tmp_path / "tiny.json"
    data.write_text(json.dumps(TINY_LOCOMO))
    proc = run("bench", "locomo", "--data", str(data), "-o", "no_such_option=1")
    assert proc.returncode == 2 and "bad --k or --option" in proc.stderr
    assert run("bench", "locomo", "--data", str(tmp_path / "missing.json")).returncode == 2


TINY_STORE = ("--queries", "20", "--add-calls", "20", "--runs", "1")


def _ordered(ms: dict[str, float]) -> bool:
    return 0 < ms["p50"] <= ms["p95"] <= ms["p99"]


def check_store_figures(r: dict[str, Any], *, syncs_counted: bool) -> None:
    """Every figure of one ``bench store`` run is there and sane (no timing is judged)."""
    add, search, reopen = r["add"], r["search"], r["reopen"]
    for mode in ("full", "normal"):
        assert add["batched"][mode]["per_s"] > 0 and add["batched"][mode]["calls"] >= 1
        assert add["per_call"][mode]["calls"] == 20 and add["per_call"][mode]["per_s"] > 0
        assert _ordered(add["per_call"][mode]["ms"])
    assert sum(add["batched"][mode]["adds"] for mode in ("full", "normal")) == r["memories"]
    assert search["scoped"]["searches"] == 20 and search["tenant_wide"]["searches"] == 6
    for kind in ("scoped", "tenant_wide"):
        assert _ordered(search[kind]["ms"])
        assert search[kind]["wall_ms_per_search"] > 0 and search[kind]["cpu_ms_per_search"] > 0
    assert r["peak_rss_mb"] > 0 and r["first_search_after_load_s"] > 0
    assert reopen["same_process"]["open_s"] > 0 and reopen["same_process"]["first_search_ms"] > 0
    unsaved = r["memories"] // 10 if r["store"] == "sqlite" else r["add"]["batch_size"]  # PostgreSQL: no snapshot
    assert reopen["fresh_process_after_kill"]["unsaved_rows"] == unsaved
    for fresh in (reopen["fresh_process"], reopen["fresh_process_after_kill"]):
        assert fresh["runs"] == 1 and fresh["open_s"] > 0 and fresh["first_search_ms"] > 0
        assert fresh["total_s"] > fresh["open_s"] + fresh["first_search_ms"] / 1000 and fresh["startup_s"] > 0
    assert reopen["fresh_cli_first_result_s"] > 0
    syncs = r["fdatasync_per_add"]
    if syncs_counted:  # full: each add's commit is synced; normal: only checkpoints are
        assert syncs["full"] >= 0.95 and 0 <= syncs["normal"] < syncs["full"]
    else:
        assert syncs is None


def test_bench_store_small(tmp_path: Path) -> None:
    out = tmp_path / "store.json"
    proc = run("bench", "store", "--memories", "300", "--scopes", "3", *TINY_STORE, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(out.read_text())
    assert (result["store"], result["memories"], result["scopes"]) == ("sqlite", 300, 3)
    check_store_figures(result, syncs_counted=shutil.which("strace") is not None)
    assert "scoped search ms p50/95/99" in proc.stdout and "300 in 3 scopes" in proc.stdout  # the table
    assert "add one message a call, normal" in proc.stderr  # the progress bars


def test_bench_store_refuses_bad_counts() -> None:
    proc = run("bench", "store", "--memories", "10k")
    assert proc.returncode == 2 and "--memories takes positive whole numbers" in proc.stderr
    assert run("bench", "store", "--scopes", "0").returncode == 2


def test_bench_store_on_postgres(postgres_url: str) -> None:
    """The old spelling (``--sizes``, lists) still works; each run in its own tenant; --json on stdout."""
    proc = run("bench", "store", "--sizes", "300", "--scopes", "1,3", *TINY_STORE, "--store", postgres_url, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["store"], r["memories"], r["scopes"]) for r in rows] == [("postgresql", 300, 1), ("postgresql", 300, 3)]
    for r in rows:
        check_store_figures(r, syncs_counted=False)  # PostgreSQL syncs in its own processes


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
    proc = run(
        "bench",
        "longmemeval",
        "--data",
        str(data),
        "--k",
        "1,3",
        "--out",
        str(out),
        "--chart",
        str(png),
        "--baseline",
        "-o",
        "threshold=0",
    )  # fmt: skip (no word in common with the answers: the ranking itself)
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
