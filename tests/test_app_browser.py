"""The students' view in a real browser: `clientsim-app` served, driven in headless Chromium.

Debian's Chromium (`apt-get install chromium`; `.ci/run` installs it), driven by Playwright
for Python; never `playwright install`, which downloads a browser. The screenshots are kept
in results/browser-test/.
"""

import os
import re
from pathlib import Path

import pytest

CHROMIUM = "/usr/lib/chromium/chromium"
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "results" / "browser-test"

pytest.importorskip("solara", reason="the browser view needs the viz extra")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
from appserver import serving  # noqa: E402

from sim.app.controls import DRAW_EVERY  # noqa: E402
from sim.app.view import KNOBS, knob_values  # noqa: E402

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (as .ci/run does)",
)
#: How the test moves each slider, in this order: keys pressed (quickly, as a student would), or
#: a click at a share of the slider's width (the mouse). Every knob moves off its starting
#: value; the last one takes several key presses and Reset follows at once: the browser sends
#: a slider's later values only after the server answered its first (Mesa's sliders then
#: built 3 fit_filter businesses where the slider showed 6).
MOVES = {
    "seed": 0.4,  # a click at 40 % of the way: about 40
    "serve_all": ["ArrowLeft"] * 3,  # 6 -> 3
    "threshold": ["ArrowRight"] * 4,  # 0.55 -> 0.75
    "difficult_share": ["ArrowRight"] * 4,  # 0.10 -> 0.30
    "demand_supply_ratio": ["ArrowRight"] * 3,  # 1.0 -> 1.3
    "word_of_mouth": ["Home"],  # 0.22 -> 0
    "fit_filter": ["ArrowRight"] * 4,  # 2 -> 6
}
#: What the page's caption says of the market Reset built, for each knob (a number pattern).
CAPTION = {
    "fit_filter": r"(\d+) fit_filter",
    "serve_all": r"(\d+) serve_all",
    "threshold": r"threshold ([\d.]+)",
    "difficult_share": r"(\d+)% difficult",
    "demand_supply_ratio": r"demand/supply ([\d.]+)",
    "word_of_mouth": r"word of mouth ([\d.]+)",
    "seed": r"seed (\d+)",
}


@pytest.fixture
def app_url():
    with serving() as url:
        yield url


#: Records the label of every button that shows it is busy (Vuetify's loading state), however
#: briefly: a Step may take less than a second.
WATCH_BUSY = """() => {
    window.busy = new Set();
    new MutationObserver(() => document.querySelectorAll(".v-btn--loading")
        .forEach(button => window.busy.add(button.textContent.trim())))
        .observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def plots(page) -> bytes:
    """A screenshot of the page's main area (the plots, not the sidebar)."""
    return page.locator(".vue-grid-layout").screenshot()


def move(knob, how) -> None:
    """Move the slider in `knob` (its box: label and slider) as `MOVES` says."""
    if isinstance(how, float):
        box = knob.locator(".v-slider").bounding_box()
        knob.page.mouse.click(box["x"] + how * box["width"], box["y"] + box["height"] / 2)
        return
    knob.get_by_role("slider").focus()
    for key in how:
        knob.get_by_role("slider").press(key)


def built(caption: str) -> dict[str, float]:
    """The knobs' values in the caption of the market shown (the server's model's config)."""
    values = {name: float(re.search(pattern, caption)[1]) for name, pattern in CAPTION.items()}
    values["difficult_share"] /= 100
    return values


def test_reset_builds_the_market_every_slider_shows_in_chromium(app_url):
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
            caption = page.locator("p", has_text="Week")
            page.get_by_text("Week 0 of").wait_for()
            page.evaluate(WATCH_BUSY)
            start = plots(page)

            # at once, while the server still draws the new page: the race Reset lost
            boxes = page.locator(".knob")  # the first: draw every n weeks
            knobs = {name: boxes.nth(1 + i) for i, name in enumerate(KNOBS)}
            for name, how in MOVES.items():
                move(knobs[name], how)
            shown = {name: float(knob.get_by_role("slider").get_attribute("aria-valuenow"))
                     for name, knob in knobs.items()}  # fmt: skip
            assert all(shown[name] != value for name, value in knob_values().items()), str(shown)
            page.get_by_role("button", name="Reset").click()
            page.locator(".v-btn--loading", has_text="Reset").wait_for()  # busy, then done
            page.locator(".v-btn--loading").wait_for(state="detached")
            assert page.evaluate("[...window.busy]") == ["Reset"]
            page.screenshot(path=SHOTS / "after-reset.png")
            described = caption.inner_text()
            assert "Week 0 of" in described
            assert built(described) == pytest.approx(shown), (described, shown)
            for name, (_, label, _, _, size) in KNOBS.items():  # each label shows its value
                value = f"{shown[name]:.0f}" if isinstance(size, int) else f"{shown[name]:.2f}"
                assert knobs[name].locator("label").inner_text() == f"{label}: {value}"
            reset = plots(page)
            assert reset != start

            step = page.get_by_role("button", name="Step")
            step.click()
            page.get_by_text("Week 1 of").wait_for()
            move(boxes.nth(0), ["ArrowRight"] * 4)  # as docs/TUTORIAL.md says: draw every 5
            page.get_by_text(f"{DRAW_EVERY[0]}: 5").wait_for()
            step.click()
            page.get_by_text("Week 6 of").wait_for()
            page.get_by_role("button", name="▶").click()  # play until week 11, then pause
            page.get_by_text("Week 11 of").wait_for()
            page.get_by_role("button", name="❚❚").click()
            assert sorted(page.evaluate("[...window.busy]")) == ["Reset", "Step"]
            page.screenshot(path=SHOTS / "played.png")
            assert plots(page) != reset
            assert not offline, f"requests failed (a CDN?): {offline}"
        finally:
            browser.close()
