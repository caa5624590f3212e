"""Every formula of the model, once, as pure functions of scalars or numpy arrays.

Both engines call these; none of them knows about agents, engines or files. Units: time in
weeks, work in hours, money in currency units. Parameters come as the config's sections
(attribute access), so a formula and its coefficients are read in one place.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from sim.config.registry import WEEKS_PER_YEAR


def need_probability(need_rate):
    """P(a new need this week) for a Poisson rate of `need_rate` jobs per year."""
    return 1.0 - np.exp(-np.asarray(need_rate) / WEEKS_PER_YEAR)


def geometric_weeks(u, p):
    """Weeks (>= 1) until the first success of a weekly Bernoulli(p), by inversion of u."""
    with np.errstate(divide="ignore"):  # log(1 - p) = -inf at p = 1: always the first week
        log_q = np.log1p(-np.asarray(p, dtype=float))
    return geometric_weeks_of_logs(np.log(u), log_q)


def geometric_weeks_of_logs(log_u, log_q):
    """`geometric_weeks` from log u and log(1 - p): floor(log u / log(1 - p)) + 1 weeks.

    Never (2**30 weeks) where p = 0 (log(1 - p) = 0: not below 0, as it is for any p > 0).
    """
    with np.errstate(divide="ignore"):
        weeks = np.floor(log_u / log_q) + 1.0
    return np.where(log_q < 0, np.minimum(weeks, 2**30), 2**30).astype(np.int64)


def job_size(z, scale, jobs: Any):
    """True size of a job in hours: the client's `scale` x a lognormal of median hours.

    `z` is a standard normal; the lognormal has median `jobs.median_hours` and log s.d.
    `jobs.sigma`.
    """
    return scaled_size(size_factor(z, jobs), scale, jobs)


def size_factor(z, jobs: Any):
    """The lognormal factor exp(sigma z) of a job's size (`job_size`), from a standard normal."""
    return np.exp(jobs.sigma * z)


def scaled_size(factor, scale, jobs: Any):
    """`job_size` from its lognormal `factor` (`size_factor`): `scale` x median hours x factor."""
    return scale * (jobs.median_hours * factor)


def stated_size(true_hours, misdiagnosed, u, jobs: Any):
    """The size the client asks for: true, or with misdiagnosis true x U(low, high)."""
    return np.where(misdiagnosed, true_hours * misdiagnosed_share(u, jobs), true_hours)


def misdiagnosed_share(u, jobs: Any):
    """The share of its true size a misdiagnosed job is stated as (`stated_size`): U(low, high)."""
    return jobs.misdiagnosed_low + (jobs.misdiagnosed_high - jobs.misdiagnosed_low) * u


def ad_reach(reach, honesty, ads: Any):
    """Weekly P(an unaware client becomes aware): dishonest ads reach further."""
    return reach * (1.0 + ads.dishonesty_boost * (1.0 - np.asarray(honesty)))


def alignment(v0, v1, c0, c1):
    """Value alignment (1 + cos) / 2 in [0, 1] of the unit vectors (v0, v1) and (c0, c1).

    The cosine is their dot product with its second product and the sum rounded once,
    ``fma(v1, c1, v0 * c0)``: exactly what OpenBLAS's matrix product gives on a CPU with
    fused multiply-adds. It is computed where it is read, by the compiled kernels
    (`sim.model.kernels.formulas.aligned`: a client's values and a business's culture), and
    by `sim.model.kernels.formulas.alignments` for the numpy rules.
    """
    return 0.5 * (1.0 + np.clip(fma(v1, c1, v0 * c0), -1.0, 1.0))


def fma(a, b, c):
    """A × b + c rounded once (a fused multiply-add), of finite Python floats.

    The compiled formulas run it as one instruction (`sim.model.kernels.formulas`); numpy
    has no such function, so `alignment` is computed by the kernels. Here the exact sum is
    a fraction, rounded once to a float (as `math.fma` of Python 3.13).
    """
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def gumbel(u):
    """Standard Gumbel variates from uniforms in (0, 1): -log(-log u), in one new array."""
    g = np.log(u)
    np.negative(g, out=g)
    np.log(g, out=g)
    return np.negative(g, out=g)


