"""In a real browser (Playwright driving Debian's Chromium): sign in, upload a model, move a
slider and see the numbers and the chart change, save and compare two scenarios, run the
optimiser, download the report. Screenshots go to $NEEDSLED_ARTIFACTS (CI keeps them).

The application runs in uvicorn on a free port in a background thread, with its strict
Content Security Policy: the test also fails on any CSP violation or script error, so the
charts are shown to work without inline script or eval.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from web_helpers import PASSWORD, LiveServer, add_user, serve_in_thread
from web_models import small_model, zipped

pytest.importorskip("playwright")
from playwright.sync_api import ConsoleMessage, Page, expect

pytestmark = [pytest.mark.slow]
WAIT_MS = 240_000  # a model's first explorer, the optimiser and the report on a busy machine


@pytest.fixture
def live(app_factory: Callable[..., FastAPI]) -> Iterator[LiveServer]:
    app = app_factory(replicates=40, report_replicates=20)
    add_user(app, "Example PCC", "analyst@example.org", "commissioner")
    server = serve_in_thread(app)
    yield server
    server.server.should_exit = True
    server.thread.join(10)


def _shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _summary_text(page: Page) -> str:
    return page.locator("#summary table").inner_text()


def _wait_up_to_date(page: Page, updates: int) -> None:
    page.wait_for_function(
        "n => Number(document.getElementById('explorer').dataset.updates || 0) >= n",
        arg=updates,
        timeout=WAIT_MS,
    )
    expect(page.locator("#status")).to_contain_text("Up to date")


def test_a_commissioner_in_the_browser(
    page: Page, live: LiveServer, tmp_path: Path, artifacts: Path
) -> None:
    problems: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" or "Content Security Policy" in msg.text:
            problems.append(f"console {msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.set_default_timeout(60_000)
    url = live.url

    # keyboard: the first Tab lands on the skip link
    page.goto(url + "/signin")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to main content")
    page.get_by_label("Email address").fill("analyst@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))

    # upload the example model (cut small), zipped as a person would zip the folder
    model_zip = tmp_path / "small-london.zip"
    model_zip.write_bytes(zipped(small_model(tmp_path / "small-london")))
    page.goto(url + "/models")
    page.get_by_label("Name for the model").fill("Small London")
    page.get_by_label("Files").set_input_files(str(model_zip))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Small London")
    _shot(page, artifacts, "1-model")

    # the explorer: wait for the first full result, then move a slider with the keyboard
    page.get_by_role("link", name="Explore scenarios").click()
    _wait_up_to_date(page, 1)
    before = _summary_text(page)
    chart_before = page.locator("#charts svg").first.inner_html()
    assert page.locator("#charts svg").count() >= 1
    _shot(page, artifacts, "2-explorer")
    slider = page.get_by_label("Police recorded crimes: slider")
    slider.focus()
    for _ in range(4):  # four steps of 5%: +20%
        page.keyboard.press("ArrowRight")
    expect(page.get_by_label("Police recorded crimes: value")).to_have_value("20")
    _wait_up_to_date(page, 2)
    after = _summary_text(page)
    assert after != before  # the numbers changed
    assert page.locator("#charts svg").first.inner_html() != chart_before  # and the chart
    _shot(page, artifacts, "3-explorer-moved")

    # save it, then a second one typed into the number box
    page.get_by_label("Scenario name").fill("Reports up a fifth")
    page.get_by_role("button", name="Save scenario").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports up a fifth")
    page.get_by_role("link", name="Open in the explorer").click()
    _wait_up_to_date(page, 1)
    page.get_by_label("Police recorded crimes: value").fill("50")
    page.get_by_label("Police recorded crimes: value").dispatch_event("change")
    _wait_up_to_date(page, 2)
    page.get_by_label("Scenario name").fill("Reports up a half")
    page.get_by_role("button", name="Save scenario").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports up a half")

    # compare them side by side
    page.get_by_role("link", name="Scenarios", exact=True).click()
    page.get_by_label("Compare Reports up a fifth").check()
    page.get_by_label("Compare Reports up a half").check()
    page.get_by_role("button", name=re.compile("Compare the ticked")).click()
    boxes = page.locator(".scenario-results")
    expect(boxes).to_have_count(2)
    for i in range(2):
        expect(boxes.nth(i)).to_have_attribute("data-ready", "1", timeout=WAIT_MS)
    texts = [boxes.nth(i).locator("table").inner_text() for i in range(2)]
    assert texts[0] != texts[1]
    _shot(page, artifacts, "4-compare")

    # the optimiser: the plan and the marginal-money curve
    page.goto(url + "/models")
    page.get_by_role("link", name="Small London").click()
    page.get_by_role("link", name="Plan within a budget").click()
    page.get_by_label(re.compile("Budgets on the marginal-money curve")).fill("2")
    page.get_by_role("button", name="Find the best plan").click()
    expect(page.get_by_role("heading", name="The plan by service")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#curve-chart")).to_have_attribute("data-ready", "1")
    assert page.locator("#curve-chart svg").count() == 1
    _shot(page, artifacts, "5-plan")

    # the report, and a download
    page.get_by_role("link", name="Small London").click()
    page.get_by_role("button", name=re.compile("Make the report")).click()
    expect(page.locator("#report-status")).to_contain_text("Ready to download", timeout=WAIT_MS)
    _shot(page, artifacts, "6-report")
    with page.expect_download() as info:
        page.get_by_role("link", name="report.html").click()
    saved = artifacts / "report.html"
    info.value.save_as(saved)
    assert saved.stat().st_size > 100_000  # the report with Vega inlined, to work offline
    with page.expect_download() as info:
        page.get_by_role("link", name="charts.zip").click()
    info.value.save_as(artifacts / "charts.zip")

    # large type for a projector
    page.get_by_role("button", name="Large type").click()
    assert "large" in (page.locator("html").get_attribute("class") or "")
    _shot(page, artifacts, "7-large-type")

    assert problems == [], problems


@pytest.fixture
def live_returns(app_factory: Callable[..., FastAPI], tmp_path: Path) -> Iterator[LiveServer]:
    """A server with a commissioner's model whose directory lists provider RCC for ISVA in
    two areas, and RCC's account."""
    from sqlalchemy import select

    from needsled.web import actions
    from needsled.web.auth import Principal
    from needsled.web.db import User

    app = app_factory(warm_explorers=False)
    add_user(app, "Example PCC", "analyst@example.org", "commissioner")
    add_user(app, "Example PCC", "lead@rcc.example.org", "provider", provider="RCC")
    folder = small_model(tmp_path / "m", directory=[("ISVA", "RCC", "0 1"), ("IDVA", "DAS", "")])
    st = app.state.needsled
    with st.store.session() as db:
        comm = db.scalar(select(User).where(User.email == "analyst@example.org"))
        assert comm is not None
        db.expunge(comm)
    actions.upload_model(
        st, Principal(comm, None, None), "Small London", [("m.zip", zipped(folder))], "t"
    )
    app.state.model_dir = folder
    server = serve_in_thread(app)
    yield server
    server.server.should_exit = True
    server.thread.join(10)


