"""Phases 4-5 compiled: the applicants' draws and signals, and every business's intake.

`applicants` draws the applicants' random numbers and reads their fit signals, one pass.
The applicants come sorted by business (each business's rows next to each other, in the
order it considers them). `take` applies each business's policy habits to its own rows, in
the order of `sim.model.policies.Policy` (docs/ODD.md §7.4), and counts the decisions for
the ledger. What a policy's screen sees and judges (`Policy.screen`: a weighted score,
a matrix product that numpy's BLAS computes with fused multiply-adds) is decided before, in
numpy; everything after it is comparisons and +, -, *, / in the order of the numpy rules it
replaced, so no result moves by a bit.
"""

from __future__ import annotations

import numba
import numpy as np

from sim.model import mechanics
from sim.model.kernels import formulas
from sim.model.kernels.draws import GOLDEN, base, mix, unit
from sim.model.kernels.formulas import scalar
from sim.model.kernels.scatter import add_rows

projected_finish_weeks = scalar(mechanics.projected_finish_weeks)

# the reasons of `sim.model.intake.Refusal` (a kernel cannot read an IntEnum)
ACCEPTED, SCREEN, FULL, DEADLINE, PREPAYMENT = 0, 1, 2, 3, 4
#: The per-business sums `take` returns, rows of its float and int totals, in this order.
FLOAT_TOTALS = ("screening_hours", "diagnosis_hours", "accepted_hours",
                "accepted_difficulty_sum", "accepted_alignment_sum", "revenue")  # fmt: skip
INT_TOTALS = (
    "applicants", "accepted", "declined", "acquisitions", "referral_acquisitions",
    "declined_screen", "declined_full", "declined_deadline", "declined_prepayment",
)  # fmt: skip


@numba.njit(cache=True, inline="always")
def with_extras(billed_hours: float, extras: bool, upsell_share: float) -> float:
    """The billed hours of a job sold with extras: `upsell_share` more (unchanged without)."""
    return billed_hours * (1.0 + upsell_share) if extras else billed_hours


