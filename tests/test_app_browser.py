"""The students' view in a real browser: `clientsim-app` served, driven in headless Chromium.

Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it), driven by Playwright
for Python; never `playwright install`, which downloads a browser. The screenshots are kept
in results/browser-test/.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/lib/chromium/chromium"
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "results" / "browser-test"

pytest.importorskip("solara", reason="the browser view needs the viz extra")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
from appserver import serving  # noqa: E402

from sim.app.view import KNOBS  # noqa: E402

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (as .ci/run does)",
)


@pytest.fixture
def app_url():
    with serving() as url:
        yield url


def plots(page) -> bytes:
    """A screenshot of the page's main area (the plots, not the sidebar)."""
    return page.locator(".vue-grid-layout").screenshot()


def test_the_app_steps_a_slider_and_reset_change_the_plots_in_chromium(app_url):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            offline = []  # any request that leaves the machine would fail here: none may
            page.on("requestfailed", lambda request: offline.append(request.url))
            page.goto(app_url)
            step = page.get_by_role("button", name="Step")
            step.wait_for()
            page.get_by_text("Week 0 of").wait_for()
            start = plots(page)
            for week in range(1, 4):
                step.click()
                page.get_by_text(f"Week {week} of").wait_for()
            stepped = plots(page)
            page.screenshot(path=SHOTS / "stepped.png")
            assert stepped != start

            sliders = page.get_by_role("slider")
            difficult = sliders.nth(2 + list(KNOBS).index("difficult_share"))  # after Mesa's two
            difficult.focus()
            for _ in range(4):  # 10% -> 30% in steps of 5%
                difficult.press("ArrowRight")
            page.get_by_role("button", name="Reset").click()
            page.get_by_text("30% difficult clients").wait_for()
            page.get_by_text("Week 0 of").wait_for()
            for week in range(1, 3):
                step.click()
                page.get_by_text(f"Week {week} of").wait_for()
            page.get_by_role("button", name="▶").click()  # play until week 5, then pause
            page.get_by_text("Week 5 of").wait_for()
            page.get_by_role("button", name="❚❚").click()
            after_reset = plots(page)
            page.screenshot(path=SHOTS / "after-reset.png")
            assert after_reset != stepped
            assert not offline, f"requests failed (a CDN?): {offline}"
        finally:
            browser.close()