def test_a_provider_sends_a_return_in_the_browser(
    page: Page, live_returns: LiveServer, tmp_path: Path, artifacts: Path
) -> None:
    """A provider (with a provider code) finds the Returns page from the menu, downloads
    their Excel return, and uploads it filled in; the outcome tables show small counts as
    "<5". No CSP violation or script error on the way."""
    import openpyxl
    from web_returns import counts, fill

    from needsled.io.load import load_model

    problems: list[str] = []
    page.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" or "Content Security Policy" in msg.text
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.set_default_timeout(60_000)
    page.goto(live_returns.url + "/signin")
    page.get_by_label("Email address").fill("lead@rcc.example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Returns", exact=True).click()
    page.get_by_role("link", name="Small London").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Quarterly returns: Small London")
    page.get_by_label(re.compile("Quarter")).fill("2025-Q1")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the return").click()
    blank = tmp_path / "blank.xlsx"
    info.value.save_as(blank)
    assert info.value.suggested_filename == "return-RCC-2025-Q1.xlsx"
    sheets = openpyxl.load_workbook(blank).sheetnames[1:]
    assert len(sheets) == 2
    offences = load_model(live_returns.app.state.model_dir).offence_codes
    filled = fill(blank, tmp_path / "rcc-2025-q1.xlsx", {n: counts(offences) for n in sheets})
    page.get_by_label("Returns (.xlsx)").set_input_files(str(filled))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("status")).to_have_text("2 return(s) stored.")
    journeys = page.locator("table[aria-labelledby='table-journeys']")
    expect(journeys).to_contain_text("<5")
    _shot(page, artifacts, "8-provider-returns")
    assert problems == [], problems
