"""The inspector's newer views in a real browser against a real ``engramdb serve`` process: the
time range a search resolved to, agents and sessions that belong to no user, and a user whose
memories are all out of recall; each confined to the key's tenant and users."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from test_server import _start, _stop
from ui_browser import sign_in, users

from engramdb import Memory
from engramdb.server import create_key


@dataclass
class Site:
    url: str
    keys: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    store = f"sqlite:///{tmp_path_factory.mktemp('ui-scopes') / 'scopes.db'}"
    with Memory(store) as memory:
        a = memory.for_tenant("tenant-a")
        a.add("I went hiking in the hills", user_id="ana", occurred_at="2024-05-10T10:00:00Z", infer=False)
        a.add("ana reads a novel", user_id="ana", occurred_at="2024-05-02T10:00:00Z", infer=False)
        a.add("frank keeps bees", user_id="frank", infer=False)
        a.prune(user_id="frank", policy={"max_memories": 0})  # forgotten: nothing of frank in recall
        a.add("always answer in French", agent_id="planner", infer=False)
        a.add("ana asked the planner for trains", user_id="ana", agent_id="planner", infer=False)
        a.add("kiosk scratch note", session_id="kiosk-7", infer=False)
        said = {"role": "user", "name": "Eli", "content": "I grow tomatoes on the balcony"}
        a.add([said], user_id="eli", infer=False)
        memory.for_tenant("tenant-b").add("the rival agent's note", agent_id="rival", infer=False)
        keys = {
            "a": create_key(memory.store, "tenant-a")[0],
            "b": create_key(memory.store, "tenant-b")[0],
            "a_ana": create_key(memory.store, "tenant-a", user_ids=["ana"])[0],
        }
    proc, url = _start(store)
    yield Site(url, keys)
    _stop(proc)


def test_search_shows_the_time_range_the_query_resolved_to(page: Page, site: Site) -> None:
    sign_in(page, site, "a", "#/search/ana")
    page.get_by_label("Query").fill("what did ana do last Friday")
    page.get_by_label("Asked at (UTC, default now)").fill("2024-05-14T12:00")
    page.get_by_role("button", name="Search").click()
    span = page.locator("p.time-range")
    expect(span).to_contain_text("2024-05-10 → 2024-05-11")  # the Friday before Tuesday the 14th
    expect(span.locator("q")).to_have_text("last Friday")
    expect(page.locator(".hit").first).to_contain_text("hiking")  # what happened then ranks first
    page.get_by_label("Query").fill("what does ana read")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".hit").first).to_contain_text("novel")
    expect(span).to_be_hidden()  # no time named: no range


def test_search_shows_the_dense_query_without_the_speakers_names(page: Page, site: Site) -> None:
    sign_in(page, site, "a", "#/search/eli")
    page.get_by_label("Query").fill("what does Eli grow?")
    page.get_by_role("button", name="Search").click()
    dense = page.locator("p.dense-query")
    expect(page.locator(".hit").first).to_contain_text("tomatoes")
    expect(dense).to_be_hidden()  # off by default: the query is embedded as it is
    page.get_by_label("embed without speakers' names").check()
    page.get_by_role("button", name="Search").click()
    expect(dense.locator("q")).to_have_text("what does grow?")  # Eli speaks in the scope: left out
    expect(page.locator(".hit").first).to_contain_text("tomatoes")
    page.get_by_label("Query").fill("what grows on the balcony")
    page.get_by_role("button", name="Search").click()
    expect(dense).to_be_hidden()  # no speaker named: the query is embedded as it is


def test_a_user_with_nothing_in_recall_is_listed_and_shown(page: Page, site: Site) -> None:
    sign_in(page, site, "a")
    frank = users(page).filter(has_text="frank")
    expect(frank).to_contain_text("0 +1 inactive")
    frank.click()
    expect(page.locator("p.note")).to_contain_text("Nothing of frank is in recall")
    expect(page.get_by_label("State")).to_have_value("any")
    row = page.locator("table.memories tbody tr", has_text="frank keeps bees")
    expect(row.locator(".state")).to_have_text("forgotten")


def test_agents_and_sessions_without_a_user_are_browsed(page: Page, site: Site) -> None:
    sign_in(page, site, "a")
    agents = page.get_by_role("navigation", name="Agents").get_by_role("link")
    expect(agents).to_have_text(["planner 1"])  # ana's note with the planner is under ana
    agents.first.click()
    expect(page.get_by_role("heading", name="Memories of agent planner")).to_be_visible()
    table = page.locator("table.memories")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("always answer in French")
    expect(table).not_to_contain_text("trains")
    page.get_by_label("Kind").select_option("episode")
    page.get_by_role("button", name="Apply filters").click()  # the filters keep the agent's own scope
    expect(table.locator("tbody tr")).to_have_count(1)
    sessions = page.get_by_role("navigation", name="Sessions").get_by_role("link")
    expect(sessions).to_have_text(["kiosk-7 1"])
    sessions.first.click()
    expect(page.get_by_role("heading", name="Memories of session kiosk-7")).to_be_visible()
    expect(table).to_contain_text("kiosk scratch note")
    expect(page.get_by_text("Delete this user")).to_have_count(0)  # only a user is deleted whole


def test_agents_are_confined_to_the_keys_tenant_and_users(page: Page, site: Site) -> None:
    sign_in(page, site, "b")
    agents = page.get_by_role("navigation", name="Agents").get_by_role("link")
    expect(agents).to_have_text(["rival 1"])
    page.goto(f"{site.url}/ui/#/agent/planner")
    expect(page.locator("table.memories tbody tr")).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site, "a_ana")
    expect(users(page)).to_have_count(1)
    expect(page.get_by_role("navigation", name="Agents")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Sessions")).to_have_count(0)
    page.goto(f"{site.url}/ui/#/agent/planner")
    expect(page.get_by_role("alert")).to_contain_text("403 forbidden")
    expect(page.locator("#view")).not_to_contain_text("French")
