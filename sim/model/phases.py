"""The client-side rules of each phase, as functions of the arrays of those who act.

Both engines call these: the vectorized engine with every acting client at once, the agents
engine with one client agent at a time. A rule reads the run's fixed inputs from a
`sim.model.world.World` (config sections, streams, traits, network, the businesses' prices and
cultures) and the week's state from its arguments, and applies `sim.model.mechanics`. A rule
that changes clients returns the changes (`sim.model.state.Updates`: `need_arrives`,
`give_up`, `intake_outcome`, `served`, `settle`, `stories_told`, `release`), which
`MarketModel.apply` writes into either engine; the engines only gather what a rule reads.
Random numbers are keyed by client id, so a decision does not depend on who else acts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from sim.model import mechanics, state
from sim.model.intake import Applicants, Intake
from sim.model.kernels import choice as choice_kernels
from sim.model.kernels import finish, formulas, needs, wom
from sim.model.kernels import intake as intake_kernel
from sim.model.rng import box_muller
from sim.model.state import Updates
from sim.model.world import World

NEVER = state.NEVER  # a week that never comes

#: The order of one week (the nine phases of docs/ODD.md §3). A name is a `MarketModel` method (the
#: engine's, where it gathers its acting clients itself); a new phase may instead be a
#: function ``(model, week)`` of this module written against `MarketModel.read` / `write`,
#: put in its place here.
STEP: tuple = (
    "start_week",  # businesses reset their weekly counters and age their reviews
    # 1. need, 3. choice: each client on its own (2. awareness by ads is precomputed per
    # client: `ad_weeks`); neither reads another client's state
    "clients_step",
    "screen_and_quote",  # 4-5. screening, quote and diagnosis
    "serve",  # 6. service
    "complete",  # 7-8. payment, satisfaction, reviews, word of mouth
    "close_accounts",  # 9. accounts and exit
)

#: The fields of an open job (`sim.model.state.JOB`) that the intake and the finish read.
INTAKE_JOB_FIELDS = ("true_hours", "stated_hours", "deadline")
FINISH_JOB_FIELDS = (
    "billed",
    "prepaid",
    "accept_week",
    "deadline",
    "need_week",
    "misfit",
    "extras",
    "true_hours",
    "stated_hours",
)


def pairs(matrix: np.ndarray, ids, business) -> np.ndarray:
    """`matrix[ids, business]` for a (clients, businesses) matrix, as one flat `take`.

    Numpy's two-array fancy indexing is several times slower than `take` on the flat index.
    """
    return matrix.reshape(-1).take(ids * matrix.shape[1] + business)


def need_gap(world: World, ids: np.ndarray, arrivals, u=None) -> np.ndarray:
    """Weeks until each client's next need; the k-th need is keyed by k (exogenous arrivals).

    `u`: the needs' uniforms, if drawn already (`sim.model.kernels.needs.draw`). A geometric
    number of weeks of the client's need probability (`World.log_no_need`).
    """
    if u is None:
        u = world.streams.uniform("need", arrivals, ids)
    return mechanics.geometric_weeks_of_logs(np.log(u), world.log_no_need().take(ids))


def ad_weeks(world: World, ids: np.ndarray) -> np.ndarray:
    """Week (0-based) in which each business's ads first reach each client, shape (n, B).

    A business's reach is scaled, client by client, by its culture's affinity with the
    client's decider (`mechanics.culture_affinity`; 1 at culture strength 0). Weeks past
    the largest a run reaches are `NEVER`. Computed `AD_CHUNK` clients at a time, so the
    temporaries stay small beside the result (a pair-week array).
    """
    out = np.empty((len(ids), world.n_businesses), dtype=state.PAIR_WEEK)
    for start in range(0, len(ids), AD_CHUNK):
        some = ids[start : start + AD_CHUNK]
        u = world.streams.uniforms(0, some, ad_draws(world.n_businesses)).T  # (clients, B)
        reach = world.reach
        if world.culture_strength.any():
            aligned = formulas.alignments(
                world.population["decider_values"], world.cultures, some, world.streams.per_market
            )
            affinity = mechanics.culture_affinity(aligned, world.culture_strength)
            reach = np.minimum(reach * affinity, 1.0)
        out[start : start + len(some)] = np.minimum(mechanics.geometric_weeks(u, reach) - 1, NEVER)
    return out


AD_CHUNK = 1 << 16  # clients per block of `ad_weeks`


@functools.cache
def ad_draws(n_businesses: int) -> tuple[tuple[str, int], ...]:
    """The draws of `ad_weeks`: stream `ads`, week 0, slot b for business b (`Streams.uniforms`)."""
    return tuple(("ads", b) for b in range(n_businesses))


@dataclass(slots=True)
class Jobs:
    """New jobs: true and stated size (hours) and deadline (weeks; 0 is impossible)."""

    true_hours: np.ndarray
    stated_hours: np.ndarray
    deadline: np.ndarray


#: The draws of a phase for the same clients, made at once (`Streams.uniforms`): (stream,
#: slot); a normal takes slots 2k and 2k + 1 of its stream (`Streams.normal`).
OPEN_DRAWS = (("size", 0), ("size", 1), ("misdiagnosis", 0), ("misdiagnosis", 1),
              ("deadline", 0))  # fmt: skip
#: The streams of the applicants' draws (`sim.model.kernels.intake.applicants`): slot 0 of
#: the first three, slots 0-7 of screening (4 normals).
INTAKE_STREAMS = ("service", "upsell", "reform", "screening")
FINISH_DRAWS = (("payment", 0), ("payment", 1), ("satisfaction", 0), ("satisfaction", 1),
                ("retention", 0), ("review", 0))  # fmt: skip


def open_jobs(world: World, ids: np.ndarray, u: np.ndarray) -> Jobs:
    """Phase 1: the jobs of clients whose need arrived this week, from their `OPEN_DRAWS` `u`.

    Sized (`mechanics.job_size`, `stated_size`), and dated, in one pass
    (`sim.model.kernels.needs.open_jobs`) once numpy has drawn their lognormal factors.
    """
    pop, cfg = world.population, world.market.jobs
    factor = mechanics.size_factor(box_muller(u[0], u[1]), cfg)
    n = len(ids)
    jobs = Jobs(np.empty(n), np.empty(n), np.empty(n, dtype=state.BY_NAME["job_deadline"].dtype))
    needs.open_jobs(
        ids, factor, u, pop["scale"], pop["misdiagnosis"], pop["unrealistic"],
        needs.JobTerms.of(cfg), jobs.true_hours, jobs.stated_hours, jobs.deadline,
    )  # fmt: skip
    return jobs


def standing(world: World, amount, since_week, week: int) -> np.ndarray:
    """Credits or warnings decayed to `week`; 0 where never set (`since_week` < 0).

    The powers of the decay are tabulated (`world.decay_powers`): a lookup, not a power.
    Ages of unset pairs (`since_week` = -1) are looked up too, then discarded.
    """
    powers = world.decay_powers(week + 1)
    return np.where(since_week >= 0, amount * powers[week - since_week], 0.0)


#: The pair fields (`sim.model.state.PAIR`) that choice reads, by `choose`'s `pair`.
CHOICE_PAIR_FIELDS = ("known_week", "blocked_until", "credit", "credit_week", "warning",
                      "warning_week")  # fmt: skip


def choose(
    world: World, ids, week: int, provider, declined_by, look_from, pair, business_state,
    rows=None,
):  # fmt: skip
    """Phase 3: the business each of the clients `ids` with an unplaced job applies to.

    A client with a provider goes back to it, unless the provider declined this very job
    (bit b of the job's `declined_by`). Any other chooses by logit, -1 if it has no
    candidate: it may choose a business it knows (`known_week`) that has not declined it,
    nor been left by it, within its memory of that (`blocked_until`), while the business is
    active, and that has not declined the job. It balks at a business whose queue (weeks of
    backlog) is longer than its patience: not a candidate. Among its candidates it picks
    the highest utility (`mechanics.choice_utility`, with Gumbel noise), ties to the lowest
    business index; a business that serves one role of the buying centre tilts the
    alignment the decider perceives (`mechanics.tailored_alignment`). Two passes
    (`sim.model.kernels.choice`), the noise taken between them.

    Args:
        world: the run's fixed inputs.
        ids: the clients' ids (int64): their traits and draws; each in its own market.
        week: this week.
        provider: each row's provider (int16, -1: none).
        declined_by: each row's job's decliners (uint64, bit b for business b).
        look_from: each row's lower bound (int32) on the first week a business may be open to
            it: a client with a later one is not looked at (0: no bound known).
        pair: the pair matrices of `CHOICE_PAIR_FIELDS`, shape (rows, businesses).
        business_state: `MarketModel.business_state()` at the start of the phase (one entry
            per `firms` entry: business b of market r is entry ``b * R + r``).
        rows: each client's row in the per-row arrays and `pair` (default `ids`).

    Returns:
        The business each applies to (-1: none), and a lower bound on the first week some
        business is open to it: this week if it applies or could, else the first week one
        opens (`NEVER`: none will), or its `look_from` if it was not looked at.
    """
    rows = ids if rows is None else rows
    reputation, queue, active = business_state
    pop, choice = world.population, world.clients.choice
    choosers, start, business, utility, u, picked, opens = choice_kernels.candidates(
        ids, rows, week, provider, declined_by, look_from, pair["known_week"],
        pair["blocked_until"], pop["decider_values"], world.cultures, pair["credit"],
        pair["credit_week"], pair["warning"], pair["warning_week"], world.decay_powers(week + 1),
        pop["patience"],
        pop["payer_budget"], reputation, queue, active, world.price_ratio,
        np.ascontiguousarray(world.prepayment), np.ascontiguousarray(world.decider_shift),
        bool(world.decider_shift.any()),
        choice_kernels.Coefficients.of(choice),
        *world.streams.kernel_keys("choice"),
    )  # fmt: skip
    choice_kernels.pick(
        choosers, start, business, utility, mechanics.gumbel(u), choice.noise, picked
    )
    return picked, opens


def applicants(
    world: World, ids, business, week: int, new, referred, difficulty, job, firm=None,
    screened=None,
) -> Applicants:  # fmt: skip
    """Phases 4-5: the applicants `ids` (sorted by business, then id) to `business`.

    `firm`: the entry of each one's business in `Firms` (`MarketModel.firm`; default
    `business`, one market), which `Applicants.business` holds. `screened`: mask of the
    applicants whose screening noise may be read (default `new`; a new applicant to a
    business that does not screen may be left out: its noise, 0, is never read).

    `business` holds one business index per applicant; `job` holds the applicants'
    `true_hours`, `stated_hours` and `deadline`. Their fit signals are read and their
    random numbers drawn here, keyed by client id: screening noise for new applicants (read
    only by a policy that screens), the uniforms of upselling, whether a job ends in conflict
    and whether the client would reform if a screen declined it.
    """
    pop, streams, service = world.population, world.streams, world.market.service
    n = len(ids)
    drawn = new if screened is None else screened
    signals, upsell_u, conflict = np.empty((n, 4)), np.empty(n), np.empty(n, dtype=bool)
    would_reform, noise_u = np.empty(n, dtype=bool), np.empty((8, np.count_nonzero(drawn)))
    reform = world.clients.reform
    intake_kernel.applicants(
        ids, np.asarray(business, dtype=np.int64), difficulty,
        mechanics.conflict_probability(difficulty, service), drawn, week,
        *_intake_keys(streams), pop["pay_reliability"], pop["unrealistic"],
        pop["decider_values"], world.cultures, reform.min_difficulty, reform.prob,
        signals, upsell_u, conflict, would_reform, noise_u,
    )  # fmt: skip
    noise = np.zeros((n, 4))
    noise[drawn] = box_muller(noise_u[0::2], noise_u[1::2]).T  # normal k: slots 2k, 2k + 1
    return Applicants(
        ids, business if firm is None else firm, new, referred, difficulty, signals,
        job["true_hours"], job["stated_hours"], job["deadline"], pop["prepay_ok"][ids],
        noise, upsell_u,
        mechanics.work_per_billed_hour(difficulty, conflict, service), would_reform,
    )  # fmt: skip


@functools.lru_cache(maxsize=8)
def _intake_keys(streams) -> tuple[np.ndarray, int]:
    """The keys of `INTAKE_STREAMS` (rows, one column per market) and the clients per market."""
    keys = [streams.kernel_keys(stream) for stream in INTAKE_STREAMS]
    return np.stack([key for key, _ in keys]), keys[0][1]


@dataclass(slots=True)
class Outcome:
    """Finished jobs judged: money, satisfaction, loyalty, review and story."""

    paid: np.ndarray
    unpaid: np.ndarray
    satisfaction: np.ndarray
    retained: np.ndarray
    rating: np.ndarray  # stars, 0 where no review is posted
    tell_probability: np.ndarray
    story: np.ndarray  # +1 positive, -1 negative, 0 none
    abandoned: np.ndarray  # the client left the queue: no payment, not a completed job
    refund: np.ndarray  # money returned to a prepaid client (abandoned, failed, disputed)
    disputed: np.ndarray  # a late job whose client withheld (or was refunded) part of it
    failed: np.ndarray  # an impossible job that failed: nothing owed
    billed: np.ndarray  # billed hours of a completed job (0 if abandoned)
    rework: np.ndarray  # unbilled rework hours of a completed job
    judged: np.ndarray  # the satisfaction it stays or leaves on (`judged_satisfaction`)

    def __getitem__(self, rows: slice) -> Outcome:
        """The outcomes in `rows`."""
        return Outcome(*(getattr(self, f)[rows] for f in self.__slots__))


def out_of_patience(world: World, ids, weeks_waited) -> np.ndarray:
    """Patience: mask of the clients `ids` whose job has waited longer than their patience.

    `weeks_waited` counts the weeks since the need: at the start of choice in week w it is
    w - need week, at the end of service w - need week + 1.
    """
    return weeks_waited > world.population["patience"][ids]


def abandons(world: World, ids, week: int, job: dict) -> np.ndarray:
    """Phase 6: mask of the unfinished jobs whose clients leave the queue after service.

    A client leaves when its job has waited past its patience, unless it prepaid and
    `patience.prepaid_leave` is off (`mechanics.leaves_queue`); with it on, a prepaid
    client leaves too and is refunded (`finish_jobs`). `job` holds the jobs' `need_week`
    and `prepaid`. (The vectorized engine finds its closing jobs with the same formula:
    `sim.model.kernels.finish.closing`.)
    """
    out = np.empty(len(ids), dtype=bool)
    finish.leaving(
        week - np.asarray(job["need_week"], dtype=np.int64) + 1, world.population["patience"][ids],
        job["prepaid"], bool(world.clients.patience.prepaid_leave), out,
    )  # fmt: skip
    return out


def due(world: World, week: int, accept_week, deadline):
    """Phase 6: mask of the jobs due this week or overdue (`mechanics.due`), or None.

    None unless businesses work overtime on such jobs (`service.rush_share` > 0).
    """
    if world.market.service.rush_share <= 0:
        return None
    return mechanics.due(week, accept_week, deadline)


def finish_jobs(
    world: World, ids, week: int, provider, job: dict, kept, difficulty, abandoned, held=None,
    rows=None,
) -> Outcome:  # fmt: skip
    """Phases 7-8 for jobs just finished, or `abandoned` (see `abandons`).

    `provider`: each job's business index; `job`: arrays by name (`FINISH_JOB_FIELDS`);
    `kept`: each client's provider (a job at another business is its first there);
    `difficulty`: the clients'. These and `held` are per row: client ``ids[i]``'s is row
    ``rows[i]`` (default: row i). A client who left the queue pays nothing (nothing was
    invoiced; a prepaid one is refunded), judges the business as if the job ended now, with
    no misfit or extras but the patience penalty, and does not stay. An impossible job
    (deadline 0) not abandoned fails with probability `jobs.impossible_failure`; a late one
    that did not fail is disputed with probability `payment.dispute_late` (each draw from
    its own stream, `failure` and `dispute`, keyed by client and week; a probability of 0
    draws nothing, and only the jobs it may touch draw). A failed job is owed nothing, a
    disputed one only part (`mechanics.invoice_share`): a postpaid client pays its
    `payment_fraction` of what it owes, a prepaid one is refunded the rest of its quote.
    Whether it stays is decided on the satisfaction it holds of the business after this job
    (`mechanics.judged_satisfaction`; `held`: its `provider_satisfaction`, None: none held).
    One compiled pass over the jobs (`sim.model.kernels.finish.judge`) between the numpy
    steps that need a transcendental: the noise, retention and the review.
    """
    pop, clients, market = world.population, world.clients, world.market
    n = len(ids)
    u = world.streams.uniforms(week, ids, FINISH_DRAWS)
    noise = box_muller(u[2], u[3])
    numbers, stars, story = np.empty((len(finish.NUMBERS), n)), np.empty(n, int), np.empty(n, int)
    failed, disputed = np.empty(n, bool), np.empty(n, bool)
    sat, tailored = clients.satisfaction, bool(world.user_shift.any())
    terms = (
        finish.terms(finish.Satisfaction, sat), float(sat.memory),
        finish.terms(finish.Payment, market.payment),
        finish.terms(finish.Patience, clients.patience), finish.terms(finish.Wom, clients.wom),
        bool(clients.wom.enabled), finish.terms(finish.Service, market.service),
    )  # fmt: skip
    finish.judge(
        ids, np.arange(n) if rows is None else rows, week, provider, job["billed"],
        job["prepaid"], job["accept_week"], job["deadline"], job["need_week"], job["misfit"],
        job["extras"], job["true_hours"], job["stated_hours"], kept, difficulty, abandoned,
        np.empty(0) if held is None else held, held is not None, u[0], u[1], noise,
        pop["pay_reliability"], pop["payer_budget"], pop["influencer_talkativeness"],
        pop["user_values"], world.cultures, world.user_shift, tailored, world.prices,
        world.price_ratio,
        world.overpromise, *terms, float(market.jobs.impossible_failure),
        world.streams.kernel_keys("failure")[0], float(market.payment.dispute_late),
        *world.streams.kernel_keys("dispute"), numbers, stars, story, failed, disputed,
    )  # fmt: skip
    paid, unpaid, s, p_tell, refund, billed, rework, judged = numbers
    retained = u[4] < mechanics.retention_probability(judged, sat)
    retained &= ~abandoned
    posts = u[5] < mechanics.review_probability(s, pop["review_propensity"][ids], clients.reviews)
    return Outcome(
        paid, unpaid, s, retained, np.where(posts, stars, 0), p_tell, story, abandoned, refund,
        disputed, failed, billed, rework, judged,
    )  # fmt: skip


def book_outcomes(firms, count, provider, out: Outcome) -> None:
    """Add finished jobs' money, satisfaction, loyalty and reviews to their businesses.

    `firms` are the market's businesses (`sim.model.business.Firms`), `provider` their entries,
    `count` counts the jobs in masks in the market's tallies (`MarketModel.count_clients`
    of the jobs' clients). Sums run in the order of the jobs (by client id) in both engines,
    so they agree exactly: one compiled pass (`sim.model.kernels.finish.totals`).
    """
    reviewed, done = out.rating > 0, ~out.abandoned
    floats = np.empty((len(finish.FLOAT_TOTALS), firms.n))
    ints = np.empty((len(finish.INT_TOTALS), firms.n), dtype=np.int64)
    finish.totals(
        provider, out.paid, out.refund, out.unpaid, out.satisfaction, out.billed, out.rework,
        out.rating, out.abandoned, out.retained, out.disputed, out.failed, floats, ints,
    )  # fmt: skip
    # (issue 23, jobs: refunds are negative revenue, booked in the week they happen)
    names, rows = finish.FLOAT_TOTALS[:-1] + finish.INT_TOTALS[:-1], (*floats[:-1], *ints[:-1])
    firms.book(**dict(zip(names, rows, strict=True)))
    firms.record_reviews(ints[-1], floats[-1])  # the reviews and their stars
    count(
        completed=done,
        abandoned=out.abandoned,
        reviews=reviewed,
        **{f"rating_{star}": out.rating == star for star in range(1, 6)},
    )


def tell_neighbours(
    world: World, tellers, p_tell, week: int, about, story
) -> tuple[np.ndarray, np.ndarray]:
    """Phase 8: which neighbours each teller tells; returns (teller index, neighbour) pairs.

    The teller index points into `tellers`; `about` is the business each teller's story is
    about. Neighbour k of a teller is told with the uniform of slot k, so the stories do not
    depend on the order in which clients act. A business's culture makes its stories reach
    neighbours of like values more: the probability is scaled by the culture's affinity with
    the neighbour's decider (`mechanics.culture_affinity`; 1 at culture strength 0). A
    referral (`story` +1) reaches a neighbour who fits more (`World.referral_reach`, from
    `wom.matching`; 1 at matching 0): the referrer knows its friends. One pass over the
    tellers' neighbours (`sim.model.kernels.wom.told`).
    """
    keys, n = world.streams.kernel_keys("wom")
    none = np.empty(0)
    cultured, reach = world.culture_strength.any(), world.referral_reach
    return wom.told(
        world.indptr, world.indices, np.asarray(tellers, dtype=np.int64),
        np.asarray(p_tell, dtype=np.float64), keys, n, week,
        np.asarray(about, dtype=np.int64), np.asarray(story, dtype=np.int64),
        world.population["decider_values"], world.cultures,
        world.culture_strength if cultured else none, none if reach is None else reach,
        0.0 if reach is None else reach.max(),
    )  # fmt: skip


def difficult(world: World, difficulty) -> np.ndarray:
    """Phase 6: mask of the clients whose jobs count as difficult hours (`difficult_above`)."""
    return difficulty > world.market.service.difficult_above


# --- rules of refusal, reform and referral: both engines gather, call, and scatter -------
def blocked_until(world: World, week: int, ends_relationship=True):
    """Refusal memory: the week a client declined by (or leaving) a business may choose it again.

    A client declined in `week` by a refusal that ends the relationship
    (`Intake.ends_relationship`), or leaving its provider then, does not choose that business
    again for `clients.decline_memory` weeks; one whose job was declined but who was kept,
    for `clients.declined_job_memory` weeks (that job never goes back: `choose`).
    """
    clients = world.clients
    if ends_relationship is True:
        return week + clients.decline_memory
    return week + np.where(ends_relationship, clients.decline_memory, clients.declined_job_memory)


def reformed_difficulty(world: World, difficulty):
    """Reform: the difficulty of clients who reform after a screen declined them."""
    return difficulty - world.clients.reform.amount


def fresh_referrals(world: World, new, credit) -> np.ndarray:
    """Referral freshness: mask of new applicants who come referred.

    A referral is fresh while its decayed credit for the business applied to still reaches
    `wom.referral_min`.
    """
    return new & (credit >= world.clients.wom.referral_min)


def credits_referrer(accepted, referred, referred_by, ever_served) -> np.ndarray:
    """Referral attribution: mask of applicants whose acceptance credits their referrer.

    Only a client's first job counts: accepted, referred, never served before and not yet
    attributed to a referrer.
    """
    return accepted & referred & (referred_by < 0) & ~ever_served


def remember_referrers(referrer: np.ndarray, pair: np.ndarray, teller: np.ndarray) -> None:
    """Referral attribution: each pair told referrals this week remembers its referrer.

    A pair's referrer becomes the highest-id client who told it a referral this week; a pair
    told nothing this week keeps the one it had.

    Args:
        referrer: the pairs' referrers, set in place (-1: none).
        pair: the index in `referrer` of the pair told each of this week's referrals.
        teller: the client who told it.
    """
    wom.remember(referrer, pair, np.ascontiguousarray(teller, dtype=np.int64))


#: The pair fields a story heard changes (`hear_stories`), in the order it takes them.
HEARD = ("known_week", "credit", "credit_week", "warning", "warning_week")


def hear_stories(
    world: World, known_week, credit, credit_week, warning, warning_week, flat, story, week: int
) -> None:
    """Phase 8, stories heard: each pair knows the business and its standing gains a story.

    The arrays are flat over pairs and changed in place (the fields of `HEARD`):
    `known_week` (the first week the client knows the business), the credit and warning
    and the weeks they were last set; `flat` holds the pair of each story told this week
    and `story` its sign (+1 a referral: credit, -1 a warning; repeats add up,
    `story_weight` each). A standing is decayed to `week` before its stories are added.
    The single writer of these fields in phase 8 for both engines
    (`sim.model.kernels.wom.hear`, story by story).
    """
    amounts = np.array([story_weight(world, 1), story_weight(world, -1)])
    wom.hear(
        known_week, credit, credit_week, warning, warning_week, flat,
        np.asarray(story, dtype=np.int64), amounts, week, world.decay_powers(week + 1),
    )  # fmt: skip


def story_weight(world: World, story: int) -> float:
    """Warning weight: the credit one story adds (`story` +1 a referral, -1 a warning).

    A warning weighs `wom.negativity_bias` times a referral.
    """
    cfg = world.clients.wom
    return cfg.credit if story > 0 else cfg.credit * cfg.negativity_bias


def release(clients, job_provider, provider, business: int) -> Updates:
    """Phase 9, exit: a business's backlog returns to the market and its clients leave it.

    Of `clients` (the ids of its market, with their jobs' `job_provider` and their
    `provider`), the open jobs it held lose their provider (and their prepaid flag: the next
    business quotes anew) and the clients it retained have none.
    """
    backlog = clients[job_provider == business]
    return (
        Updates()
        .set("job_provider", backlog, -1)
        .set("job_prepaid", backlog, False)
        .set("provider", clients[provider == business], -1)
    )


# --- what happens to clients: each rule returns its state changes (`sim.model.state.Updates`), ----
# --- which `MarketModel.apply` writes into either engine -----------------------------------
def need_arrives(world: World, ids, arrivals, has_job, week: int) -> Updates:
    """Phase 1: the needs of the clients `ids` arrive.

    `arrivals` counts their needs so far (one per client, or one for all). Each counts the
    need and draws when its next one comes (`need_gap`); a client with no open job
    (`has_job`) opens one (`open_jobs`) and counts as a new need. Their uniforms are drawn
    in one pass (`sim.model.kernels.needs.draw`).
    """
    count = np.atleast_1d(np.asarray(arrivals, dtype=np.int32)) + 1
    opening = ids[~has_job]
    u, job_u = np.empty(len(ids)), np.empty((len(OPEN_DRAWS), len(opening)))
    needs.draw(ids, count, opening, week, *_need_keys(world.streams), u, job_u)
    jobs = open_jobs(world, opening, job_u)
    return (
        Updates()
        .set("need_arrivals", ids, count)
        .add("next_need", ids, need_gap(world, ids, count, u))
        .set("job_open", opening, True)
        .set("job_true_hours", opening, jobs.true_hours)
        .set("job_stated_hours", opening, jobs.stated_hours)
        .set("job_deadline", opening, jobs.deadline)
        .set("job_need_week", opening, week)
        .set("job_declined_by", opening, 0)
        .count("new_needs", opening)
    )


@functools.lru_cache(maxsize=8)
def _need_keys(streams) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The keys of `need` and of `OPEN_DRAWS`' streams, their slots and the clients per market."""
    need, n = streams.kernel_keys("need")
    job = np.stack([streams.kernel_keys(stream)[0] for stream, _ in OPEN_DRAWS])
    return need, job, np.array([slot for _, slot in OPEN_DRAWS], dtype=np.int64), n


