"""The sidebar of the students' view: sliders that show their values, buttons that show work.

Why not Mesa's `SolaraViz` controls: its sliders send their values through ipywidgets' state
sync, which the browser throttles (one message of a widget in flight; newer values wait for
the server's reply), while a button's click is sent at once. A Reset pressed just after a
slider moved was therefore built from an older value (2 -> 6 fit_filter businesses built 3).
Here a slider sends each value as an event (Vuetify's `change`: each key press, each click,
the end of a drag), and events travel in order with the clicks; its label shows the value
the server holds, the one Reset will use. Reset and Step run in a thread (Solara's task),
so that their buttons can show that they are busy while the market is built or stepped.
"""

from __future__ import annotations

from collections.abc import Callable

import mesa
import reacton.ipyvuetify as rv
import solara
import solara.lab
from mesa.visualization.utils import force_update

#: The slider of the weeks stepped between two drawings of the plots (a drawing costs more
#: than a week of the classroom market): label, min, max, step.
DRAW_EVERY = ("Draw every … weeks", 1, 26, 1)


@solara.component
def Knob(
    label: str,
    value: float,
    on_value: Callable[[float], None],
    lo: float,
    hi: float,
    step: float,
) -> rv.Slider:
    """A slider labelled with the value the server holds; each change is sent as an event.

    The thumb is the browser's: the slider's `v_model` follows what the browser reported
    last, so that a redraw never sends an older value back (it would move the thumb under
    the student's hand while later values are still on their way).
    """
    integer = all(float(x).is_integer() for x in (lo, hi, step))
    shown = f"{value:.0f}" if integer else f"{value:.2f}"
    thumb, set_thumb = solara.use_state(value)
    slider = rv.Slider(v_model=thumb, on_v_model=set_thumb, min=lo, max=hi, step=step,
                       label=f"{label}: {shown}", thumb_label=True, hide_details=True,
                       class_="knob")  # fmt: skip

    def changed(widget, event, data) -> None:
        on_value(int(data) if integer else round(float(data), 6))

    rv.use_event(slider, "change", changed)
    return slider


@solara.component
def RunControls(
    model: solara.Reactive[mesa.Model],
    build: Callable[..., mesa.Model],
    params: solara.Reactive[dict],
) -> None:
    """Reset (`build(**params)`, the values at the click), Play/Pause, Step, how often to draw.

    A button is disabled, with a spinner, while its work runs; Step waits for the others.
    """
    every = solara.use_reactive(1)
    playing = solara.use_reactive(False)

    def advance() -> None:
        market = model.value
        for _ in range(every.value):
            market.step()
        force_update()  # Mesa's views redraw

    def reset(values: dict) -> None:
        model.set(build(**values))

    def play() -> None:
        while playing.value:
            advance()

    stepping = solara.lab.use_task(advance, dependencies=None)
    resetting = solara.lab.use_task(reset, dependencies=None)
    solara.lab.use_task(play, dependencies=[playing.value])
    busy = stepping.pending or resetting.pending

    def press_reset() -> None:
        playing.set(False)
        resetting(dict(params.value))

    with solara.Row(justify="space-between"):
        solara.Button("Reset", on_click=press_reset, color="primary",
                      loading=resetting.pending, disabled=resetting.pending)  # fmt: skip
        solara.Button("❚❚" if playing.value else "▶", color="primary",
                      on_click=lambda: playing.set(not playing.value),
                      disabled=resetting.pending or stepping.pending)  # fmt: skip
        solara.Button("Step", on_click=stepping, color="primary", loading=stepping.pending,
                      disabled=busy or playing.value)  # fmt: skip
    if resetting.pending:
        solara.Text("Building the market (a few seconds)…")
    label, *steps = DRAW_EVERY
    Knob(label, every.value, every.set, *steps)


@solara.component
def MarketKnobs(knobs: dict[str, tuple], params: solara.Reactive[dict]) -> None:
    """One `Knob` per entry of `knobs` (name -> (config key, label, min, max, step))."""
    for name, (_, label, lo, hi, step) in knobs.items():

        def set_value(value, name=name) -> None:
            params.set({**params.value, name: value})

        Knob(label, params.value[name], set_value, lo, hi, step)
