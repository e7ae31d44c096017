"""One durable commit per one-message add with the rules: the message and what it says together.

Counted as the disk syncs SQLite asks for (``fdatasync``), under strace, in a child process:
the count does not depend on how fast the disk is, so it is the check. The first add of a
file pays for its creation; the adds after it are counted by difference.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import sys
    from engramdb import Memory, MemoryConfig
    with Memory(sys.argv[1], config=MemoryConfig(durability=sys.argv[3])) as m:
        m.add("I live in Paris", user_id="u", session_id="s")
        for i in range(int(sys.argv[2])):
            said = f"I adopted a dog called Rex number {i} and I love hiking"
            r = m.add([{"role": "user", "name": "Ana", "content": said}], user_id="u", session_id="s")
            assert r.extraction.state == "done" and len(r.results) >= 2, r  # a message and a derived fact
    """
)


def _syncs(tmp_path: Path, adds: int, durability: str) -> int:
    out = tmp_path / f"strace-{adds}-{durability}.txt"
    db = tmp_path / f"c-{adds}-{durability}.db"
    subprocess.run(
        ["strace", "-f", "-c", "-o", str(out), "-e", "trace=fsync,fdatasync", sys.executable, "-c", CHILD,
         f"sqlite:///{db}", str(adds), durability],
        check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=240,
    )  # fmt: skip
    rows = re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?f(?:data)?sync\b", out.read_text(), re.M)
    return sum(int(row.group(1)) for row in rows)


@pytest.mark.skipif(shutil.which("strace") is None and not os.environ.get("CI"), reason="needs strace")
def test_a_one_message_add_with_rules_is_one_durable_commit(tmp_path: Path) -> None:
    base, more = _syncs(tmp_path, 0, "full"), _syncs(tmp_path, 40, "full")
    assert (more - base) / 40 == pytest.approx(1.0, abs=0.05)  # was 2: the message, then the derived fact
    assert _syncs(tmp_path, 40, "normal") - _syncs(tmp_path, 0, "normal") <= 4  # checkpoints only
