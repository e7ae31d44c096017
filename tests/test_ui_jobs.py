"""The inspector's Jobs view in a real browser against a real ``engramdb serve`` process whose
LLM is the scripted OpenAI-compatible server: a job that failed while the LLM answered with a
broken page is listed, retried while it is still broken (failed again, the new error shown),
then retried once it answers (done, its fact shown and stored).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from test_jobs import Site, failed_jobs_site
from test_provider_faults import broken, fact
from ui_browser import sign_in as sign_in_at

from engramdb.testing import ScriptedOpenAIServer


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, ScriptedOpenAIServer]]:
    with failed_jobs_site(tmp_path_factory.mktemp("ui-jobs")) as served:
        yield served


def sign_in(page: Page, site: Site, key: str) -> None:
    sign_in_at(page, site, key, "#/jobs")
    expect(page.get_by_role("heading", name="Extraction jobs")).to_be_visible()


def test_a_failed_job_is_retried_from_the_page(page: Page, site: tuple[Site, ScriptedOpenAIServer]) -> None:
    s, llm = site
    sign_in(page, s, "a")
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(2)
    alice = page.locator(f"tr[data-id='{s.jobs['alice']}']")
    expect(alice).to_contain_text("user alice")
    expect(alice.locator(".state")).to_have_text("failed")
    expect(alice.locator("td.job-error")).to_contain_text("not a chat completion")

    llm.script(broken("empty"))
    alice.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("alert")).to_contain_text("failed again")
    expect(alice.locator("td").nth(4)).to_have_text("2")  # attempts: the retry counted

    llm.script(fact("Alice is tall"))
    alice.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("alert")).to_contain_text("done")
    expect(alice.locator(".state")).to_have_text("done")
    expect(alice).to_contain_text("Alice is tall")
    expect(alice.get_by_role("button", name="Retry")).to_have_count(0)  # done: nothing left to retry

    page.get_by_label("State").select_option("done")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Alice is tall")
    rows.first.get_by_role("link", name="Alice is tall").click()  # the fact the retry derived, stored
    expect(page.locator("blockquote.memory-text")).to_have_text("Alice is tall")
    expect(page.get_by_role("region", name="Source messages")).to_contain_text("I'm tall")
    page.goto(f"{s.url}/ui/#/jobs")
    expect(rows).to_have_count(1)  # the failed list: bob's job only
    expect(rows.first).to_contain_text("user bob")


def test_jobs_are_confined_to_the_keys_tenant_and_users(page: Page, site: tuple[Site, ScriptedOpenAIServer]) -> None:
    s, _ = site
    sign_in(page, s, "b")
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("user carol")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, s, "a_alice")
    expect(page.locator("table.jobs")).to_be_visible()  # drawn: a filter chosen before would be drawn over
    page.get_by_label("State").select_option("any")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("user alice")
    expect(page.locator("table.jobs")).not_to_contain_text("bob")
