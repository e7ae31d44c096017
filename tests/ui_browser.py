"""What the inspector's browser tests share: Chromium, and tabs that may reach loopback only.

The browser is the system's headless Chromium (see test_docs_browser.py). A tab records every
request for another host (aborted) and every uncaught script error; a test whose page made
either fails as the tab closes, so the inspector is proven offline and free of script faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Route, expect, sync_playwright
from test_docs_browser import LOCAL, _chromium

WAIT_MS = 30_000  # an upper bound on waiting for the page, not a speed requirement
expect.set_options(timeout=WAIT_MS)


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def offline_tab(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) that may reach loopback only."""
    blocked: list[dict[str, Any]] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL:
            route.continue_()
        else:
            blocked.append({"url": route.request.url, "type": route.request.resource_type})
            route.abort("internetdisconnected")

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    tab.route("**/*", only_local)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert blocked == [], blocked
    assert errors == [], errors  # no uncaught script error on any page


def sign_in(page: Page, site: Any, key: str, fragment: str = "") -> None:
    """Sign in to ``site`` (its ``url``, and its ``keys`` by name) with the key ``key``."""
    page.goto(f"{site.url}/ui/{fragment}")
    page.get_by_label("API key").fill(site.keys[key])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Views")).to_be_visible()


def users(page: Page) -> Any:
    """The links of the Users list (browse view)."""
    return page.get_by_role("navigation", name="Users").get_by_role("link")
