"""Phases 7-8 compiled: closing jobs judged in one pass (`sim.model.phases.finish_jobs`).

`judge` walks the closing jobs once: each one's failure and dispute (drawn here), its
payment, refund, satisfaction, the satisfaction it is judged by, its story and its stars,
its billed and rework hours. Every formula is `sim.model.mechanics`' own, compiled for
scalars by `formulas.scalar`: numpy's ``where``, ``clip`` and ``asarray`` read element by element,
which is what they do on arrays, so no value moves by a bit. What needs a transcendental
(the noise's log and cosine, retention's exp, the review's cube) stays in numpy, before and
after the pass (`finish_jobs`).
"""

from __future__ import annotations

from typing import NamedTuple

import numba

from sim.model import mechanics
from sim.model.kernels import draws, formulas

_invoice_share = formulas.scalar(mechanics.invoice_share)
_payment_fraction = formulas.scalar(mechanics.payment_fraction)
_tailored = formulas.scalar(mechanics.tailored_alignment)
_satisfaction = formulas.scalar(mechanics.satisfaction)
_abandoned_satisfaction = formulas.scalar(mechanics.abandoned_satisfaction)
_judged_satisfaction = formulas.scalar(mechanics.judged_satisfaction)
_tell_probability = formulas.scalar(mechanics.tell_probability)
_rating = formulas.scalar(mechanics.rating)
_rework_hours = formulas.scalar(mechanics.rework_hours)
_leaves_queue = formulas.scalar(mechanics.leaves_queue)


class Satisfaction(NamedTuple):
    """The coefficients `mechanics.satisfaction` reads (`clients.satisfaction`)."""

    baseline: float
    alignment: float
    wait: float
    wait_grace: float
    price: float
    misfit: float
    extras: float
    late: float
    failed: float
    difficulty: float
    noise: float


class Payment(NamedTuple):
    """The terms `mechanics.invoice_share` and `payment_fraction` read (`market.payment`)."""

    partial_prob: float
    partial_share: float
    dispute_share: float


class Wom(NamedTuple):
    """The thresholds and probabilities `mechanics.tell_probability` reads (`clients.wom`)."""

    positive: float
    negative: float
    p_positive: float
    p_negative: float


class Patience(NamedTuple):
    """What `mechanics.abandoned_satisfaction` reads (`clients.patience`)."""

    penalty: float


class Service(NamedTuple):
    """What `mechanics.rework_hours` reads (`market.service`)."""

    rework_share: float


def terms(kind, section):
    """The fields of `kind` (a NamedTuple above) read from a config `section`, as floats."""
    return kind(*(float(getattr(section, name)) for name in kind._fields))


AHEAD = 8  # jobs ahead whose clients' rows `judge` asks the memory for (`draws.prefetch`)
#: The rows of `judge`'s `numbers`, in order (the `Outcome` fields they become).
NUMBERS = ("paid", "unpaid", "satisfaction", "tell_probability", "refund", "billed", "rework",
           "judged")  # fmt: skip


