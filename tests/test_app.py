"""The students' view renders, steps and resets (Solara's test renderer, no browser)."""

import inspect
import time

import numpy as np
import pytest

solara = pytest.importorskip("solara", reason="the browser view needs the viz extra")
ipywidgets = pytest.importorskip("ipywidgets")
vuetify = pytest.importorskip("ipyvuetify")

from sim.app import view as app  # noqa: E402


@solara.component
def InAppLayout():
    with solara.AppLayout():  # the page puts its controls in the app's sidebar
        app.Page()


def images(rc) -> list[bytes]:
    return [bytes(w.value) for w in rc.find(ipywidgets.Image).widgets]


def caption(rc) -> str:
    return rc.find(solara.widgets.HTML).widget.unsafe_innerHTML


def click_and_wait(rc, label: str, shown: str) -> None:
    """Click a button, wait until the caption shows `shown` (Reset and Step run in a thread)."""
    rc.find(vuetify.Btn, children=[label]).widget.click()
    deadline = time.monotonic() + 60
    while shown not in caption(rc):
        assert time.monotonic() < deadline, f"{label}: no {shown!r} in {caption(rc)!r}"
        time.sleep(0.05)


def test_each_default_lies_on_its_sliders_steps():
    # a slider moves a value off its steps to the nearest step: 0.22 on steps of 0.05 was 0.20
    for name, (_, _, lo, hi, step) in app.KNOBS.items():
        value = app.knob_values()[name]
        assert lo <= value <= hi and np.isclose((value - lo) / step, round((value - lo) / step))


def test_a_reset_with_no_slider_moved_builds_the_configs_market():
    assert app._compose(app.overrides(app.knob_values())) == app.DEFAULTS


def test_sliders_become_overrides():
    lines = app.overrides({"difficult_share": 0.3, "word_of_mouth": 0.11})
    cfg = app._compose(lines)
    shares = [s.share for s in cfg.clients.segments.values()]
    assert cfg.clients.segments.difficult.share == 0.3 and np.isclose(sum(shares), 1.0)
    wom = app.DEFAULTS.clients.wom
    assert cfg.clients.wom.p_positive == 0.11
    assert np.isclose(
        cfg.clients.wom.p_negative, wom.p_negative * 0.11 / wom.p_positive
    )  # in proportion
    assert app._compose(app.overrides({"word_of_mouth": 0.0})).clients.wom.p_negative == 0
    assert cfg.engine == "agents"
    assert list(inspect.signature(app.ClassroomMarket).parameters) == list(app.KNOBS)


def test_the_page_renders_steps_and_resets_with_a_slider_moved():
    box, rc = solara.render(InAppLayout(), handle_error=False)
    start = images(rc)
    assert len(start) == 4 and "Week 0<" in caption(rc)
    for week in range(1, 4):
        click_and_wait(rc, "Step", f"Week {week}<")
    stepped = images(rc)
    assert all(a != b for a, b in zip(start, stepped, strict=True))
    slider = rc.find(vuetify.Slider, label="share of difficult clients: 0.10").widget
    slider.fire_event("change", 0.3)  # as the browser sends it: an event, in order with clicks
    click_and_wait(rc, "Reset", "30% difficult clients")
    assert "Week 0<" in caption(rc)
    assert rc.find(vuetify.Slider, label="share of difficult clients: 0.30").widgets
    reset = images(rc)
    assert all(a != b for a, b in zip(stepped, reset, strict=True))
    click_and_wait(rc, "Step", "Week 1<")
    assert images(rc) != reset


def test_five_years_of_the_classroom_market_play_within_the_tutorials_time():
    # docs/TUTORIAL.md, section 3: drawing every 5 weeks, the five years play "in one to two
    # minutes". Cost: 260 weeks of the market and 52 drawings of the four views (the browser
    # adds about 0.3 s per drawing, measured in Chromium).
    model = app.ClassroomMarket()
    for _ in range(20):  # past the first weeks' warm-up
        model.step()
    started = time.perf_counter()
    for _ in range(5):
        model.step()
    week = (time.perf_counter() - started) / 5
    solara.render(InAppLayout(), handle_error=False)  # a first drawing: fonts, caches
    started = time.perf_counter()
    solara.render(Views(model), handle_error=False)
    drawing = time.perf_counter() - started
    assert 260 * week + 52 * drawing < 120, f"a week {week:.2f} s, a drawing {drawing:.2f} s"


@solara.component
def Views(model):
    for view, _ in app.VIEWS:
        view(model)


def test_the_classroom_market_records_referrals_and_intake_by_segment():
    model = app.ClassroomMarket(seed=1)
    for _ in range(30):
        model.step()
    steps = model.recorder.steps_frame()
    accepted = model.intake[:, :, 0].sum()
    assert accepted == steps["accepted"].sum()
    assert model.intake[:, :, 1].sum() == steps["declined"].sum()
    assert len(model.positions) == model.cfg.market.n_clients
