"""The one declaration of client state (sim.model.state) and the ledger feed both engines."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config.compose import compose
from sim.model import ledger, phases, population, state
from sim.model.engines import engine_class
from sim.runs.record import CLIENT_COLUMNS, Recorder, clients_frame


@pytest.fixture(scope="module", params=["vectorized", "agents"])
def model(request):
    cfg = compose([f"engine={request.param}", "seed=5", "market.n_clients=120", "steps=6"])
    model = engine_class(request.param)(cfg)
    recorder = Recorder()
    for _ in range(6):
        model.step()
        recorder.collect(model)
    return model, recorder


def test_every_recorded_trait_and_state_field_is_a_clients_column():
    columns = set(CLIENT_COLUMNS)
    assert set(population.RECORDED) <= columns
    assert {f.column for f in state.RECORDED} <= columns
    assert len(CLIENT_COLUMNS) == len(columns)


def test_clients_columns_have_the_declared_dtypes(model):
    frame = clients_frame(model[0])
    for field in state.RECORDED:
        assert frame[field.column].dtype == field.recorded_dtype, field.column


def test_both_engines_hold_every_declared_field(model):
    model = model[0]
    if hasattr(model, "s"):
        for field in (*state.CLIENT, *state.PAIR):
            store = model.s if field in state.CLIENT else model.p
            assert store[field.name].dtype == field.dtype, field.name
    else:
        client = model.clients[0]
        for field in state.CLIENT:
            assert isinstance(getattr(client, field.name), type(field.python_initial) | float)
        for field in state.PAIR:
            assert getattr(client, field.name).dtype == field.dtype, field.name


def _tables(recorder: Recorder):
    """(steps frame, its declared dtypes) and (market frame, its declared dtypes)."""
    return (
        (recorder.steps_frame(), {k: dtype for k, (dtype, _) in ledger.STEP_COLUMNS.items()}),
        (recorder.market_frame(), ledger.MARKET_COLUMNS),
    )


def test_steps_and_market_tables_have_the_ledgers_columns_and_dtypes(model):
    for frame, columns in _tables(model[1]):
        assert list(frame.columns) == list(columns)
        assert {n: str(frame[n].dtype) for n in columns} == dict(columns)


def test_a_markets_sums_are_pythons_sum_of_its_businesses_rows_in_their_order(model):
    """market.parquet's sums are `sum()` (compensated in Python 3.12+) of the week's rows."""
    _, recorder = model
    steps, market = recorder.steps_frame(), recorder.market_frame()
    for name in ledger.MARKET_SUMS:
        weekly = [sum(week[name].tolist()) for _, week in steps.groupby("step", sort=True)]
        assert market[name].tolist() == weekly, name  # exactly: same floats, same order


def test_a_recorder_of_no_week_gives_empty_tables_of_the_ledgers_dtypes():
    for frame, columns in _tables(Recorder()):
        assert len(frame) == 0 and list(frame.columns) == list(columns)
        assert {n: str(frame[n].dtype) for n in columns} == dict(columns)


def test_booking_an_undeclared_counter_fails(model):
    with pytest.raises(KeyError):
        model[0].firms.book(no_such_counter=1)
    with pytest.raises(KeyError):
        model[0].count(no_such_tally=1)


def test_a_count_is_booked_as_an_integer_and_read_as_a_python_int(model):
    firms, business = model[0].firms, model[0].businesses[0]
    before = business.applicants
    firms.book(applicants=np.where(firms.index == 0, 2, 0))
    assert firms.applicants.dtype == np.int64
    assert type(business.applicants) is int and business.applicants == before + 2


def loyalty(model, week: int) -> None:
    """A phase written once against the storage interface: clients served twice or more who
    keep their provider grow easier to serve, and forget any block on it."""
    ids = np.arange(model.cfg.market.n_clients)
    loyal = ids[(model.read("jobs_done", ids) >= 2) & (model.read("provider", ids) >= 0)]
    provider = model.read("provider", loyal).astype(np.int64)
    model.apply(
        state.Updates()
        .add("difficulty", loyal, -0.01)
        .set("blocked_until", loyal, week, business=provider)
    )


def _run_with(phase, engine: str, monkeypatch):
    """Run with `phase` put in the week's order (`sim.model.phases.STEP`) after service."""
    if phase is not None:
        step = list(phases.STEP)
        monkeypatch.setattr(phases, "STEP", (*step[: step.index("serve") + 1], phase,
                                             *step[step.index("serve") + 1 :]))  # fmt: skip
    cfg = compose([f"engine={engine}", "seed=8", "market.n_clients=150", "steps=16"])
    model, recorder = engine_class(engine)(cfg), Recorder()
    for _ in range(16):
        model.step()
        recorder.collect(model)
    monkeypatch.undo()
    return clients_frame(model), recorder.steps_frame()