def give_up(ids) -> Updates:
    """Phase 3: the clients `ids` give up their unplaced jobs (`out_of_patience`)."""
    return Updates().set("job_open", ids, False).count("gave_up", ids)


def intake_outcome(
    world: World, a: Applicants, business, intake: Intake, week: int, referred_by,
    ever_served, referrer,
) -> Updates:  # fmt: skip
    """Phases 4-5: what the businesses' decisions (`intake`) change for the applicants `a`.

    `business`: the business each applied to; `referred_by`, `ever_served` (a first job
    done) and `referrer` (its referrer for that business): their state. Every applicant
    spent the hours of its screening and diagnosis. A declined client does not choose the
    business again for a while (`blocked_until`). A refusal that ends the relationship
    (`Intake.ends_relationship`) costs a returning client its provider; any other declines
    the job only: the client keeps its provider, and the job is not taken to that business
    again (`choose`: its bit is added; it is not set, since a business is never
    applied to twice for one job). One declined by a screen may reform
    (`reformed_difficulty`). An accepted job gets its provider, terms and work, and any
    prepayment is spent; a referred client's first acceptance credits its referrer
    (`credits_referrer`).
    """
    ids, accepted, ends = a.ids, intake.accepted, intake.ends_relationship
    declined, reformed = ~accepted, intake.reforms
    taken = np.flatnonzero(accepted)
    started, at, prepaid = ids.take(taken), business.take(taken), intake.prepaid.take(taken)
    paid = np.flatnonzero(prepaid > 0)  # (spending nothing changes nothing)
    job_only = declined & ~ends  # the job is declined, the client kept
    first = credits_referrer(accepted, a.referred, referred_by, ever_served)
    spent = np.flatnonzero(intake.overhead_hours > 0)  # (adding no hours changes nothing)
    assessed, hours = ids.take(spent), intake.overhead_hours.take(spent)
    return (
        Updates()
        .add("hours", assessed, hours)
        .add("hours_at", assessed, hours, business.take(spent))
        .set(
            "blocked_until",
            ids[declined],
            blocked_until(world, week, ends[declined]),
            business[declined],
        )  # fmt: skip
        .set("provider", ids[ends & ~a.new], -1)
        .add(
            "job_declined_by",
            ids[job_only],
            np.left_shift(np.uint64(1), business[job_only].astype(np.uint64)),
        )  # fmt: skip
        .set("difficulty", ids[reformed], reformed_difficulty(world, a.difficulty[reformed]))
        .set("reformed", ids[reformed], True)
        .set("job_provider", started, at)
        .set("job_accept_week", started, week)
        .set("job_billed", started, intake.billed.take(taken))
        .set("job_misfit", started, intake.misfit.take(taken))
        .set("job_extras", started, intake.extras.take(taken))
        .set("job_remaining", started, intake.work_hours.take(taken))
        .set("job_prepaid", started, prepaid > 0)
        .add("spend", started.take(paid), prepaid.take(paid))
        .add("spend_at", started.take(paid), prepaid.take(paid), at.take(paid))
        .set("referred_by", ids[first], referrer[first])
    )


