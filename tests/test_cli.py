"""Every CLI command, as a user runs it: a real process on a real file."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

import engramdb


def cli_env(env_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with their own config file and store, wide enough for a table's rows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAMDB_")}
    env.update(ENGRAMDB_CONFIG=str(env_dir / "config.toml"), ENGRAMDB_STORE=f"sqlite:///{env_dir / 'cli.db'}",
               COLUMNS="250", **extra)  # fmt: skip
    return env


def run(*args: str, env_dir: Path, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as a script runs it: no terminal (stdin is not a TTY)."""
    proc = subprocess.run([sys.executable, "-m", "engramdb", *args], capture_output=True, text=True,
                          env=cli_env(env_dir, **env), stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def as_json(proc: subprocess.CompletedProcess[str]):  # type: ignore[no-untyped-def]
    return json.loads(proc.stdout)


def test_full_cli_workflow(tmp_path: Path) -> None:
    added = as_json(
        run("add", "I'm vegetarian and allergic to peanuts", "-u", "alice", "--json", "--no-infer", env_dir=tmp_path)
    )
    memory_id = added["results"][0]["id"]
    messages = json.dumps([{"role": "user", "name": "Alice", "content": "Book me a window seat"},
                           {"role": "assistant", "content": "Done"}])  # fmt: skip
    assert (
        len(
            as_json(
                run(
                    "add",
                    "--messages",
                    messages,
                    "-u",
                    "alice",
                    "--session",
                    "trip-1",
                    "--json",
                    "--no-infer",
                    env_dir=tmp_path,
                )
            )["results"]
        )
        == 2
    )
    assert (
        as_json(
            run(
                "add", "I'm vegetarian and allergic to peanuts", "-u", "alice", "--json", "--no-infer", env_dir=tmp_path
            )
        )["results"][0]["event"]
        == "NOOP"
    )

    hits = as_json(run("search", "is alice vegetarian?", "-u", "alice", "--json", env_dir=tmp_path))["results"]
    assert hits[0]["id"] == memory_id and 0 <= hits[0]["score"] <= 1 and hits[0]["relevance"] >= 0.2
    ranked = run("search", "what can alice eat?", "-u", "alice", "--threshold", "0", env_dir=tmp_path).stdout
    assert "vegetarian" in ranked
    assert as_json(run("search", "what does alice drink?", "-u", "alice", "--json", env_dir=tmp_path))["results"] == []
    old = ("--until", "2000-01-01T00:00:00Z")
    assert as_json(run("search", "alice", "-u", "alice", *old, "--json", env_dir=tmp_path))["results"] == []
    timed = run("search", "is alice vegetarian?", "-u", "alice", "--since", "2000-01-01T00:00:00Z", "--explain",
                "-o", "when_weight=0", "-o", "lexical_weight=1", "--json", env_dir=tmp_path)  # fmt: skip
    assert as_json(timed)["results"][0]["id"] == memory_id and as_json(timed)["results"][0]["explain"]["when"] == 1

    page = as_json(run("list", "-u", "alice", "--limit", "2", "--json", env_dir=tmp_path))
    assert page["total"] == 3 and len(page["results"]) == 2 and page["next_cursor"]
    rest = as_json(run("list", "-u", "alice", "--cursor", page["next_cursor"], "--json", env_dir=tmp_path))
    assert len(rest["results"]) == 1 and rest["next_cursor"] is None
    filtered = as_json(run("list", "--filter", '{"role": "assistant"}', "--json", env_dir=tmp_path))
    assert [r["memory"] for r in filtered["results"]] == ["Done"]

    assert as_json(run("get", memory_id, "--json", env_dir=tmp_path))["memory"].startswith("I'm vegetarian")
    updated = as_json(run("update", memory_id, "I'm vegan", "--metadata", '{"v": 2}', "--json", env_dir=tmp_path))
    assert updated["memory"] == "I'm vegan" and updated["metadata"] == {"v": 2}
    events = [e["event"] for e in as_json(run("history", memory_id, "--json", env_dir=tmp_path))]
    assert events == ["ADD", "UPDATE"]

    stats = as_json(run("stats", "--json", env_dir=tmp_path))
    assert stats["memories"] == 3 and stats["embedder"] == "model2vec:minilm-static"

    export = tmp_path / "out.jsonl"
    run("export", str(export), env_dir=tmp_path)
    assert len(export.read_text().splitlines()) == 3
    copy_store = f"sqlite:///{tmp_path / 'copy.db'}"
    imported = as_json(run("import", str(export), "--store", copy_store, "--json", env_dir=tmp_path))
    assert imported == {"added": 3, "skipped": 0}
    again = as_json(run("import", str(export), "--store", copy_store, "--json", env_dir=tmp_path))
    assert again == {"added": 0, "skipped": 3}

    assert as_json(run("delete", memory_id, "--json", env_dir=tmp_path))["deleted"] == 1
    assert as_json(run("delete", "-u", "alice", "--yes", "--json", env_dir=tmp_path))["deleted"] == 2
    assert as_json(run("list", "--json", env_dir=tmp_path))["total"] == 0


def test_add_derives_facts_by_default(tmp_path: Path) -> None:
    added = as_json(run("add", "I moved to Berlin", "-u", "bo", "--name", "Bo", "--json", env_dir=tmp_path))
    assert [(r["memory"], r["event"]) for r in added["results"]] == [("I moved to Berlin", "ADD"),
                                                                    ("Bo lives in Berlin", "ADD")]  # fmt: skip
    assert added["extraction"]["extractor"] == "rules" and added["extraction"]["state"] == "done"


def test_consolidate_prune_jobs_and_hard_delete(tmp_path: Path) -> None:
    for text in ("Alice is allergic to peanuts", "alice is allergic to peanuts!"):
        run("add", text, "-u", "al", "--kind", "fact", env_dir=tmp_path)
    merged = as_json(run("consolidate", "-u", "al", "--json", env_dir=tmp_path))
    assert len(merged["merged"]) == 1 and len(merged["merged"][0]["merged_from"]) == 1
    pruned = as_json(run("prune", "-u", "al", "--max-memories", "0", "--json", env_dir=tmp_path))
    assert list(pruned["forgotten"].values()) == ["over capacity (0)"]
    assert as_json(run("jobs", "--json", env_dir=tmp_path)) == {"completed": 0}
    job_id = as_json(run("add", "I live in Oslo", "-u", "al", "--json", env_dir=tmp_path))["extraction"]["job_id"]
    assert as_json(run("jobs", job_id, "--json", env_dir=tmp_path))["state"] == "done"
    assert as_json(run("delete", "-u", "al", "--hard", "--yes", "--json", env_dir=tmp_path))["deleted"] == 4
    assert as_json(run("list", "-u", "al", "--json", env_dir=tmp_path))["total"] == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("add", "hello"), 2, "at least one of user_id"),
        (("add", "", "-u", "a"), 2, "empty"),
        (("add", "-u", "a"), 2, "give a text"),
        (("add", "x", "-u", "a", "--metadata", "{bad"), 2, "not valid JSON"),
        (("add", "x", "-u", "a", "--kind", "rumour"), 2, "unknown kind"),
        (("search", "x", "--filter", '{"nope": 1}'), 2, "unknown filter field"),
        (("search", "x", "-o", "when_weight=7"), 2, "bad search options"),
        (("search", "x", "--as-of", "not a time"), 2, "as_of"),
        (("context", "x", "-u", "alice", "--max-tokens", "0"), 2, "max_tokens"),
        (("search", "x", "--since", "2024-05-01T00:00:00Z", "--until", "2024-01-01T00:00:00Z"), 2, "time_range"),
        (("get", "01UNKNOWN"), 3, "no memory"),
        (("history", "01UNKNOWN"), 3, "no memory"),
        (("update", "01UNKNOWN", "x"), 3, "no memory"),
        (("delete",), 2, "at least one of"),
        (("list", "--cursor", "zzz"), 2, "cursor"),
        (("search", "x", "--embedder", "nope:x"), 4, "unknown embedder"),
        (("stats", "--store", "mysql://x"), 4, "unsupported store"),
        (("prune", "-u", "a", "--min-retention", "3"), 2, "prune policy"),
        (("jobs", "01UNKNOWN"), 3, "no job"),
    ],
)
def test_cli_errors_are_clear_with_exit_codes(tmp_path: Path, args: tuple[str, ...], code: int, message: str) -> None:
    proc = run(*args, env_dir=tmp_path, ok=False)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_import_refuses_a_bad_file_before_writing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "01A", "memory": "x"}\nnot json\n')
    proc = run("import", str(bad), env_dir=tmp_path, ok=False)
    assert proc.returncode == 2 and "bad.jsonl:2" in proc.stderr
    invalid = tmp_path / "invalid.jsonl"
    invalid.write_text('{"memory": "no id or scope"}\n')
    proc = run("import", str(invalid), env_dir=tmp_path, ok=False)
    assert proc.returncode == 2 and "record 0" in proc.stderr
    assert as_json(run("stats", "--json", env_dir=tmp_path))["memories"] == 0