@numba.njit(cache=True)
def take(
    business, new, referred, would_reform, passes_screen, true_hours, stated_hours, deadline,
    prepay_ok, upsell_u, work_per_billed_hour, rework_hours, difficulty, alignment,
    habits, backlog_hours, capacity, price, float_counters, float_rows, int_counters, int_rows,
    numbers, flags, reason,
):  # fmt: skip
    """The intake of every business: decisions per applicant, and per-business totals.

    Per applicant, the arrays of `sim.model.intake.Applicants` (`business`: an entry of the
    per-business arrays, sorted; `alignment`: column 2 of the signals), with
    `passes_screen`, whether its policy's screen judges it fit (`Policy.screen`; read only
    for a newcomer to a business that screens), and `rework_hours`, the unbilled rework its
    job would need if quoted on a wrong stated size (`mechanics.rework_hours`). Per
    business: `habits`, its policy's knobs (`sim.model.policies.HABITS`, in that order),
    its backlog at the start of the week (`backlog_hours`), `capacity` (hours this week) and
    `price` (per billed hour). The businesses' counters (`Firms`: rows of `float_counters`
    and `int_counters`) gain their totals of `FLOAT_TOTALS` and `INT_TOTALS` (at rows
    `float_rows`, `int_rows`), each summed in the order of the applicants then added, as
    `Firms.book` adds; this kernel is their one writer at intake, for both engines.

    The decisions are written into the `Intake` fields given: `numbers` (4, n) rows
    overhead hours, billed hours, work hours and prepaid money; `flags` (5, n) rows
    accepted, misfit, extras, reforms and ends relationship; `reason` (int8). (Arrays a
    kernel allocates and returns would carry the dtype its disk cache unpickled, which is not
    numpy's own float64: `np.add.at` then takes a path 20 times slower.)
    """
    (
        careful_order, full_weeks, screens, screening_hours, diagnosis, diagnosis_hours,
        decline_impossible, prepayment, upsell_rate, upsell_share, ends_relationship,
    ) = habits  # fmt: skip
    n, n_b = len(business), len(capacity)
    numbers[:] = 0.0
    overhead, billed, work_hours, prepaid = numbers[0], numbers[1], numbers[2], numbers[3]
    flags[:] = False
    accepted, misfit, extras, reforms, ends = flags[0], flags[1], flags[2], flags[3], flags[4]
    reason[:] = ACCEPTED
    screened_hours = float_counters[float_rows[0]]  # booked before this intake
    diagnosed_hours = float_counters[float_rows[1]]
    floats = np.zeros((len(FLOAT_TOTALS), n_b))
    ints = np.zeros((len(INT_TOTALS), n_b), dtype=np.int64)
    screened = np.zeros(n, dtype=np.bool_)
    diagnosed = np.zeros(n, dtype=np.bool_)
    passed = np.zeros(n, dtype=np.bool_)
    first = 0
    while first < n:
        b, end = business[first], first + 1
        while end < n and business[end] == b:
            end += 1
        # screening: hours booked before anything else is decided
        n_screened = _screen(
            first, end, new, would_reform, passes_screen, careful_order[b] and
            backlog_hours[b] >= full_weeks[b] * capacity[b], screens[b], screening_hours[b],
            capacity[b], screened, passed, reforms, reason,
        )  # fmt: skip
        floats[0, b] = n_screened * screening_hours[b]
        hours_left = capacity[b] - (screened_hours[b] + floats[0, b])
        if careful_order[b]:  # queue, deadline and terms before any diagnosis hour
            _check_terms(
                first, end, max(hours_left, 0.0), backlog_hours[b], stated_hours, upsell_u,
                deadline, prepay_ok, decline_impossible[b], prepayment[b], upsell_rate[b],
                upsell_share[b], passed, reason,
            )  # fmt: skip
        n_diagnosed = 0
        if diagnosis[b] and diagnosis_hours[b] > 0:
            n_diagnosed = _diagnose(
                first, end, max(hours_left, 0.0) // diagnosis_hours[b], passed, diagnosed, reason
            )
        floats[1, b] = n_diagnosed * diagnosis_hours[b]
        capacity_left = max(
            capacity[b] - (screened_hours[b] + floats[0, b]) - (diagnosed_hours[b] + floats[1, b]),
            0.0,
        )
        # this business's totals, summed in the order of its rows (as `np.bincount`)
        accepted_hours, difficulty_sum, alignment_sum, revenue = 0.0, 0.0, 0.0, 0.0
        n_accepted, n_new, n_referred = 0, 0, 0
        declined = np.zeros(PREPAYMENT + 1, dtype=np.int64)  # by reason
        for i in range(first, end):
            overhead[i] = (screening_hours[b] if screened[i] else 0.0) + (
                diagnosis_hours[b] if diagnosed[i] else 0.0
            )
            # the quote: a diagnosis quotes the true need, else the stated size (a misfit)
            quoted = true_hours[i] if diagnosis[b] else stated_hours[i]
            misfit[i] = not diagnosis[b] and stated_hours[i] != true_hours[i]
            extras[i] = upsell_u[i] < upsell_rate[b]
            billed[i] = with_extras(quoted, extras[i], upsell_share[b])
            taken = passed[i]
            finish = projected_finish_weeks(backlog_hours[b], billed[i], capacity_left)
            if taken and decline_impossible[b] and not finish <= deadline[i]:
                reason[i], taken = DEADLINE, False
            if taken and prepayment[b]:
                if prepay_ok[i]:
                    prepaid[i] = billed[i] * price[b]
                else:
                    reason[i], taken = PREPAYMENT, False
            accepted[i] = taken
            ends[i] = reason[i] != ACCEPTED and (ends_relationship[b] or reason[i] == SCREEN)
            work_hours[i] = billed[i] * work_per_billed_hour[i]
            if misfit[i]:
                work_hours[i] = work_hours[i] + rework_hours[i]
            if taken:
                n_accepted += 1
                n_new += new[i]
                n_referred += new[i] and referred[i]
                accepted_hours += work_hours[i]
                difficulty_sum += difficulty[i]
                alignment_sum += alignment[i]
            else:
                declined[reason[i]] += 1
            revenue += prepaid[i]
        ints[0, b], ints[1, b], ints[2, b] = end - first, n_accepted, end - first - n_accepted
        ints[3, b], ints[4, b] = n_new, n_referred
        floats[2, b], floats[3, b], floats[4, b] = accepted_hours, difficulty_sum, alignment_sum
        floats[5, b] = revenue
        for r in range(SCREEN, PREPAYMENT + 1):
            ints[4 + r, b] = declined[r]  # declined_<reason>
        first = end
    add_rows(float_counters, float_rows, floats)
    add_rows(int_counters, int_rows, ints)


