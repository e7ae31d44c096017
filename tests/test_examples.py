"""Every script in examples/ runs offline to completion (each asserts what it shows)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
EXPECTED = {
    "quickstart.py": "allergic to peanuts",
    "langchain_chat.py": "The user is vegetarian",
    "langchain_vectorstore.py": "relevant history: input: My favourite sport is soccer",
    "langgraph_store.py": "recalled: ['My daughter Emma starts school in September'",
    "llamaindex_memory.py": "retrieved",
    "mem0_dropin.py": "['ADD', 'UPDATE']",
    "proxy_chat.py": "The user is allergic to peanuts",
}


def test_every_example_is_checked() -> None:
    assert {p.name for p in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert EXPECTED[script.name] in result.stdout