def choice_utility(
    reputation, align, price_ratio, budget, credit, warning, queue_weeks, noise, choice: Any,
    prepay=0.0,
):  # fmt: skip
    """Multinomial-logit utility of a business for a client (docs/ODD.md §7.3).

    `price_ratio` is the business's price over the market price; `queue_weeks` its backlog over
    its capacity; `noise` standard Gumbel variates, scaled by `choice.noise`; `prepay` 1 for a
    business that requires prepayment, weighted by `choice.beta_prepay` (<= 0: it deters).
    Written with arithmetic only, so the choice kernel compiles this very function
    (`sim.model.kernels.choice`, with the noise added last, by `pick`).
    """
    return (
        choice.beta_reputation * (reputation - choice.reference_rating)
        + choice.beta_alignment * align
        - choice.beta_price * price_ratio / budget
        + credit
        - warning
        + choice.beta_wait * queue_weeks
        + choice.beta_prepay * prepay
        + choice.noise * noise
    )


def role_shift(serves: str, role: str, tailoring: float) -> float:
    """How a policy that serves `serves` tilts the alignment `role` perceives (docs/ODD.md §7.10).

    +tailoring for the role it serves (decider or user), −tailoring for the other one, 0 when
    it serves all.
    """
    if serves == "all":
        return 0.0
    return tailoring if serves == role else -tailoring


def tailored_alignment(align, shift):
    """Alignment a role perceives when a business courts it (shift s > 0) or neglects it (s < 0).

    Courted: a + s·(1 − a), a share s of the way to 1; neglected: a·(1 + s), a share |s| of the
    way to 0; unchanged at s = 0.
    """
    align, shift = np.asarray(align), np.asarray(shift)
    return np.where(shift >= 0, align + shift * (1.0 - align), align * (1.0 + shift))


def culture_signals(signals, strength, column: int = 2):
    """Fit signals as a business of culture strength c judges them: each leans toward alignment.

    Every signal s becomes (1 − c)·s + c·alignment (column `column` of the fit signals, itself
    unchanged), so a weighted-mean score becomes (1 − c)·score + c·alignment: culture takes a
    share c of every judgement. At c = 0 the signals are unchanged.
    """
    signals = np.asarray(signals, dtype=float)
    return signals + strength * (signals[..., column : column + 1] - signals)


def culture_affinity(align, strength):
    """How much more a business's ads and stories reach a client: g = 1 − c + 2c·a.

    With culture strength c, a client of alignment a is reached g times as often; g is 1 at
    c = 0, and its mean over clients is 1 when alignment averages 1/2 (values uniform on the
    circle), so a strong culture draws aligned clients without buying more reach.
    """
    return 1.0 - strength + 2.0 * strength * align


def referral_matching(fit, matching):
    """How much more a referral reaches a friend of fit `fit`: 1 − m + m · fit / mean fit.

    A referrer knows its friends and the business, so it passes the referral on to those it
    expects to fit (Schmitt, Skiera & Van den Bulte 2011, "better matching"). The factor is 1
    at m = 0 and averages 1 over clients, so matching redirects referrals without adding any.
    """
    fit = np.asarray(fit, dtype=float)
    return 1.0 - matching + matching * fit / fit.mean()


def fit_score(signals, weights):
    """Weighted mean of the four (observed) signals: the screening score in [0, 1].

    The products are summed in pairs, (1st + 3rd) + (2nd + 4th): the order in which
    OpenBLAS's matrix-vector product sums them on a CPU with AVX2 (the same bits as
    ``signals @ weights`` there), written out so that no library's order is in the score
    and it is the same on every CPU.
    """
    weights = np.asarray(weights, dtype=float)
    p = np.asarray(signals) * weights
    return ((p[..., 0] + p[..., 2]) + (p[..., 1] + p[..., 3])) / weights.sum()