@numba.njit(cache=True)
def _screen(first, end, new, would_reform, passes_screen, full, screens, screening_hours,
            capacity, screened, passed, reforms, reason) -> int:  # fmt: skip
    """One business's screen of its rows `first:end`; returns how many it screened.

    A careful business that is `full` turns newcomers away unscreened; a business that
    screens screens the others while it has hours (`capacity` // `screening_hours`, in row
    order) and turns the rest away unscreened. Returning clients pass. Only applicants who
    did not pass the screen (declined by it, or turned away unscreened for lack of hours)
    may reform.
    """
    considered_so_far, n_screened = 0, 0
    room = capacity // screening_hours if screens and screening_hours > 0 else 0.0
    for i in range(first, end):
        turned_away = full and new[i]
        considered = new[i] and not turned_away
        if not screens:
            screened[i], passed[i] = False, considered or not new[i]
        else:
            screened[i] = considered
            if screening_hours > 0:
                if considered:
                    considered_so_far += 1
                screened[i] = considered and considered_so_far <= room
            passed[i] = (passes_screen[i] and screened[i]) or not new[i]
        reforms[i] = not passed[i] and not turned_away and would_reform[i]
        if not passed[i]:
            reason[i] = SCREEN if screened[i] else FULL
        if screened[i]:
            n_screened += 1
    return n_screened


@numba.njit(cache=True)
def _check_terms(
    first, end, hours, backlog_hours, stated_hours, upsell_u, deadline, prepay_ok,
    decline_impossible, prepayment, upsell_rate, upsell_share, passed, reason,
):  # fmt: skip
    """A careful business's checks before diagnosing, on the stated size (with any extras).

    It declines a job whose deadline it cannot meet behind its backlog with the `hours`
    left after screening, then a client who will not prepay.
    """
    for i in range(first, end):
        if not passed[i]:
            continue
        estimate = with_extras(stated_hours[i], upsell_u[i] < upsell_rate, upsell_share)
        if (
            decline_impossible
            and not projected_finish_weeks(backlog_hours, estimate, hours) <= deadline[i]
        ):
            reason[i], passed[i] = DEADLINE, False
        elif prepayment and not prepay_ok[i]:
            reason[i], passed[i] = PREPAYMENT, False


@numba.njit(cache=True)
def _diagnose(first, end, room, passed, diagnosed, reason) -> int:
    """The diagnosis cap: the first `room` applicants still in the running are diagnosed.

    The rest are turned away undiagnosed (FULL): capacity holds. Returns how many it diagnosed.
    """
    n_diagnosed = 0
    for i in range(first, end):
        if passed[i]:
            if n_diagnosed + 1 <= room:
                n_diagnosed += 1
                diagnosed[i] = True
            else:
                reason[i], passed[i] = FULL, False
    return n_diagnosed