@numba.njit(cache=True)
def judge(
    ids, rows, week, provider, billed, prepaid, accept_week, deadline, need_week, misfit,
    extras, true_hours, stated_hours, kept, difficulty, abandoned, held, holds, u_full, u_partial,
    noise, pay_reliability, payer_budget, talkativeness, user_values, cultures, user_shift,
    tailored,
    prices, price_ratio, overpromise, sat, memory, payment, patience, wom, talks, service,
    failure, failure_keys, dispute, dispute_keys, n, numbers, stars, story, failed, disputed,
):  # fmt: skip
    """Each closing job judged: money, failure, dispute, satisfaction, story, stars, hours.

    The rules of `sim.model.phases.finish_jobs`, job by job in their order, each formula
    `sim.model.mechanics`' own (`scalar`). Job i is client ``ids[i]``'s: its state is row
    ``rows[i]`` of the per-row arrays (from `billed` to `held`), its traits entry ``ids[i]``.

    Args:
        ids: the clients' ids (int64): their traits and draws.
        rows: each job's row in the per-row arrays.
        week: this week.
        provider: each job's business (its index in the per-business arrays).
        billed: the jobs' billed hours.
        prepaid: mask of the jobs paid in advance.
        accept_week: the week each job was accepted.
        deadline: each job's deadline (weeks after acceptance; 0: impossible).
        need_week: the week each job's need arrived.
        misfit: mask of the jobs quoted on a wrong stated size.
        extras: mask of the jobs sold with extras.
        true_hours: the jobs' true size (hours).
        stated_hours: the jobs' stated size (hours).
        kept: each client's provider (-1: none): a job at another business is its first
            there.
        difficulty: the clients' difficulty.
        abandoned: mask of the jobs whose clients left the queue (one per job).
        held: the satisfaction each client holds of its provider (read if `holds`).
        holds: whether `held` is given (else each judges this job alone).
        u_full: the uniforms of full payment (``payment``, slot 0).
        u_partial: the uniforms of partial payment (``payment``, slot 1).
        noise: the standard normals of satisfaction.
        pay_reliability: each client's reliability as a payer, by id.
        payer_budget: each client's payer's budget, by id.
        talkativeness: each client's talkativeness, by id.
        user_values: each client's user's values, by id (clients, 2).
        cultures: each business's culture in each market (businesses, markets, 2): the
            user's alignment with it is computed here (`formulas.aligned`).
        user_shift: how each business tilts its users' alignment (read if `tailored`).
        tailored: whether any business tilts it.
        prices: each business's price per billed hour.
        price_ratio: each business's price over the market price.
        overpromise: each business's unmet ad promise on a first job.
        sat: the terms of `mechanics.satisfaction` (`Satisfaction`).
        memory: the weight of the satisfaction held (`mechanics.judged_satisfaction`).
        payment: the terms of payment (`Payment`).
        patience: the terms of a client who leaves the queue (`Patience`).
        wom: the terms of stories (`Wom`).
        talks: whether clients tell stories (`wom.enabled`); else no story, probability 0.
        service: the terms of rework (`Service`).
        failure: P(an impossible job fails); 0 draws nothing.
        failure_keys: the ``"failure"`` stream's key per market (`Streams.kernel_keys`).
        dispute: P(a late job that did not fail is disputed); 0 draws nothing.
        dispute_keys: the ``"dispute"`` stream's key per market.
        n: clients per market (`Streams.kernel_keys`).
        numbers: set, rows of `NUMBERS`, shape (8, jobs).
        stars: set to each job's rating were it reviewed (`mechanics.rating`).
        story: set to each story's sign (+1, -1, 0: none).
        failed: set to the mask of the failed jobs.
        disputed: set to the mask of the disputed jobs.
    """
    paid, unpaid, satisfied, p_tell = numbers[0], numbers[1], numbers[2], numbers[3]
    refund, billed_hours, rework, judged = numbers[4], numbers[5], numbers[6], numbers[7]
    for i in range(len(ids)):
        if i + AHEAD < len(ids):  # a client's row further on, read while this one is judged
            later = ids[i + AHEAD]
            draws.prefetch(user_values, later, 0)
            for field in (billed, true_hours, stated_hours, difficulty):
                draws.prefetch(field, rows[i + AHEAD], 0)
            for trait in (pay_reliability, payer_budget, talkativeness):
                draws.prefetch(trait, later, 0)
        client, b, left, row = ids[i], provider[i], abandoned[i], rows[i]
        quote = billed[row] * prices[b]
        late = (week - accept_week[row] + 1) > deadline[row]
        failing = False  # an impossible job may fail, a late one that did not be disputed
        if failure > 0 and not left and deadline[row] == 0:
            failing = draws.uniform(failure_keys, n, week, 0, client) < failure
        disputing = False
        if dispute > 0 and not left and late and not failing:
            disputing = draws.uniform(dispute_keys, n, week, 0, client) < dispute
        failed[i], disputed[i] = failing, disputing
        invoice = _invoice_share(left, failing, disputing, payment) * quote
        fraction = _payment_fraction(u_full[i], u_partial[i], pay_reliability[client], payment)
        fraction = 0.0 if prepaid[row] else fraction
        unpaid[i] = 0.0 if prepaid[row] else (1.0 - fraction) * invoice
        refund[i] = quote - invoice if prepaid[row] else 0.0
        paid[i] = fraction * invoice
        align = formulas.aligned(user_values, cultures, client, b, client // n)
        if tailored:  # a business that serves one role courts or neglects it
            align = _tailored(align, user_shift[b])
        first_job = kept[row] != b
        s = _satisfaction(
            align, week - need_week[row], price_ratio[b], payer_budget[client],
            misfit[row] and not left, extras[row] and not left, late,
            overpromise[b] if first_job else 0.0, difficulty[row], noise[i], sat, failing,
        )  # fmt: skip
        if left:
            s = _abandoned_satisfaction(s, patience)
        satisfied[i] = s
        judged[i] = _judged_satisfaction(s, held[row] if holds else s, first_job, memory)
        p_tell[i], story[i] = 0.0, 0
        if talks:
            p_tell[i], story[i] = _tell_probability(talkativeness[client], s, wom)
        stars[i] = _rating(s)
        billed_hours[i] = 0.0 if left else billed[row]
        rework[i] = _rework_hours(true_hours[row], stated_hours[row], misfit[row] and not left,
                                  service)  # fmt: skip


#: The per-business sums `totals` makes, rows of its float and int arrays, in this order:
#: the `Firms` counters (`sim.model.ledger.COUNTERS`) they are booked to, and the reviews'
#: stars and count (`Firms.record_reviews`).
FLOAT_TOTALS = ("revenue", "unpaid", "satisfaction_sum", "refunds", "billed_hours",
                "rework_hours", "stars")  # fmt: skip
INT_TOTALS = ("completed", "abandoned", "retained", "disputes", "failed", "reviews")


@numba.njit(cache=True)
def totals(
    firm, paid, refund, unpaid, satisfaction, billed, rework, rating, abandoned, retained,
    disputed, failed, floats, ints,
):  # fmt: skip
    """Each business's sums of its closed jobs (`sim.model.phases.book_outcomes`).

    One pass over the jobs, in their order: each sum runs as ``np.bincount`` runs it (a
    job's amount added to its business's running sum, from 0). Revenue is what was paid
    less the refunds; satisfaction and the count of completed jobs are of the jobs not
    abandoned; stars and the count of reviews of the jobs reviewed (rating > 0).

    Args:
        firm: each job's business (its entry in the per-business arrays).
        paid: the money each client paid.
        refund: the money each was refunded.
        unpaid: the money each owes.
        satisfaction: each client's satisfaction with its job.
        billed: each job's billed hours (0 if abandoned).
        rework: each job's unbilled rework hours.
        rating: each job's review's stars (0: none posted).
        abandoned: mask of the jobs whose clients left the queue.
        retained: mask of the clients who stay.
        disputed: mask of the disputed jobs.
        failed: mask of the failed jobs.
        floats: set to the sums of `FLOAT_TOTALS`, shape (7, businesses).
        ints: set to the counts of `INT_TOTALS`, shape (6, businesses).
    """
    floats[:] = 0.0
    ints[:] = 0
    for i in range(len(firm)):
        b = firm[i]
        floats[0, b] += paid[i] - refund[i]
        floats[1, b] += unpaid[i]
        floats[3, b] += refund[i]
        floats[4, b] += billed[i]
        floats[5, b] += rework[i]
        if abandoned[i]:
            ints[1, b] += 1
        else:
            floats[2, b] += satisfaction[i]
            ints[0, b] += 1
        if rating[i] > 0:
            floats[6, b] += rating[i]
            ints[5, b] += 1
        ints[2, b] += retained[i]
        ints[3, b] += disputed[i]
        ints[4, b] += failed[i]


@numba.njit(cache=True)
def leaving(weeks_waited, patience, prepaid, prepaid_leave, out):
    """Set `out` to the mask of the clients who leave the queue (`mechanics.leaves_queue`)."""
    for i in range(len(out)):
        out[i] = _leaves_queue(weeks_waited[i], patience[i], prepaid[i], prepaid_leave)


@numba.njit(cache=True)
def closing(
    job_provider, job_remaining, job_need_week, job_prepaid, patience, week, prepaid_leave, ids,
    provider, abandoned,
):  # fmt: skip
    """The vectorized engine's closing jobs: those finished and those their clients leave.

    One pass over the clients' state arrays (``job_`` + name; `patience` by id): a job
    with a provider closes when no work is left on it, or when its client leaves the queue
    after service (`mechanics.leaves_queue`; it has waited ``week - need week + 1`` weeks).
    Fills the first entries of the caller's arrays (one entry per client will do), in id
    order: the clients' `ids`, their jobs' `provider` and whether they were `abandoned`.

    Returns:
        The number of closing jobs.
    """
    k = 0
    for i in range(len(job_provider)):
        if job_provider[i] < 0:
            continue
        done = job_remaining[i] <= 0.0
        if done or _leaves_queue(week - job_need_week[i] + 1, patience[i], job_prepaid[i],
                                 prepaid_leave):  # fmt: skip
            ids[k], provider[k], abandoned[k] = i, job_provider[i], not done
            k += 1
    return k