def served(ids, remaining, worked, provider) -> Updates:
    """Phase 6: the jobs of the clients `ids` (`remaining` hours of work) got `worked` hours.

    `provider`: the business of each job (or of all), which spent those hours. Only the
    jobs worked on change: a job that got no hours is left as it was.
    """
    some = np.flatnonzero(worked > 0)
    ids, remaining, worked = ids[some], remaining[some], worked[some]
    provider = np.asarray(provider)  # one per job, or one for all
    provider = provider[some] if provider.ndim else provider
    return (
        Updates()
        .set("job_remaining", ids, remaining - worked)
        .add("hours", ids, worked)
        .add("hours_at", ids, worked, provider)
    )


def settle(
    world: World, ids, week: int, provider, out: Outcome, first_job_week, kept_provider
) -> Updates:
    """Phase 7: the clients `ids` close their jobs at `provider` (judged: `out`).

    They pay (`out.paid`, less any `out.refund`; `out.unpaid` is owed), count the job
    unless they left the queue, and their review; a first job done is dated
    (`first_job_week`) and its business kept (`last_provider`, for the demand facts). A
    client retained keeps `provider`; one not retained has none and
    does not choose it again for a while. A client whose own provider (`kept_provider`)
    declined the job but kept it (`Intake.ends_relationship` false), so that `provider` did
    it instead, goes back to its own provider either way; `out.retained` still says whether
    it would stay with `provider`, and a client who would not does not choose it again for a
    while.
    """
    done, left = ~out.abandoned, ~out.retained
    sent_here = (kept_provider >= 0) & (kept_provider != provider)  # a job its own declined
    after = np.where(sent_here, kept_provider, np.where(out.retained, provider, -1))
    stays, spent = out.retained & ~sent_here, out.paid - out.refund
    return (
        Updates()
        .add("spend", ids, spent)
        .add("spend_at", ids, spent, provider)
        .add("unpaid", ids, out.unpaid)
        .add("jobs_done", ids, done)
        .add("jobs_at", ids, done, provider)
        .add("reviews", ids, out.rating > 0)
        .set("first_job_week", ids[done & (first_job_week < 0)], week)
        .set("last_provider", ids[done], provider[done])
        .set("job_provider", ids, -1)
        .set("job_open", ids, False)
        .set("provider", ids, after)
        .set("provider_satisfaction", ids[stays], out.judged[stays])
        .set("blocked_until", ids[left], blocked_until(world, week), provider[left])
    )


def stories_told(tellers, teller, story) -> Updates:
    """Phase 8: the stories (`story`: +1 referral, -1 warning, each) that `tellers` told.

    `teller` holds, for each story told, its teller's index in `tellers`. Each story counts
    in the market's tally; a referral also counts for its teller (`referrals_made`).
    """
    told, referral = tellers.take(teller), story > 0
    counts = np.bincount(teller[referral], minlength=len(tellers))
    return (
        Updates()
        .count("wom_positive", told, referral)
        .count("wom_negative", told, ~referral)
        .add("referrals_made", tellers, counts)
    )
