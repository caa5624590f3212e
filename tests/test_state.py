"""The one declaration of client state (sim.state) and the ledger (sim.ledger) feed both engines."""

from __future__ import annotations

import numpy as np
import pytest

from sim import ledger, population, state
from sim.cli import compose
from sim.engines import engine_class
from sim.record import CLIENT_COLUMNS, Recorder, clients_frame


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


def test_steps_and_market_tables_have_the_ledgers_columns_and_dtypes(model):
    _, recorder = model
    for frame, columns in (
        (recorder.steps_frame(), {k: dtype for k, (dtype, _) in ledger.STEP_COLUMNS.items()}),
        (recorder.market_frame(), ledger.MARKET_COLUMNS),
    ):
        assert list(frame.columns) == list(columns)
        for name, dtype in columns.items():
            assert str(frame[name].dtype) == dtype, name


def test_booking_an_undeclared_counter_fails(model):
    business = model[0].businesses[0]
    with pytest.raises(KeyError):
        business.book(no_such_counter=1)
    with pytest.raises(KeyError):
        model[0].count(no_such_tally=1)


def test_a_count_is_booked_as_a_python_int(model):
    business = model[0].businesses[0]
    before = business.applicants
    business.book(applicants=np.int64(2))
    assert type(business.applicants) is int and business.applicants == before + 2
