"""``engramdb ui``: the memory inspector on a local store with no key, as a real process in a
real browser; and the script that draws the README's pictures of the inspector."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from test_docs_browser import _chromium
from ui_browser import users

from engramdb import Memory


@pytest.fixture(scope="module")
def local_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``engramdb ui`` as a process; the address it prints (it picks a free loopback port)."""
    store = f"sqlite:///{tmp_path_factory.mktemp('local') / 'local.db'}"
    with Memory(store) as memory:
        memory.add("frank keeps bees on the roof", user_id="frank", infer=False)
    proc = subprocess.Popen([sys.executable, "-m", "engramdb", "ui", "--store", store, "--no-open"],
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()  # printed once the socket listens: no polling needed
    found = re.search(r"inspector at (http://127\.0\.0\.1:\d+/ui/)", line)
    assert found, line
    yield found.group(1)
    proc.terminate()
    proc.wait(10)
    proc.stderr.close()


def test_engramdb_ui_opens_a_local_inspector_with_no_key(page: Page, local_ui: str) -> None:
    page.goto(local_ui)
    expect(page.get_by_text("Local store · no key needed")).to_be_visible()
    expect(page.get_by_label("API key")).to_be_hidden()
    expect(users(page)).to_have_text(["frank 1"])
    expect(page.locator("table.memories")).to_contain_text("frank keeps bees on the roof")


def test_engramdb_ui_refuses_a_host_that_is_not_loopback(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'x.db'}"
    command = [sys.executable, "-m", "engramdb", "ui", "--host", "0.0.0.0", "--no-open", "--store", store]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "loopback" in done.stderr
    assert not (tmp_path / "x.db").exists()  # refused before the store was opened


def test_the_screenshot_script_draws_every_main_view(tmp_path: Path) -> None:
    """scripts/ui_screenshots.py makes the README's pictures; run here so it cannot rot."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "ui_screenshots.py"
    command = [sys.executable, str(script), "--out", str(tmp_path), "--chromium", _chromium()]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    drawn = sorted(p.name for p in tmp_path.glob("*.png"))
    assert drawn == ["browse.png", "edit-history.png", "jobs.png", "keys.png", "search.png", "sign-in.png",
                     "timeline.png"]  # fmt: skip
    assert all((tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in drawn)
