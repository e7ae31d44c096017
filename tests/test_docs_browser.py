"""/docs and /redoc in a real browser, with every request that leaves the machine blocked.

The server is a real ``engramdb serve`` process; the browser is the system's headless
Chromium, driven by Playwright (never a browser Playwright downloads). A page passes if it
renders the API's operations from what the server itself sends: a page still fetching its
scripts from a CDN stays blank here, as it would on a machine without a route to one.

Without Chromium the test fails in CI (``CI`` set: ``.ci/run`` installs it, so its absence is
a broken run) and is skipped elsewhere with the reason and the command that installs it, so a
developer's run of the suite still covers everything else.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from test_server import _start, _stop

CHROMIUM = "/usr/bin/chromium"
LOCAL = {"127.0.0.1", "localhost", "::1", "[::1]"}
RENDER_TIMEOUT_MS = 60_000  # an upper bound on waiting for the page, not a speed requirement


def _chromium() -> str:
    path = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if path:
        return path
    reason = "Debian's chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs it, so this run is broken", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'docs.db'}"
    proc, url = _start(store)  # API keys required, as deployed: the documents need none
    yield url
    _stop(proc)


@pytest.fixture
def offline(browser: Browser) -> Iterator[tuple[Page, list[dict[str, Any]]]]:
    """A page on which every request to another host is aborted, and the list of those requests."""
    blocked: list[dict[str, Any]] = []

    def only_local(route: Route) -> None:
        request = route.request
        if urlsplit(request.url).hostname in LOCAL:
            route.continue_()
        else:
            blocked.append({"url": request.url, "type": request.resource_type})
            route.abort("internetdisconnected")

    context = browser.new_context()
    page = context.new_page()
    page.route("**/*", only_local)
    yield page, blocked
    context.close()


def _assert_nothing_needed_from_outside(blocked: list[dict[str, Any]]) -> None:
    """No script, style, font or data came from elsewhere. ReDoc's footer links Redocly's logo,
    an image whose absence changes nothing else on the page; anything else is a fault."""
    needed = [b for b in blocked if b["type"] != "image"]
    assert needed == [], needed


def test_swagger_ui_renders_offline(offline: tuple[Page, list[dict[str, Any]]], server_url: str) -> None:
    page, blocked = offline
    page.goto(server_url + "/docs")
    search = page.locator(".opblock-summary-path[data-path='/v1/search']")
    expect(search).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(page.locator(".opblock-summary-path[data-path='/v1/memories']").first).to_be_visible()
    assert blocked == []  # Swagger UI asks for nothing from elsewhere
    css = [r for r in page.evaluate("performance.getEntriesByType('resource').map(e => e.name)") if ".css" in r]
    assert css and all(urlsplit(u).hostname in LOCAL for u in css)  # styled, by the server's own stylesheet


def test_redoc_renders_offline(offline: tuple[Page, list[dict[str, Any]]], server_url: str) -> None:
    page, blocked = offline
    page.goto(server_url + "/redoc")
    # ReDoc shows each operation's method and path in the right-hand panel once it has drawn the API
    endpoint = page.locator("[data-section-id='tag/memories/operation/search_v1_search_post']")
    expect(endpoint).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(endpoint.get_by_text("/v1/search", exact=True).first).to_be_visible()
    _assert_nothing_needed_from_outside(blocked)


def test_docs_assets_are_the_servers_own(server_url: str) -> None:
    """The scripts the pages load are answered by the server, not redirected elsewhere."""
    import httpx

    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        answer = httpx.get(f"{server_url}/docs/assets/{asset}", timeout=30)
        assert answer.status_code == 200 and len(answer.content) > 10_000, asset
    missing = httpx.get(f"{server_url}/docs/assets/nope.js", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
