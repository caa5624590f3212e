"""The students' view renders, steps and resets (Solara's test renderer, no browser)."""

import inspect

import numpy as np
import pytest

solara = pytest.importorskip("solara", reason="the browser view needs the viz extra")
ipywidgets = pytest.importorskip("ipywidgets")
vuetify = pytest.importorskip("ipyvuetify")

from sim.app import view as app  # noqa: E402


@solara.component
def InAppLayout():
    with solara.AppLayout():  # SolaraViz puts its controls in the app's sidebar
        app.Page()


def images(rc) -> list[bytes]:
    return [bytes(w.value) for w in rc.find(ipywidgets.Image).widgets]


def caption(rc) -> str:
    return rc.find(solara.widgets.HTML).widget.unsafe_innerHTML


def click(rc, label: str) -> None:
    rc.find(vuetify.Btn, children=[label]).widget.click()


def test_sliders_start_at_the_configs_values_and_become_overrides():
    params = app.model_params()
    assert params["threshold"].value == app.DEFAULTS.policies.fit_filter.threshold
    lines = app.overrides({"difficult_share": 0.3, "word_of_mouth": 0.1})
    cfg = app._compose(lines)
    shares = [s.share for s in cfg.clients.segments.values()]
    assert cfg.clients.segments.difficult.share == 0.3 and np.isclose(sum(shares), 1.0)
    assert cfg.clients.wom.p_positive == cfg.clients.wom.p_negative == 0.1
    assert cfg.engine == "agents"
    assert list(inspect.signature(app.ClassroomMarket).parameters) == list(app.KNOBS)


def test_the_page_renders_steps_and_resets():
    box, rc = solara.render(InAppLayout(), handle_error=False)
    start = images(rc)
    assert len(start) == 4 and "Week 0<" in caption(rc)
    for _ in range(3):
        click(rc, "Step")
    stepped = images(rc)
    assert "Week 3<" in caption(rc)
    assert all(a != b for a, b in zip(start, stepped, strict=True))
    slider = rc.find(vuetify.Slider, label="share of difficult clients").widget
    slider.v_model = 0.3
    click(rc, "Reset")
    reset = images(rc)
    assert "Week 0<" in caption(rc) and "30% difficult clients" in caption(rc)
    assert all(a != b for a, b in zip(stepped, reset, strict=True))
    click(rc, "Step")
    assert images(rc) != reset


def test_the_classroom_market_records_referrals_and_intake_by_segment():
    model = app.ClassroomMarket(seed=1)
    for _ in range(30):
        model.step()
    steps = model.recorder.steps_frame()
    accepted = model.intake[:, :, 0].sum()
    assert accepted == steps["accepted"].sum()
    assert model.intake[:, :, 1].sum() == steps["declined"].sum()
    assert len(model.positions) == model.cfg.market.n_clients
