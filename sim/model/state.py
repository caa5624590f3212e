"""The one declaration of client state: name, dtype, initial value, and whether it is recorded.

Both engines build their clients from these tables: the vectorized engine allocates one
array per field (`arrays`), the agents engine gives each `Client` agent one attribute per
field (`scalars`, Python numbers) and each open job one `Job` (`JOB`). A field with a
`column` is an outcome column of clients.parquet (`sim.runs.record.clients_frame`), written with
`column_dtype` (counts are int64 in every table); the pair fields of `PAIR_ACCOUNTS` are
pairs.parquet's (`sim.runs.record.pairs_frame`). Traits, which never change, live in
`sim.model.population.TRAITS`.

A rule that changes clients returns `Updates` (changes of these fields, and market tallies);
`sim.model.market.MarketModel.apply` writes them into either engine through its `write`.
"""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass
from typing import Any, NamedTuple

import numpy as np

from sim.config.schema import MAX_WEEKS


@dataclass(frozen=True, slots=True)
class Field:
    """One piece of state.

    Attributes:
        name: its name in both engines (an array of the vectorized engine, an attribute of
            the agents engine's `Client` or `Job`).
        dtype: the numpy dtype it is stored with.
        initial: its value before the first week.
        column: its clients.parquet column, or None if it is not recorded.
        column_dtype: the dtype of that column (default: `dtype`).
    """

    name: str
    dtype: type
    initial: float | int | bool
    column: str | None = None
    column_dtype: type | None = None

    @property
    def python_initial(self) -> float | int | bool:
        """The initial value as the Python number of its dtype (for agent attributes)."""
        return np.array(self.initial, dtype=self.dtype).item()

    @property
    def recorded_dtype(self) -> type:
        """The dtype of its clients.parquet column."""
        return self.column_dtype or self.dtype


def count(name: str, column: str | None = None) -> Field:
    """A counter of a client's history, recorded as an int64 column (`column`, or `name`)."""
    return Field(name, np.int32, 0, column or name, np.int64)


#: A client's own state. `difficulty` starts at the trait and falls on reform.
CLIENT: tuple[Field, ...] = (
    Field("difficulty", np.float64, 0.0, "difficulty_now"),
    Field("reformed", np.bool_, False, "reformed"),
    Field("next_need", np.int32, 0),  # the week its next need arrives
    count("need_arrivals"),
    Field("provider", np.int16, -1, "final_provider"),  # -1: none
    count("jobs_done", "jobs"),
    Field("spend", np.float64, 0.0, "spend"),
    Field("unpaid", np.float64, 0.0, "unpaid"),
    Field("hours", np.float64, 0.0, "hours"),  # service, screening and diagnosis hours
    count("reviews"),
    count("referrals_made"),
    Field("referred_by", np.int32, -1, "referred_by"),  # client id of the referrer, or -1
    Field(
        "first_job_week", np.int32, -1, "first_job_week"
    ),  # week its first job was done; -1: never
    # analysis (issue 23): the business of its last completed job (-1: none), not recorded;
    # read week by week by the demand facts (`sim.validation.demand`)
    Field("last_provider", np.int16, -1),
    # the satisfaction it holds of its provider, its jobs there smoothed
    # (`mechanics.judged_satisfaction`); meaningless without a provider
    Field("provider_satisfaction", np.float64, 0.0),
)

#: A client's job (at most one): sizes in hours, weeks as step numbers. `open` is whether it
#: has one; a job's other fields mean nothing while it is not open.
JOB: tuple[Field, ...] = (
    Field("open", np.bool_, False),
    Field("true_hours", np.float64, 0.0),
    Field("stated_hours", np.float64, 0.0),
    Field("deadline", np.int32, 0),  # weeks; 0 is impossible
    Field("need_week", np.int32, 0),
    Field("provider", np.int16, -1),  # -1 until accepted
    Field("accept_week", np.int32, 0),
    Field("billed", np.float64, 0.0),
    Field("misfit", np.bool_, False),
    Field("extras", np.bool_, False),
    Field("remaining", np.float64, 0.0),  # work hours left
    Field("prepaid", np.bool_, False),
    # the businesses that declined this job but kept the client (bit b: business b; at most
    # `sim.config.schema.MAX_BUSINESSES` = 64): the job is not taken to them again
    Field("declined_by", np.uint64, 0),
)

#: The dtype of a week in the pair state, the largest part of the memory: 16 bits hold
#: every week a run reaches (a run's weeks and memories are at most `sim.config.schema.MAX_WEEKS`,
#: so a week plus a memory stays below `NEVER`, which means "never").
PAIR_WEEK = np.int16
NEVER = int(np.iinfo(PAIR_WEEK).max)
assert 2 * MAX_WEEKS < NEVER, "pair weeks overflow"

