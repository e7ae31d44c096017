"""Draw the memory inspector's main views as PNG files (the README's pictures, ``docs/ui/``).

A demo store is seeded in a temporary directory, a real ``engramdb serve`` process serves it,
and the system's headless Chromium (``apt-get install chromium``) signs in with an admin key
and visits sign-in, browse, search with explain, a memory's edit form and history, keys, the
timeline and the failed extraction jobs. Every request for another host is aborted, as in the
tests. The failed job is made by the package's scripted LLM server answering with a broken
page, as an LLM outage would.

Usage::

    python scripts/ui_screenshots.py [--out docs/ui] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Page, Route, expect, sync_playwright

from engramdb import Memory, MemoryConfig
from engramdb.config import LLMConfig
from engramdb.server import create_key
from engramdb.testing import Reply, ScriptedOpenAIServer

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "ui"
LOCAL = {"127.0.0.1", "localhost", "::1"}


def seed(store: str) -> tuple[str, str]:
    """A small tenant: Alice moves from Paris to Berlin, a few preferences, a teammate's notes."""
    with Memory(store) as memory:
        m = memory.for_tenant("acme")
        said = {"role": "user", "name": "Alice"}
        turns = [
            ("s1", "2024-01-10T09:00:00Z", "I live in Paris"),
            ("s1", "2024-01-10T09:01:00Z", "I prefer aisle seats"),
            ("s2", "2024-02-14T18:30:00Z", "I'm vegetarian and allergic to peanuts"),
            ("s3", "2024-03-02T08:15:00Z", "I moved to Berlin"),
            ("s3", "2024-03-02T08:16:00Z", "I work at Globex as a product manager"),
        ]
        for session, when, text in turns:
            m.add([{**said, "content": text}], user_id="alice", session_id=session, occurred_at=when,
                  metadata={"channel": "chat"})  # fmt: skip
        fact = m.get_all(user_id="alice", kind="preference").results[0].id
        m.update(fact, "The user prefers window seats", metadata={"channel": "chat", "edited_by": "support"})
        for text in ("bob likes green tea", "bob is training for a marathon"):
            m.add(text, user_id="bob", infer=False)
        m.add("Always answer in the user's language", agent_id="travel-planner", infer=False)
        secret, _ = create_key(memory.store, "acme", admin=True, name="support")
        create_key(memory.store, "acme", user_ids=["alice"], name="alice's agent")
    failed_job(store)
    return secret, fact


def failed_job(store: str) -> None:
    """One extraction job of Alice's that failed for good: the LLM answered with an HTML page."""
    with ScriptedOpenAIServer() as llm:
        llm.script(Reply(content="", body="html"))
        config = MemoryConfig(llm=LLMConfig(model="demo", base_url=llm.base_url, api_key="-", max_retries=0),
                              extraction_attempts=1)  # fmt: skip
        with Memory(store, config=config) as m:
            said = [{"role": "user", "name": "Alice", "content": "I'm learning Portuguese for the Lisbon office"}]
            m.for_tenant("acme").add(said, user_id="alice", session_id="s4", occurred_at="2024-03-09T10:00:00Z")


def serve(store: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "engramdb", "serve", "--store", store, "--port", str(port)],
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def only_local(route: Route) -> None:
    if urlsplit(route.request.url).hostname in LOCAL:
        route.continue_()
    else:
        route.abort("internetdisconnected")


def shoot(page: Page, url: str, secret: str, fact: str, out: Path) -> None:
    expect.set_options(timeout=20_000)  # a loaded machine (the test suite beside it) draws slowly

    def snap(name: str, ready: Callable[[], None]) -> None:
        ready()
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        print(out / f"{name}.png")

    page.goto(url + "/ui/")
    page.get_by_label("API key").fill("egm_not-a-key-of-this-server")
    page.get_by_role("button", name="Sign in").click()
    snap("sign-in", lambda: expect(page.locator("#sign-in-error")).to_contain_text("refused"))
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.goto(url + "/ui/#/browse/alice")
    # the view draws its table once it has loaded: a filter chosen before would be drawn over
    expect(page.locator("table.memories")).to_contain_text("Alice lives in Berlin")
    page.get_by_label("State").select_option("any")
    page.get_by_role("button", name="Apply filters").click()
    snap("browse", lambda: expect(page.locator("table.memories")).to_contain_text("Alice lives in Paris"))
    page.goto(url + "/ui/#/search/alice")
    page.get_by_label("Query").fill("where did Alice live in March 2024?")
    page.get_by_label("Limit").fill("4")
    page.get_by_role("button", name="Search").click()
    snap("search", lambda: expect(page.locator("p.time-range")).to_contain_text("2024-03-01"))
    page.goto(f"{url}/ui/#/memory/{fact}")
    snap("edit-history", lambda: expect(page.get_by_role("region", name="History")).to_contain_text("UPDATE"))
    page.goto(url + "/ui/#/keys")
    snap("keys", lambda: expect(page.locator("table.keys")).to_contain_text("support"))
    page.goto(url + "/ui/#/timeline/alice")
    snap("timeline", lambda: expect(page.locator(".chains")).to_contain_text("Berlin"))
    page.goto(url + "/ui/#/jobs")
    snap("jobs", lambda: expect(page.locator("table.jobs")).to_contain_text("not a chat completion"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{Path(tmp) / 'demo.db'}"
        secret, fact = seed(store)
        proc, url = serve(store)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.route("**/*", only_local)
                shoot(page, url, secret, fact, args.out)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