def test_settings_come_from_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(f'embedder = "hash:24"\nstore = "sqlite:///{tmp_path / "from-file.db"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAMDB_")}
    env["ENGRAMDB_CONFIG"] = str(tmp_path / "config.toml")
    proc = subprocess.run(
        [sys.executable, "-m", "engramdb", "stats", "--json"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["location"].endswith("from-file.db")
    assert stats["embedder"] == "hash:24" and stats["dimension"] == 24
    env["ENGRAMDB_EMBEDDER"] = "hash:32"  # the environment overrides the file; the store refuses it
    proc = subprocess.run([sys.executable, "-m", "engramdb", "stats"], capture_output=True, text=True, env=env)
    assert proc.returncode == 4 and "hash:24" in proc.stderr


def test_context_prints_the_prompt_block_in_the_users_days(tmp_path: Path) -> None:
    said = json.dumps([{"role": "user", "content": "I walked the dog", "timestamp": "2023-11-16T06:00:00Z"}])
    run("add", "--messages", said, "-u", "jo", "--no-infer", env_dir=tmp_path)
    block = run("context", "dog", "-u", "jo", "--reference-date", "2023-11-16T20:00:00-08:00", env_dir=tmp_path)
    assert "[1] 2023-11-15 " in block.stdout and "I walked the dog" in block.stdout  # 10 pm on the 15th there
    parts = as_json(run("context", "dog", "-u", "jo", "--json", env_dir=tmp_path))
    assert parts["items"][0]["memory"] == "I walked the dog" and parts["tokens"] <= 1500


def test_version_is_the_packages() -> None:
    proc = subprocess.run([sys.executable, "-m", "engramdb", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == f"engramdb {engramdb.__version__}\n"
    assert engramdb.__version__ == importlib.metadata.version("engramdb")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('store = "sqlite:///x.db\n', "not valid TOML: Illegal character"),
        ("store = \n", "not valid TOML"),
        ('stroe = "sqlite:///x.db"\n', "unknown setting 'stroe' (did you mean 'store'?)"),
        ('infer = "sometimes"\n', "infer: Input should be a valid boolean"),
        ("[llm]\nmodel = 1\n", "unknown setting 'llm'"),
    ],
)
def test_a_fault_in_the_config_file_is_one_line(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(toml)
    proc = run("list", env_dir=tmp_path, ok=False)
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.startswith(f"error: config file {tmp_path / 'config.toml'}: ")
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "cli.db").exists()  # nothing was opened


def test_a_bad_setting_names_its_variable_or_the_file(tmp_path: Path) -> None:
    proc = run("list", env_dir=tmp_path, ok=False, ENGRAMDB_INFER="sometimes")
    assert proc.returncode == 4 and proc.stderr.startswith("error: ENGRAMDB_INFER: infer: Input should be")
    (tmp_path / "config.toml").mkdir()
    proc = run("list", env_dir=tmp_path, ok=False)
    assert proc.returncode == 4 and proc.stderr == f"error: config file {tmp_path / 'config.toml'}: not a file\n"


def test_empty_results_say_so(tmp_path: Path) -> None:
    assert run("list", env_dir=tmp_path).stdout == "no memories\n"
    assert run("search", "anything", env_dir=tmp_path).stdout == "no memories found\n"
    assert run("keys", "list", env_dir=tmp_path).stdout == "no keys\n"
    assert run("prune", "-u", "nobody", "--max-memories", "5", env_dir=tmp_path).stdout == "nothing to forget\n"
    assert as_json(run("list", "--json", env_dir=tmp_path))["results"] == []  # JSON stays JSON


def test_get_shows_every_field_and_explain_shows_the_score_parts(tmp_path: Path) -> None:
    message = {"role": "user", "name": "Ada", "content": "I moved to Lisbon", "timestamp": "2024-03-08T09:00:00Z"}
    said = json.dumps([message])
    added = as_json(run("add", "--messages", said, "-u", "ada", "--metadata", '{"topic": "home"}', "--json",
                        env_dir=tmp_path))  # fmt: skip
    episode = added["results"][0]["id"]
    shown = run("get", episode, env_dir=tmp_path).stdout
    fields = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in shown.splitlines() if "│" in line}
    assert fields["id"] == episode and fields["memory"] == "I moved to Lisbon" and fields["state"] == "active"
    assert fields["metadata"] == '{"topic": "home"}' and fields["occurred_at"].startswith("2024-03-08T09:00")
    assert fields["valid_to"] == "-" and '"name": "Ada"' in fields["provenance"] and fields["user_id"] == "ada"

    plain = run("search", "where does Ada live?", "-u", "ada", env_dir=tmp_path).stdout
    explained = run("search", "When did Ada move?", "-u", "ada", "--explain", env_dir=tmp_path).stdout
    assert "why" not in plain and "fused" not in plain
    header = next(line for line in explained.splitlines() if "score" in line)
    assert header.split("┃")[-2].strip() == "why"
    rows = [line for line in explained.splitlines() if "│ 01" in line]
    assert rows and all("fused" in row for row in rows) and any("× when 0.50" in row for row in rows)


def test_a_scope_delete_asks_first(tmp_path: Path) -> None:
    for text in ("I like tea", "I like rain"):
        run("add", text, "-u", "kim", "--no-infer", env_dir=tmp_path)
    refused = run("delete", "-u", "kim", env_dir=tmp_path, ok=False)  # a script: no one to ask
    assert refused.returncode == 2 and "pass --yes" in refused.stderr and "Traceback" not in refused.stderr
    declined = _in_a_terminal(tmp_path, "n\n", "delete", "-u", "kim")
    assert declined.returncode == 1 and "Delete all 2 memories of user 'kim'?" in declined.stdout
    assert as_json(run("list", "-u", "kim", "--json", env_dir=tmp_path))["total"] == 2
    accepted = _in_a_terminal(tmp_path, "y\n", "delete", "-u", "kim", "--hard")
    assert accepted.returncode == 0 and "every trace of them" in accepted.stdout, accepted.stderr
    assert as_json(run("list", "-u", "kim", "--json", env_dir=tmp_path))["total"] == 0
    run("add", "I like snow", "-u", "kim", "--no-infer", env_dir=tmp_path)
    assert as_json(run("delete", "-u", "kim", "--yes", "--json", env_dir=tmp_path))["deleted"] == 1
    assert run("delete", "01NOPE", env_dir=tmp_path, ok=False).returncode == 3  # one memory by id: no question


def _in_a_terminal(env_dir: Path, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command with a pseudo-terminal as its stdin, the answer already typed into it."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())
        return subprocess.run([sys.executable, "-m", "engramdb", *args], stdin=terminal, capture_output=True,
                              text=True, env=cli_env(env_dir), timeout=120)  # fmt: skip
    finally:
        os.close(terminal)
        os.close(controller)


def test_failed_jobs_are_listed_and_one_is_retried(tmp_path: Path) -> None:
    """A job that failed against a broken LLM (its answers an HTML page) is listed by
    ``jobs --failed`` and run again by ``jobs ID --retry``: here with no LLM configured, so
    the rules derive what it says."""
    from test_provider_faults import broken, llm_config

    from engramdb import Memory, MemoryConfig
    from engramdb.testing import ScriptedOpenAIServer

    with ScriptedOpenAIServer() as llm:
        config = MemoryConfig(store=f"sqlite:///{tmp_path / 'cli.db'}", llm=llm_config(llm), extraction_attempts=1)
        with Memory(config=config) as m:
            llm.script(broken("html"))
            job_id = m.add("I live in Oslo", user_id="al").extraction.job_id
    assert as_json(run("jobs", "--failed", "--json", env_dir=tmp_path))["results"][0]["id"] == job_id
    assert "I live in Oslo" not in run("jobs", "--failed", env_dir=tmp_path).stdout  # the table: id, user, error
    retried = as_json(run("jobs", job_id, "--retry", "--json", env_dir=tmp_path))
    assert retried["state"] == "done"
    assert as_json(run("jobs", "--failed", "--json", env_dir=tmp_path))["results"] == []
    listed = as_json(run("list", "-u", "al", "--json", env_dir=tmp_path))["results"]
    assert [(r["kind"], "Oslo" in r["memory"]) for r in listed if r["kind"] != "episode"] == [("fact", True)]
    assert run("jobs", "--retry", env_dir=tmp_path, ok=False).returncode == 2


def test_the_library_opens_a_memory_without_the_edges_settings() -> None:
    """Reading ``ENGRAMDB_*`` and the TOML file is the CLI's and the server's (``engramdb.settings``):
    a program that opens a ``Memory`` does not import pydantic-settings (70 ms of its start)."""
    child = (
        "import sys\nfrom engramdb import Memory\nMemory(':memory:').close()\nprint('pydantic_settings' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