def projected_finish_weeks(backlog_hours: float, job_hours: float, capacity_hours: float) -> float:
    """Weeks until a new job would be finished behind the current backlog.

    For scalars: compiled into the intake's kernel (`sim.model.kernels.intake`). A
    capacity of 0 counts as 1e-9 hours a week: the job is never finished in time.
    """
    return (backlog_hours + job_hours) / max(capacity_hours, 1e-9)


def conflict_probability(difficulty, service: Any):
    """P(a job ends in conflict) rises with the square of difficulty."""
    return service.conflict_prob * np.asarray(difficulty) ** 2


def work_per_billed_hour(difficulty, conflict, service: Any):
    """Hours of work per billed hour: 1 + k d, plus the conflict share if a conflict."""
    return 1.0 + (service.difficulty_hours * difficulty + service.conflict_hours * conflict)


def rework_hours(true_hours, stated_hours, misfit, service: Any):
    """Unbilled rework hours of a misdiagnosed job: `rework_share` x (true − stated size).

    A job quoted on the stated size solves the stated need; the part of the true need it
    missed is partly done again, unbilled (`service.rework_share` of the gap; 0 if no misfit).
    """
    gap = np.maximum(np.asarray(true_hours) - np.asarray(stated_hours), 0.0)
    return np.where(misfit, service.rework_share * gap, 0.0)


def due(week: int, accept_week, deadline):
    """Mask of jobs due this week or overdue: `week − accept week + 1 ≥ deadline` (weeks).

    A job still open after this week is late (docs/ODD.md §7.7); deadline 0 is always overdue.
    """
    return week - np.asarray(accept_week) + 1 >= np.asarray(deadline)


def invoice_share(abandoned, failed, disputed, payment: Any):
    """Share of its quote a closed job's client owes: 0, 1 − `dispute_share`, or 1.

    Nothing is owed for a job abandoned or failed, the quote less `payment.dispute_share`
    for one disputed, all of it otherwise. A prepaid client is refunded the rest of its
    quote; a postpaid one pays its `payment_fraction` of what it owes.
    """
    kept = np.where(disputed, 1.0 - payment.dispute_share, 1.0)
    return np.where(np.asarray(abandoned) | np.asarray(failed), 0.0, kept)


def payment_fraction(u_full, u_partial, pay_reliability, payment: Any):
    """Share of an invoice paid: all with P = r, else a part with P = partial_prob, else 0."""
    partial = np.where(u_partial < payment.partial_prob, payment.partial_share, 0.0)
    return np.where(u_full < pay_reliability, 1.0, partial)


def satisfaction(
    align,
    wait_weeks,
    price_ratio,
    budget,
    misfit,
    extras,
    late,
    overpromise,
    difficulty,
    noise,
    sat: Any,
    failed=False,
):
    """Satisfaction S in [0, 1] with a finished job (docs/ODD.md §7.7).

    `overpromise` is the unmet ad promise (0 after the first job); `noise` standard normals;
    `failed` marks impossible jobs that failed (`failed_impossible`).
    """
    s = (
        sat.baseline
        + sat.alignment * (align - 0.5)
        - sat.wait * np.maximum(wait_weeks - sat.wait_grace, 0.0)
        - sat.price * np.maximum(price_ratio / budget - 1.0, 0.0)
        - sat.misfit * misfit
        - sat.extras * extras
        - sat.late * late
        - sat.failed * failed
        - overpromise
        - sat.difficulty * difficulty
        + sat.noise * noise
    )
    return np.clip(s, 0.0, 1.0)


def leaves_queue(weeks_waited, patience, prepaid, prepaid_leave: bool):
    """Whether a client leaves the queue of a business that has not finished its job.

    It leaves when its job has waited longer than its `patience` (weeks), unless it prepaid
    (walking away would forfeit the money) and prepaid clients stay (`prepaid_leave` off).
    """
    return (weeks_waited > patience) & (prepaid_leave | np.logical_not(prepaid))


