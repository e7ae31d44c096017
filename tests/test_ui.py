"""The memory inspector (/ui) in a real browser against a real ``engramdb serve`` process.

The store is a real SQLite file seeded before the server starts; the browser is the system's
headless Chromium, in tabs where every request for another host is aborted and fails the test
(``ui_browser.py``), so the inspector is proven offline. Every wait is one of Playwright's
auto-waiting expectations, never a sleep.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect
from test_server import _start, _stop
from ui_browser import sign_in, users

from engramdb import Client, Memory
from engramdb.server import create_key


@dataclass
class Site:
    url: str
    store: str
    keys: dict[str, str]
    ids: dict[str, str]


def _seed(store: str) -> tuple[dict[str, str], dict[str, str]]:
    with Memory(store) as memory:
        a, b = memory.for_tenant("tenant-a"), memory.for_tenant("tenant-b")
        said = {"role": "user", "name": "Alice"}
        a.add([{**said, "content": "I live in Paris"}], user_id="alice", session_id="s1",
              occurred_at="2024-01-10T09:00:00Z", metadata={"topic": "home"})  # fmt: skip
        moved = a.add([{**said, "content": "I moved to Berlin"}], user_id="alice", session_id="s2",
                      occurred_at="2024-03-02T09:00:00Z")  # fmt: skip
        for n in range(60):  # more than a page: the list must page, not load the scope
            a.add(f"bob note number {n}", user_id="bob", infer=False)
        ids = {
            "berlin": moved.results[1].id,
            "coffee": a.add("dave drinks coffee", user_id="dave", infer=False).results[0].id,
            "walks": a.add("dave walks to work", user_id="dave", infer=False).results[0].id,
            "bike": a.add("dave owns a bicycle", user_id="dave", infer=False).results[0].id,
        }
        a.add("erin collects stamps", user_id="erin", infer=False)
        b.add("carol plans to sail around Cape Horn", user_id="carol", infer=False)
        keys = {
            "a": create_key(memory.store, "tenant-a")[0],
            "b": create_key(memory.store, "tenant-b")[0],
            "a_alice": create_key(memory.store, "tenant-a", user_ids=["alice"])[0],
            "admin_a": create_key(memory.store, "tenant-a", admin=True, name="ops")[0],
            "admin_alice": create_key(memory.store, "tenant-a", user_ids=["alice"], admin=True)[0],
        }
    return keys, ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    store = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'ui.db'}"
    keys, ids = _seed(store)
    proc, url = _start(store)
    yield Site(url, store, keys, ids)
    _stop(proc)


# --- the server side ---------------------------------------------------------------------


def test_the_inspector_is_served_from_the_package_with_a_strict_policy(site: Site) -> None:
    moved = httpx.get(site.url + "/ui", follow_redirects=False)
    assert moved.status_code == 307 and moved.headers["location"] == "/ui/"
    index = httpx.get(site.url + "/ui/")
    assert index.status_code == 200 and "memory inspector" in index.text
    assert "default-src 'self'" in index.headers["content-security-policy"]
    script = httpx.get(site.url + "/ui/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    missing = httpx.get(site.url + "/ui/nope.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_scopes_lists_only_what_the_key_reaches(site: Site) -> None:
    def scope_users(key: str, **query: str) -> set[str | None]:
        answer = httpx.get(site.url + "/v1/scopes", params=query, headers={"Authorization": f"Bearer {site.keys[key]}"})
        assert answer.status_code == 200, answer.text
        return {s["user_id"] for s in answer.json()}

    assert {"alice", "bob", "dave"} <= scope_users("a") and "carol" not in scope_users("a")
    assert scope_users("b") == {"carol"}
    assert scope_users("a_alice") == {"alice"}
    refused = httpx.get(site.url + "/v1/scopes", params={"user_id": "bob"},
                        headers={"Authorization": f"Bearer {site.keys['a_alice']}"})  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert httpx.get(site.url + "/v1/scopes").status_code == 401
    with Client(site.url, site.keys["a_alice"]) as client:  # the client reads the same route
        assert {s.user_id for s in client.scopes()} == {"alice"}
        assert all(s.memories > 0 for s in client.scopes(user_id="alice"))
        inactive = client.get_all(user_id="alice", kind="fact", include_inactive=True).results
        assert {m.state.value for m in inactive} == {"active", "superseded"}


def test_listing_with_inactive_memories_shows_superseded_ones(site: Site) -> None:
    headers = {"Authorization": f"Bearer {site.keys['a']}"}
    query = {"user_id": "alice", "kind": "fact"}
    active = httpx.get(site.url + "/v1/memories", params=query, headers=headers).json()["results"]
    every = httpx.get(site.url + "/v1/memories", params={**query, "include_inactive": "true"}, headers=headers)
    assert [m["memory"] for m in active] == ["Alice lives in Berlin"]
    assert {(m["memory"], m["state"]) for m in every.json()["results"]} == {
        ("Alice lives in Paris", "superseded"), ("Alice lives in Berlin", "active")}  # fmt: skip


# --- signing in ----------------------------------------------------------------------------


def test_a_bad_key_is_refused_with_a_visible_message(page: Page, site: Site) -> None:
    page.goto(site.url + "/ui/")
    page.get_by_label("API key").fill("egm_not-a-key-of-this-server")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("This key was refused")
    expect(page.get_by_role("navigation", name="Views")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0  # a refused key is not kept


def test_the_key_is_kept_for_the_tab_and_signing_out_forgets_it(page: Page, site: Site) -> None:
    sign_in(page, site, "a")
    page.reload()
    expect(users(page).filter(has_text="alice")).to_be_visible()  # signed in still, from sessionStorage
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


# --- browsing ------------------------------------------------------------------------------


def test_browse_users_memories_states_and_sources(page: Page, site: Site) -> None:
    sign_in(page, site, "a")
    for user in ("alice", "bob", "dave"):
        expect(users(page).filter(has_text=user)).to_be_visible()
    expect(users(page).filter(has_text="carol")).to_have_count(0)
    users(page).filter(has_text="alice").click()
    table = page.locator("table.memories")
    expect(table).to_contain_text("Alice lives in Berlin")
    expect(table).not_to_contain_text("Alice lives in Paris")  # superseded: out of the default list
    page.get_by_label("State").select_option("any")
    page.get_by_role("button", name="Apply filters").click()
    paris = table.locator("tr", has_text="Alice lives in Paris")
    expect(paris.locator(".state")).to_have_text("superseded")
    page.get_by_label("Metadata key").fill("topic")
    page.get_by_label("Metadata value").fill("home")
    page.get_by_role("button", name="Apply filters").click()
    expect(table.locator("tbody tr")).to_have_count(2)  # the message, and the fact drawn from it keeps its metadata
    expect(table).to_contain_text("I live in Paris")
    expect(table).not_to_contain_text("Berlin")
    page.get_by_label("Metadata key").fill("")
    page.get_by_label("Kind").select_option("fact")
    page.get_by_label("From").fill("2024-03-01")
    page.get_by_label("To").fill("2024-03-31")
    page.get_by_role("button", name="Apply filters").click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Alice lives in Berlin")
    table.get_by_role("link", name="Alice lives in Berlin").click()
    sources = page.get_by_role("region", name="Source messages")
    expect(sources).to_contain_text("I moved to Berlin")
    expect(page.get_by_role("region", name="Fields")).to_contain_text("residence")


def test_a_large_scope_is_paged_not_loaded_whole(page: Page, site: Site) -> None:
    sign_in(page, site, "a", "#/browse/bob")
    rows = page.locator("table.memories tbody tr")
    expect(page.get_by_text("50 of 60 shown")).to_be_visible()
    expect(rows).to_have_count(50)
    page.get_by_role("button", name="Load more").click()
    expect(page.get_by_text("60 of 60 shown")).to_be_visible()
    expect(rows).to_have_count(60)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()


# --- confinement ---------------------------------------------------------------------------


def test_a_second_tenants_key_sees_none_of_the_first(page: Page, site: Site) -> None:
    sign_in(page, site, "b")
    expect(users(page)).to_have_text(["carol 1"])
    expect(page.locator("table.memories")).to_contain_text("carol plans to sail")
    page.goto(f"{site.url}/ui/#/memory/{site.ids['berlin']}")
    expect(page.get_by_role("alert").filter(has_text="not_found")).to_be_visible()
    expect(page.locator("#view")).not_to_contain_text("Berlin")
    page.goto(f"{site.url}/ui/#/browse/alice")
    expect(page.locator("table.memories tbody tr")).to_have_count(0)


def test_a_user_limited_key_sees_only_its_users(page: Page, site: Site) -> None:
    sign_in(page, site, "a_alice")
    expect(users(page)).to_have_count(1)
    expect(users(page).first).to_contain_text("alice")
    page.goto(f"{site.url}/ui/#/browse/bob")
    expect(page.get_by_role("alert")).to_contain_text("403 forbidden")
    expect(page.locator("table.memories")).not_to_contain_text("bob note")


# --- search --------------------------------------------------------------------------------


def test_search_shows_each_part_of_the_score_and_the_context_block(page: Page, site: Site) -> None:
    sign_in(page, site, "a", "#/search/alice")
    page.get_by_label("Query").fill("where does Alice live")
    page.get_by_role("button", name="Search").click()
    first = page.locator(".hit").first
    expect(first).to_contain_text("Alice lives in Berlin")
    explain = first.locator("table.explain")
    for part in ("Dense", "Lexical", "Fused", "Speaker", "When", "Holds", "Recency", "Importance", "Cosine",
                 "Coverage", "Reach", "Relevance"):  # fmt: skip
        expect(explain.get_by_role("columnheader", name=part)).to_be_visible()
    expect(explain.locator("td[data-part=Relevance]")).to_have_text(re.compile(r"0\.\d{3}|1\.000"))
    expect(first).to_contain_text(re.compile(r"relevance (0\.\d{3}|1\.000)"))
    expect(explain.locator("td[data-part=Dense]")).to_contain_text("#1 · 0.")  # its rank and cosine similarity
    expect(explain.locator("td[data-part=Lexical]")).to_contain_text("BM25")
    expect(explain.locator("td[data-part=Fused]")).to_have_text(re.compile(r"\d\.\d{4}"))
    expect(page.locator(".hit", has_text="Alice lives in Paris")).to_have_count(0)  # superseded: not recalled
    context = page.get_by_role("region", name="Context")
    expect(context.locator("pre")).to_contain_text("Alice lives in Berlin")
    expect(context).to_contain_text("of 400 tokens")
    cited = context.locator("tbody tr", has_text="Alice lives in Berlin").first
    expect(cited.locator("td").first).to_have_text(re.compile(r"\[\d+\]"))
    page.get_by_label("include no-longer-valid").check()
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".hit", has_text="Alice lives in Paris").locator(".state")).to_have_text("superseded")


def test_a_question_about_nothing_said_finds_nothing_unless_the_threshold_is_zero(page: Page, site: Site) -> None:
    sign_in(page, site, "a", "#/search/alice")
    page.get_by_label("Query").fill("which telescope brand do astronomers prefer")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("region", name="Results")).to_contain_text("no memory is relevant enough")
    page.get_by_label("Relevance threshold").fill("0")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".hit").first).to_be_visible()  # the closest, however far


# --- correcting ----------------------------------------------------------------------------


def test_editing_a_memory_keeps_the_old_text_in_its_history(page: Page, site: Site) -> None:
    sign_in(page, site, "a", f"#/memory/{site.ids['coffee']}")
    edit = page.get_by_role("form", name="Edit")
    edit.get_by_label("Text").fill("dave drinks green tea")
    edit.get_by_label("Metadata (JSON object)").fill('{"source": "support ticket 12"}')
    edit.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Saved")
    expect(page.locator("blockquote.memory-text")).to_have_text("dave drinks green tea")
    update = page.get_by_role("region", name="History").locator("tr", has_text="UPDATE")
    expect(update.locator("td").nth(2)).to_contain_text("dave drinks coffee")  # before
    expect(update.locator("td").nth(3)).to_contain_text("dave drinks green tea")  # after
    expect(update.locator("td").nth(3)).to_contain_text("support ticket 12")


def test_metadata_that_is_not_an_object_is_refused_in_the_page(page: Page, site: Site) -> None:
    sign_in(page, site, "a", f"#/memory/{site.ids['bike']}")
    edit = page.get_by_role("form", name="Edit")
    edit.get_by_label("Metadata (JSON object)").fill("[1, 2")
    edit.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Metadata must be a JSON object")
    expect(page.get_by_role("region", name="History")).not_to_contain_text("UPDATE")  # nothing was sent


def test_forgetting_a_memory_asks_first_then_removes_it(page: Page, site: Site) -> None:
    sign_in(page, site, "a", f"#/memory/{site.ids['walks']}")
    page.get_by_role("button", name="Forget this memory").click()
    page.get_by_role("button", name="Cancel").click()  # asked, not done
    expect(page.locator("blockquote.memory-text")).to_have_text("dave walks to work")
    page.get_by_role("button", name="Forget this memory").click()
    page.get_by_role("button", name="Yes, forget").click()
    expect(page.get_by_role("alert")).to_contain_text("Memory forgotten")
    expect(page.get_by_role("heading", name="Memories of dave")).to_be_visible()
    expect(page.locator("table.memories")).not_to_contain_text("dave walks to work")
    page.goto(f"{site.url}/ui/#/memory/{site.ids['walks']}")
    expect(page.get_by_role("alert")).to_contain_text("404 not_found")


def test_deleting_a_user_for_good_needs_a_confirmation(page: Page, site: Site) -> None:
    sign_in(page, site, "a", "#/browse/erin")
    expect(page.locator("table.memories")).to_contain_text("erin collects stamps")
    page.get_by_text("Delete this user").click()
    page.get_by_role("button", name="Delete all of erin's memories").click()
    page.get_by_role("button", name="Yes, delete for good").click()
    expect(page.get_by_role("alert")).to_contain_text("Deleted 1 memories of erin")
    expect(users(page).filter(has_text="alice")).to_be_visible()
    expect(users(page).filter(has_text="erin")).to_have_count(0)


# --- keys ----------------------------------------------------------------------------------


def test_an_admin_key_creates_a_key_shown_once_and_revokes_it(page: Page, site: Site) -> None:
    sign_in(page, site, "admin_a", "#/keys")
    listing = page.locator("table.keys")
    expect(listing).to_contain_text("ops")
    create = page.get_by_role("form", name="Create a key")
    create.get_by_label("Name").fill("helpdesk")
    create.get_by_label("User ids").fill("alice, bob")
    create.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret")
    expect(secret).to_have_value(re.compile(r"^egm_\S{20,}$"))
    row = listing.locator("tr", has_text="helpdesk")
    expect(row).to_contain_text("alice, bob")
    made = secret.input_value()
    assert httpx.get(site.url + "/v1/scopes", headers={"Authorization": f"Bearer {made}"}).status_code == 200
    row.get_by_role("button", name="Revoke").click()
    row.get_by_role("button", name="Yes, revoke").click()
    expect(row).to_contain_text("revoked")
    assert httpx.get(site.url + "/v1/scopes", headers={"Authorization": f"Bearer {made}"}).status_code == 401
    page.reload()
    expect(page.get_by_label("Secret")).to_have_count(0)  # shown once: not after a reload


def test_a_key_revoked_while_signed_in_ends_the_session(page: Page, site: Site) -> None:
    with Memory(site.store) as memory:
        secret, key = create_key(memory.store, "tenant-a", name="short-lived")
    page.goto(site.url + "/ui/")
    page.get_by_label("API key").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(users(page).filter(has_text="alice")).to_be_visible()
    admin = {"Authorization": f"Bearer {site.keys['admin_a']}"}
    assert httpx.delete(f"{site.url}/v1/keys/{key.id}", headers=admin).status_code == 200
    users(page).filter(has_text="bob").click()
    expect(page.locator("#sign-in-error")).to_contain_text("The key was refused")
    expect(page.get_by_role("navigation", name="Views")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_server_refuses_what_a_key_may_not_do_and_the_page_says_so(page: Page, site: Site) -> None:
    sign_in(page, site, "a", "#/keys")  # not an admin key
    expect(page.get_by_role("alert")).to_contain_text("403 forbidden: managing keys needs an admin key")
    page.goto(f"{site.url}/ui/#/keys")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site, "admin_alice", "#/keys")  # an admin of alice only: may not mint a key for every user
    expect(page.locator("table.keys")).not_to_contain_text("ops")  # reaches further than this key: not listed
    create = page.get_by_role("form", name="Create a key")
    create.get_by_label("Name").fill("too wide")
    create.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_contain_text("403 forbidden")
    expect(page.get_by_label("Secret")).to_have_count(0)


# --- accessibility basics ------------------------------------------------------------------

UNLABELLED = """[...document.querySelectorAll('input, select, textarea')]
  .filter((e) => e.getClientRects().length && !e.labels.length && !e.getAttribute('aria-label'))
  .map((e) => e.outerHTML)"""


def test_signing_in_by_keyboard_and_every_control_has_a_label(page: Page, site: Site) -> None:
    page.goto(site.url + "/ui/")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(site.keys["admin_a"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation", name="Views")).to_be_visible()
    views = (
        "#/browse/alice",
        "#/search/alice",
        "#/keys",
        "#/timeline/alice",
        f"#/memory/{site.ids['berlin']}",
        "#/jobs",
    )
    for fragment in views:
        page.goto(f"{site.url}/ui/{fragment}")
        expect(page.locator("#view h2")).to_be_focused()  # a view change moves focus to its heading
        assert page.evaluate(UNLABELLED) == [], fragment
    page.goto(f"{site.url}/ui/#/browse/alice")
    expect(page.locator("#view h2")).to_be_focused()
    page.keyboard.press("Tab")  # from the heading to the first user: reachable, and the ring shows where
    expect(users(page).first).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"


# --- the timeline ----------------------------------------------------------------------------


def test_the_timeline_draws_memories_sessions_and_what_replaced_what(page: Page, site: Site) -> None:
    sign_in(page, site, "a", "#/timeline/alice")
    chain = page.get_by_role("region", name="Supersession chains").locator("li.chain")
    expect(chain).to_have_count(1)
    expect(chain).to_have_text(re.compile(r"Alice lives in Paris.*→.*Alice lives in Berlin"))
    axis = page.get_by_role("img", name=re.compile("time axis"))
    expect(axis.locator("g.mark")).to_have_count(4)  # two messages, two facts
    expect(axis.locator("rect.session")).to_have_count(2)  # s1 and s2
    events = page.locator("table.events tbody tr")
    expect(events.first).to_contain_text("Paris")  # January
    expect(events.last).to_contain_text("Berlin")  # March