def test_a_phase_written_once_runs_alike_in_both_engines(monkeypatch):
    import pandas as pd

    vec = _run_with(loyalty, "vectorized", monkeypatch)
    agents = _run_with(loyalty, "agents", monkeypatch)
    for a, b in zip(vec, agents, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    without = _run_with(None, "vectorized", monkeypatch)[0]
    assert (vec[0]["difficulty_now"] < without["difficulty_now"]).any()


def test_updates_are_written_alike_into_agents_and_arrays():
    ids, business = np.array([3, 7, 11]), np.array([0, 2, 1])
    updates = (
        state.Updates()
        .add("hours", ids, 1.5)
        .set("blocked_until", ids, 9, business)
        .set("job_open", ids[:2], True)
        .set("job_billed", ids[:2], [4.0, 5.0])
        .set("job_open", ids[2:], False)
        .count("gave_up", ids, np.array([True, False, True]))
    )
    read = {}
    for engine in ("vectorized", "agents"):
        model = engine_class(engine)(compose([f"engine={engine}", "market.n_clients=50"]))
        model.step()
        before = model.read("hours", ids), model.tally["gave_up"]
        model.apply(updates)
        read[engine] = [model.read(name, ids) for name in ("hours", "job_open", "job_billed")]
        read[engine].append(model.read("blocked_until", ids, business))
        np.testing.assert_array_equal(read[engine][0], before[0] + 1.5)
        assert model.tally["gave_up"] == before[1] + 2
    np.testing.assert_array_equal(read["agents"][1], [True, True, False])
    np.testing.assert_array_equal(read["agents"][2][:2], [4.0, 5.0])
    np.testing.assert_array_equal(read["agents"][3], [9, 9, 9])
    for a, b in zip(read["vectorized"], read["agents"], strict=True):
        np.testing.assert_array_equal(a[:2], b[:2])  # a closed job's fields mean nothing


def test_read_gives_open_jobs_and_the_initial_value_where_none_is_open(model):
    model = model[0]
    ids = np.arange(model.cfg.market.n_clients)
    provider = model.read("job_provider", ids)
    assert provider.dtype == state.BY_NAME["job_provider"].dtype
    assert (provider >= -1).all() and (provider >= 0).any()


def test_each_recorder_of_a_batch_may_collect_a_week_it_is_kept_once():
    from sim.runs.run import build_model, simulate_batch

    cfg = compose(["seed=5", "market.n_clients=120", "steps=3"])
    once = simulate_batch(cfg, [2, 7])[1]
    model, recorders = build_model(cfg, [2, 7]), Recorder.of_markets(2)
    for _ in range(3):
        model.step()
        for recorder in recorders:  # every market's recorder collects the same week
            recorder.collect(model)
    assert recorders[0].weeks == [0, 1, 2]
    for mine, theirs in zip(recorders, once, strict=True):
        assert mine.steps_frame().equals(theirs.steps_frame())
        assert mine.market_frame().equals(theirs.market_frame())