def abandoned_satisfaction(s, patience: Any):
    """Satisfaction of a client who leaves a queue: S as if judged now, minus the penalty."""
    return np.clip(np.asarray(s) - patience.penalty, 0.0, 1.0)


def overpromise(honesty, ads: Any):
    """Satisfaction lost on a first job when the ads promised more than the service gives."""
    return ads.overpromise * (1.0 - np.asarray(honesty))


def judged_satisfaction(s, held, first_job, memory: float):
    """The satisfaction a client judges its provider by after a job (0-1).

    On a first job with the provider, this job's `s`; on a later one, `memory` x the
    satisfaction it `held` + (1 - memory) x `s`. Cumulative satisfaction: a client weighs a
    provider's record, not its last job alone (Bolton 1998). `memory` 0: the job alone.
    """
    if memory == 0:
        return np.asarray(s)
    return np.where(first_job, s, memory * np.asarray(held) + (1.0 - memory) * np.asarray(s))


def retention_probability(s, sat: Any):
    """P(a client stays with its provider) rises in satisfaction (logistic).

    One half at satisfaction `sat.retention_threshold`: below 0.5, switching costs keep a
    client through a job that left it somewhat dissatisfied.
    """
    return 1.0 / (1.0 + np.exp(-sat.retention_slope * (np.asarray(s) - sat.retention_threshold)))


def review_probability(s, propensity, reviews: Any):
    """P(posting a review): highest at the extremes of S, which makes ratings J-shaped."""
    extremity = np.abs(2.0 * np.asarray(s) - 1.0) ** 3
    return propensity * (reviews.floor + (1.0 - reviews.floor) * extremity)


def rating(s):
    """Star rating 1..5 from satisfaction: ceil(5 S), at least 1."""
    return np.clip(np.ceil(5.0 * np.asarray(s)), 1, 5).astype(np.int64)


def reputation(weight_sum, rating_sum, reviews: Any):
    """Bayesian reputation: posterior mean rating with `prior_reviews` at `prior_rating`."""
    prior = reviews.prior_reviews
    return (prior * reviews.prior_rating + rating_sum) / (prior + weight_sum)


def weekly_decay(half_life_weeks):
    """Factor applied each week to a quantity that halves every `half_life_weeks`."""
    return 0.5 ** (1.0 / half_life_weeks)


def decayed(amount, since_weeks, decay):
    """A credit or warning set `since_weeks` ago, decayed by `decay` per week (lazily)."""
    return amount * np.power(decay, since_weeks)


def tell_probability(talkativeness, s, wom: Any):
    """P(telling each neighbour), and the sign of the story (+1, -1 or 0)."""
    sign = np.where(s > wom.positive, 1, np.where(s < wom.negative, -1, 0))
    p = talkativeness * np.where(sign > 0, wom.p_positive, wom.p_negative)
    return np.where(sign != 0, p, 0.0), sign


def expected_work_hours_per_week(need_rate, difficulty, scale, jobs: Any, service: Any):
    """Market demand in hours worked per week (difficulty and conflict included).

    Args:
        need_rate: each client's jobs per year.
        difficulty: each client's difficulty (0-1).
        scale: each client's size (its jobs' hours x scale).
        jobs: the `market.jobs` config (median hours, log s.d.).
        service: the `market.service` config (difficulty and conflict hours).
    """
    mean_size = jobs.median_hours * np.exp(jobs.sigma**2 / 2.0)
    conflict = service.conflict_hours * conflict_probability(difficulty, service)
    per_job = scale * mean_size * (1.0 + service.difficulty_hours * difficulty + conflict)
    return float(np.sum(need_probability(need_rate) * per_job))


def capacity_per_business(demand_hours, demand_supply_ratio, n_businesses):
    """Capacity (hours per week) so that demand / supply equals the market's ratio."""
    return demand_hours / (demand_supply_ratio * n_businesses)


