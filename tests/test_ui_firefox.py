"""The inspector in Firefox (the system's firefox-esr over Marionette, ``ui_firefox.py``)
against a real ``engramdb serve`` process: sign in, browse, search with explain, edit. A
smaller pass than the Chromium suite, for what differs between engines (ES modules, forms,
``datetime-local``, the layout's grid). Skipped only where no Firefox is installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_ui import Site
from test_ui import site as site  # the Chromium suite's seeded server, a module-scoped instance here
from ui_firefox import Tab, firefox, firefox_binary

BINARY = firefox_binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason="no firefox-esr or firefox installed")


@pytest.fixture(scope="module")
def tab() -> Iterator[Tab]:
    assert BINARY is not None
    with firefox(BINARY) as client:
        yield Tab(client)


def test_sign_in_browse_search_and_edit_in_firefox(tab: Tab, site: Site) -> None:
    tab.client.navigate(site.url + "/ui/")
    tab.fill("#api-key", "egm_not-a-key-of-this-server")
    tab.click("#sign-in-form button[type=submit]")
    tab.wait_text("#sign-in-error", "This key was refused")
    tab.fill("#api-key", site.keys["a"])
    tab.click("#sign-in-form button[type=submit]")
    tab.wait_text("nav[aria-label=Users]", "alice")
    assert "carol" not in tab.text("nav[aria-label=Users]")  # another tenant's user

    tab.click("nav[aria-label=Users] a[href='#/browse/alice']")
    tab.wait_text("table.memories", "Alice lives in Berlin")
    assert "Alice lives in Paris" not in tab.text("table.memories")  # superseded: out of the default list

    tab.client.navigate(site.url + "/ui/#/search/alice")
    tab.fill("#q", "where did Alice live in March 2024")
    tab.click("form[role=search] button[type=submit]")
    tab.wait_text(".hit", "Alice lives in Berlin")
    assert "BM25" in tab.text(".hit td[data-part=Lexical]")
    tab.wait_text("p.time-range", "2024-03-01 → 2024-04-01")
    tab.wait_text("section[aria-label=Context] pre", "Alice lives in Berlin")

    tab.client.navigate(f"{site.url}/ui/#/memory/{site.ids['coffee']}")
    tab.fill("form[aria-label=Edit] textarea[name=text]", "dave drinks mint tea")
    tab.click("form[aria-label=Edit] button[type=submit]")
    tab.wait_text("#status", "Saved")
    tab.wait_text("blockquote.memory-text", "dave drinks mint tea")
    tab.wait_text("section[aria-label=History]", "dave drinks coffee")  # the old text, kept
    assert tab.foreign_requests() == []
