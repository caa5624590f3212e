"""The students' view renders, steps and resets (Solara's test renderer, no browser).

Solara, its widgets and the view are imported by the first test that needs them (the `ui`
fixture), not when pytest collects this file: every pytest-xdist worker collects every file,
and these imports take about 0.7 s.
"""

import importlib.util
import inspect
import time
import types

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("solara", "ipywidgets", "ipyvuetify")),
    reason="the browser view needs the viz extra",
)


@pytest.fixture(scope="module")
def ui() -> types.SimpleNamespace:
    """Solara, ipywidgets, ipyvuetify, the view (`app`) and two components that show it."""
    import ipyvuetify
    import ipywidgets
    import solara

    from sim.app import view as app

    @solara.component
    def InAppLayout():
        with solara.AppLayout():  # the page puts its controls in the app's sidebar
            app.Page()

    @solara.component
    def Views(model):
        for view, _ in app.VIEWS:
            view(model)

    return types.SimpleNamespace(solara=solara, ipywidgets=ipywidgets, vuetify=ipyvuetify,
                                 app=app, InAppLayout=InAppLayout, Views=Views)  # fmt: skip


@pytest.fixture(scope="module")
def app(ui) -> types.ModuleType:
    return ui.app


def images(ui, rc) -> list[bytes]:
    return [bytes(w.value) for w in rc.find(ui.ipywidgets.Image).widgets]


def caption(ui, rc) -> str:
    return rc.find(ui.solara.widgets.HTML).widget.unsafe_innerHTML


def click_and_wait(ui, rc, label: str, shown: str) -> None:
    """Click a button, wait until the caption shows `shown` (Reset and Step run in a thread)."""
    rc.find(ui.vuetify.Btn, children=[label]).widget.click()
    deadline = time.monotonic() + 60
    while shown not in caption(ui, rc):
        assert time.monotonic() < deadline, f"{label}: no {shown!r} in {caption(ui, rc)!r}"
        time.sleep(0.05)


def test_each_default_lies_on_its_sliders_steps(app):
    # a slider moves a value off its steps to the nearest step: 0.22 on steps of 0.05 was 0.20
    for name, (_, _, lo, hi, step) in app.KNOBS.items():
        value = app.knob_values()[name]
        assert lo <= value <= hi and np.isclose((value - lo) / step, round((value - lo) / step))


def test_a_reset_with_no_slider_moved_builds_the_configs_market(app):
    assert app._compose(app.overrides(app.knob_values())) == app.DEFAULTS


def test_sliders_become_overrides(app):
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


def test_the_page_renders_steps_and_resets_with_a_slider_moved(ui):
    box, rc = ui.solara.render(ui.InAppLayout(), handle_error=False)
    start = images(ui, rc)
    assert len(start) == 4 and "Week 0<" in caption(ui, rc)
    for week in range(1, 4):
        click_and_wait(ui, rc, "Step", f"Week {week}<")
    stepped = images(ui, rc)
    assert all(a != b for a, b in zip(start, stepped, strict=True))
    slider = rc.find(ui.vuetify.Slider, label="share of difficult clients: 0.10").widget
    slider.fire_event("change", 0.3)  # as the browser sends it: an event, in order with clicks
    click_and_wait(ui, rc, "Reset", "30% difficult clients")
    assert "Week 0<" in caption(ui, rc)
    assert rc.find(ui.vuetify.Slider, label="share of difficult clients: 0.30").widgets
    reset = images(ui, rc)
    assert all(a != b for a, b in zip(stepped, reset, strict=True))
    click_and_wait(ui, rc, "Step", "Week 1<")
    assert images(ui, rc) != reset


def test_five_years_of_the_classroom_market_play_within_the_tutorials_time(ui, app):
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
    ui.solara.render(ui.InAppLayout(), handle_error=False)  # a first drawing: fonts, caches
    started = time.perf_counter()
    ui.solara.render(ui.Views(model), handle_error=False)
    drawing = time.perf_counter() - started
    assert 260 * week + 52 * drawing < 120, f"a week {week:.2f} s, a drawing {drawing:.2f} s"


def test_the_classroom_market_records_referrals_and_intake_by_segment(app):
    model = app.ClassroomMarket(seed=1)
    for _ in range(30):
        model.step()
    steps = model.recorder.steps_frame()
    accepted = model.intake[:, :, 0].sum()
    assert accepted == steps["accepted"].sum()
    assert model.intake[:, :, 1].sum() == steps["declined"].sum()
    assert len(model.positions) == model.cfg.market.n_clients