def smoothed(expected: float, actual: float, weeks: float) -> float:
    """First-order exponential smoothing: `expected` moves 1/`weeks` of the way to `actual`.

    Sterman (2000, ch. 11 and 19) forms expected orders this way (SMOOTH); one step is a
    week, so `weeks` >= 1 keeps it stable. For scalars: compiled into
    `sim.model.kernels.accounts`.
    """
    return expected + (actual - expected) / weeks


def adjusted_capacity(
    capacity: float, expected_hours: float, backlog_hours: float, start_capacity: float,
    target_backlog_weeks: float, adjust_weeks: float, min_share: float, max_share: float,
) -> float:  # fmt: skip
    """Next week's capacity (hours a week): a first-order move toward desired capacity.

    After Sterman's capacity acquisition (2000, ch. 19): desired capacity is the expected
    weekly load plus the correction of the backlog toward its target, spread over the
    adjustment time; capacity closes 1/`adjust_weeks` of its gap to it a week, within
    [`min_share`, `max_share`] x the starting capacity (docs/ODD.md §7.9)::

        desired = max(expected + (backlog - target_backlog_weeks * expected) / adjust_weeks, 0)
        next    = clip(capacity + (desired - capacity) / adjust_weeks, floor, ceiling)

    For scalars: compiled into `sim.model.kernels.accounts`, one business at a time; the
    comparisons as numpy's ``maximum`` and ``clip`` make them.

    Args:
        capacity: this week's capacity (hours a week).
        expected_hours: smoothed hours a week of accepted work and overhead (`smoothed`).
        backlog_hours: accepted work not yet done (hours).
        start_capacity: the business's starting capacity (hours a week).
        target_backlog_weeks: the backlog aimed at, in weeks of the expected load.
        adjust_weeks: the weeks over which capacity closes its gap (and the backlog's).
        min_share: the floor, as a share of the starting capacity.
        max_share: the ceiling, as a share of the starting capacity.
    """
    target = target_backlog_weeks * expected_hours
    desired = expected_hours + (backlog_hours - target) / adjust_weeks
    desired = desired if desired >= 0.0 else 0.0
    moved = capacity + (desired - capacity) / adjust_weeks
    floor, ceiling = min_share * start_capacity, max_share * start_capacity
    moved = moved if moved > floor else floor
    return moved if moved < ceiling else ceiling


def capacity_change_costs(
    change_hours: float, weekly_pay: float, hire_cost_weeks: float, layoff_cost_weeks: float
) -> tuple[float, float]:
    """Hiring and layoff costs (cu) of a change of capacity (hours a week): (hiring, layoff).

    Each hour of weekly capacity added costs `hire_cost_weeks` weeks of its pay, each hour
    shed `layoff_cost_weeks` weeks; `weekly_pay` is the pay of an hour of weekly capacity
    that is worked (salary + wage, cu a week), as labour economics measures hiring costs.
    For scalars: compiled into `sim.model.kernels.accounts`.
    """
    added = change_hours if change_hours >= 0.0 else 0.0
    shed = -change_hours if -change_hours >= 0.0 else 0.0
    return hire_cost_weeks * weekly_pay * added, layoff_cost_weeks * weekly_pay * shed


def crossover_week(cumulative_a, cumulative_b):
    """First week after which series a stays above series b; None if it never does."""
    ahead = np.asarray(cumulative_a) > np.asarray(cumulative_b)
    if ahead.size == 0 or not ahead[-1]:
        return None
    behind = np.flatnonzero(~ahead)
    return 0 if behind.size == 0 else int(behind[-1] + 1)


def whale_curve(profits):
    """Cumulative share of total profit, clients sorted most profitable first."""
    ordered = np.sort(np.asarray(profits, dtype=float))[::-1]
    total = ordered.sum()
    return np.cumsum(ordered) / total if total != 0 else np.zeros_like(ordered)