#: A client's state about each business: arrays of one entry per business.
PAIR: tuple[Field, ...] = (
    Field("known_week", PAIR_WEEK, 0),  # first week it knows the business: by ads or a story
    Field("credit", np.float64, 0.0),  # referral credit, decayed lazily from `credit_week`
    Field("credit_week", PAIR_WEEK, -1),  # -1: never heard a referral
    Field("warning", np.float64, 0.0),
    Field("warning_week", PAIR_WEEK, -1),
    Field("referrer", np.int32, -1),  # the referrer of its last week of referrals (highest id)
    Field("blocked_until", PAIR_WEEK, 0),  # it may choose the business again from this week
    # issue 23, a firm's own whale curve (pairs.parquet): the client's `spend`, `hours` and
    # `jobs_done` with this business alone (added beside them: summed over the businesses,
    # they are those three)
    Field("spend_at", np.float64, 0.0),
    Field("hours_at", np.float64, 0.0),
    Field("jobs_at", np.int16, 0),  # at most one a week: 16 bits hold a run's, as its weeks
)

#: The pair fields pairs.parquet records (`sim.runs.record.pairs_frame`). No rule reads them,
#: so a model that records no pairs (a sweep's runs) leaves them out (`pair_fields`).
PAIR_ACCOUNTS: tuple[str, ...] = ("spend_at", "hours_at", "jobs_at")


def pair_fields(accounts: bool = True) -> tuple[Field, ...]:
    """The pair fields a model keeps: all of `PAIR`, or all but `PAIR_ACCOUNTS`.

    The accounts take 18 bytes a client and business (with 20 businesses, 360 bytes a
    client); every other field a run records is the same without them.
    """
    return PAIR if accounts else tuple(f for f in PAIR if f.name not in PAIR_ACCOUNTS)


#: The clients.parquet outcome columns, in the order of the fields.
RECORDED: tuple[Field, ...] = tuple(f for f in CLIENT if f.column is not None)


#: Every field by the name engines are asked for it (`MarketModel.read`): a job's fields
#: as ``job_`` + name.
BY_NAME: dict[str, Field] = {
    **{f.name: f for f in (*CLIENT, *PAIR)},
    **{f"job_{f.name}": f for f in JOB},
}
PAIR_NAMES = frozenset(f.name for f in PAIR)


class Change(NamedTuple):
    """One state change of some clients: field `name` of the clients `ids` set to `values`.

    Attributes:
        name: a field of `BY_NAME` (a job's as ``job_`` + name).
        ids: the client ids.
        values: one value for all, or one per id.
        add: add `values` to the field instead of setting it.
        business: a pair field's business: one for all, or one per id.
    """

    name: str
    ids: np.ndarray
    values: Any
    add: bool = False
    business: Any = None


class Tally(NamedTuple):
    """Clients to count in a market tally: `ids`, or those of them in `mask` (None: all)."""

    name: str
    ids: np.ndarray
    mask: np.ndarray | None = None


class Updates(list):
    """What a rule decides, in order: state changes (`Change`) and market tallies.

    A rule returns one; `sim.model.market.MarketModel.apply` writes it into either engine's
    clients, so a new field a rule updates is declared here and set in the rule, never in
    an engine. A `Tally` counts clients in a market tally (`sim.model.ledger.TALLIES`).
    A change of no clients (`ids` empty) is left out.
    """

    __slots__ = ()

    def set(self, name: str, ids, values, business=None) -> Updates:
        """Set field `name` of the clients `ids` to `values` (a pair field's at `business`)."""
        if len(ids):
            self.append(Change(name, ids, values, False, business))
        return self

    def add(self, name: str, ids, values, business=None) -> Updates:
        """Add `values` to field `name` of the clients `ids` (a pair field's at `business`)."""
        if len(ids):
            self.append(Change(name, ids, values, True, business))
        return self

    def count(self, tally: str, ids, mask=None) -> Updates:
        """Count the clients `ids` (those in `mask`, if given) in the market's tally `tally`."""
        if len(ids):
            self.append(Tally(tally, ids, mask))
        return self


def arrays(fields: tuple[Field, ...], shape, prefix: str = "") -> dict[str, np.ndarray]:
    """One array of `shape` per field, filled with its initial value (keys `prefix + name`)."""
    return {prefix + f.name: np.full(shape, f.initial, dtype=f.dtype) for f in fields}


def scalars(fields: tuple[Field, ...]) -> dict[str, float | int | bool]:
    """The initial value of each field as a Python number."""
    return {f.name: f.python_initial for f in fields}


#: An open job of the agents engine: one slot per field of `JOB`, in order.
Job = make_dataclass(
    "Job", [(f.name, type(f.python_initial), f.python_initial) for f in JOB], slots=True
)
Job.__doc__ = "An open job: the fields of `sim.model.state.JOB`, as Python numbers."