@numba.njit(cache=True)
def applicants(
    ids, business, difficulty, conflict_probability, drawn, week, keys, n, pay_reliability,
    unrealistic, values, cultures, reform_above, reform_probability,
    signals, upsell_u, conflict, would_reform, noise_u,
):  # fmt: skip
    """The applicants' fit signals and random numbers, keyed by client id and week.

    Each applicant `ids[i]`, applying to business `business[i]` (of its market) with
    `difficulty[i]`, gets its four fit signals in a row of `signals` (n, 4): respect
    1 − difficulty, payment (its `pay_reliability`), alignment (its decider's `values` with
    the business's culture, `cultures` (businesses, markets, 2): `formulas.aligned`) and
    realism 1 − `unrealistic`; the
    uniform of its upselling (`upsell_u`); whether its job ends in conflict (`conflict`,
    with probability `conflict_probability[i]`); and whether it would reform if a screen
    declined it (`would_reform`: difficulty above `reform_above`, with probability
    `reform_probability`). The applicants in `drawn` get the eight uniforms of their
    screening noise, slots 0-7, as columns of `noise_u` (8, drawn): Box-Muller turns them
    into normals outside (a log and a cosine: numpy's). `keys` holds the keys of the streams
    service, upsell, reform and screening (`Streams.kernel_keys`, rows), `n` the clients
    per market. Draw for draw, those of `Streams.uniforms` (`sim.model.phases`).
    """
    # each market's key of (stream, week, slot), hashed once: rows service, upsell, reform,
    # then the 8 slots of screening (`draws.uniform` hashes it for every draw)
    bases = np.empty((11, keys.shape[1]), dtype=np.uint64)
    for market in range(keys.shape[1]):
        for row in range(3):
            bases[row, market] = base(keys[row, market], week, 0)
        for slot in range(8):
            bases[3 + slot, market] = base(keys[3, market], week, slot)
    k = 0
    for i in range(len(ids)):
        client = ids[i]
        market = client // n
        hashed = np.uint64(client - market * n) * GOLDEN  # as `draws.uniform`
        signals[i, 0] = 1.0 - difficulty[i]
        signals[i, 1] = pay_reliability[client]
        signals[i, 2] = formulas.aligned(values, cultures, client, business[i], market)
        signals[i, 3] = 1.0 - unrealistic[client]
        conflict[i] = unit(mix(bases[0, market] + hashed)) < conflict_probability[i]
        upsell_u[i] = unit(mix(bases[1, market] + hashed))
        would_reform[i] = difficulty[i] > reform_above and (
            unit(mix(bases[2, market] + hashed)) < reform_probability
        )
        if drawn[i]:
            for slot in range(8):
                noise_u[slot, k] = unit(mix(bases[3 + slot, market] + hashed))
            k += 1


@numba.njit(cache=True)
def applications(
    applied_to, provider, job_true_hours, job_stated_hours, job_deadline, difficulty,
    referred_by, first_job_week, screens, replicas, n_clients, n_businesses,
    ints, floats, flags, deadline,
):  # fmt: skip
    """The vectorized engine's applicants: every client with ``applied_to >= 0``, gathered.

    Sorted by business (its entry in `Firms`: ``applied_to * replicas + market``), then
    client id: a stable counting sort, the order of ``np.argsort(entry, kind="stable")``.
    Fills the caller's arrays, one column per applicant: `ints` rows client id, entry,
    business (of its market), pair index ``id * n_businesses + business`` and
    `referred_by`; `floats` rows its job's true and stated hours and its difficulty;
    `flags` rows new (the business is not its provider), screened (new, to a business
    that `screens`) and ever served (a first job done, `first_job_week` >= 0); and its
    job's `deadline`.
    """
    starts = np.zeros(len(screens) + 1, dtype=np.int64)
    for market in range(replicas):  # (client i of market r: i // n_clients == r)
        for i in range(market * n_clients, (market + 1) * n_clients):
            if applied_to[i] >= 0:
                starts[applied_to[i] * replicas + market + 1] += 1
    for entry in range(len(screens)):
        starts[entry + 1] += starts[entry]
    for market in range(replicas):  # in id order: ties stay in id order
        for i in range(market * n_clients, (market + 1) * n_clients):
            business = applied_to[i]
            if business < 0:
                continue
            entry = business * replicas + market
            row = starts[entry]
            starts[entry] += 1
            ints[0, row], ints[1, row], ints[2, row] = i, entry, business
            ints[3, row], ints[4, row] = i * n_businesses + business, referred_by[i]
            floats[0, row], floats[1, row] = job_true_hours[i], job_stated_hours[i]
            floats[2, row] = difficulty[i]
            flags[0, row] = provider[i] != business
            flags[1, row] = flags[0, row] and screens[entry]
            flags[2, row] = first_job_week[i] >= 0
            deadline[row] = job_deadline[i]
