"""Phase 3 (choice) in two passes over the choosers and their pairs (`sim.model.phases.choose`).

`candidates` sends a returning client back to its provider, unless it declined the job (a
pass over the clients' own fields), then reads each chooser's row of every pair field once:
which businesses are open to it, which of those it does not balk at (its candidates), each
candidate's logit utility (`sim.model.mechanics.choice_utility`, its terms added in the
same order) but for the noise, and the uniform of the noise. The rows of the choosers a few
places ahead are prefetched (`draws.prefetch`): they lie far apart, and waiting for memory is most
of the pass. Numpy turns the uniforms into Gumbel noise (a log of a log: no transcendental
in a kernel). `pick` adds the noise and keeps each chooser's best, ties to the lowest
business index (`np.argmax`'s rule), reading only the candidates.

Client `ids[i]` keys the traits and draws; its state is row ``rows[i]`` of the per-row
arrays and of the pair matrices (shape (rows, businesses)). A business's state (reputation,
queue, active) is entry ``b * R + market`` of the `MarketModel.firms` arrays, R markets,
each client in its own market (``id // n``).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from sim.model import mechanics
from sim.model.kernels import draws, formulas
from sim.model.state import NEVER

AHEAD = 8  # choosers ahead whose rows `candidates` asks the memory for (`draws.prefetch`)


class Coefficients(NamedTuple):
    """The choice coefficients `mechanics.choice_utility` reads (`sim.config.schema.Choice`)."""

    beta_reputation: float
    reference_rating: float
    beta_alignment: float
    beta_price: float
    beta_wait: float
    beta_prepay: float
    noise: float

    @classmethod
    def of(cls, choice) -> Coefficients:
        """The coefficients of the `clients.choice` config, as floats."""
        return cls(*(float(getattr(choice, name)) for name in cls._fields))


#: `mechanics.choice_utility` and `mechanics.tailored_alignment` compiled: the very formulas.
_utility = formulas.scalar(mechanics.choice_utility)
_tailored = formulas.scalar(mechanics.tailored_alignment)


@numba.njit(cache=True)
def candidates(ids, rows, week, provider, declined_by, look_from, known_week, blocked_until,
               values, cultures, credit, credit_week, warning, warning_week, powers, patience,
               budget,
               reputation, queue, active, price_ratio, prepayment, shift, tailored, coef, keys,
               n):  # fmt: skip
    """Each chooser's candidates, with their utility before noise and a uniform for the noise.

    A client with a provider that has not declined its job (bit b of `declined_by` for
    business b) goes back to it. Any other chooses: a business is open to it from the week it
    knows it and is no longer blocked (``max(known_week, blocked_until)``; never while
    inactive), and eligible when open by `week` and it has not declined the job; the client
    balks at an eligible business whose queue (weeks) is longer than its patience (weeks). The
    others are its candidates. A candidate's utility is `sim.model.mechanics.choice_utility`'s,
    term by term in its order, but for the noise (`pick` adds it): the decider's alignment
    tilted by the business's `shift` when `tailored` (`sim.model.mechanics.tailored_alignment`),
    credits and warnings decayed to `week` (`sim.model.phases.standing`: 0 where never heard).

    Args:
        ids: the clients' ids (int64).
        rows: each client's row in the per-row arrays and pair matrices.
        week: this week.
        provider: each row's provider (-1: none).
        declined_by: each row's job's decliners, bit b for business b (uint64).
        look_from: each row's lower bound on the first week a business may be open to it: a
            client with a later one is not looked at.
        known_week: the week each pair's client knew the business (rows, businesses).
        blocked_until: the week each pair's business is no longer blocked.
        values: each client's decider's values, by id (clients, 2).
        cultures: each business's culture in each market (businesses, markets, 2): the
            decider's alignment with it is computed here (`formulas.aligned`).
        credit: each pair's referral credit as set, before decay.
        credit_week: the week each pair's credit was set (-1: never).
        warning: each pair's warning as set, before decay.
        warning_week: the week each pair's warning was set (-1: never).
        powers: the decay per week of age (`World.decay_powers`), ages 0 to `week` + 1 at least.
        patience: each client's patience (weeks), by id.
        budget: each client's payer's budget, by id.
        reputation: each `firms` entry's reputation (stars).
        queue: each `firms` entry's backlog over its capacity (weeks).
        active: each `firms` entry's active flag.
        price_ratio: each business's price over the market price.
        prepayment: 1 for each business that requires prepayment, else 0.
        shift: the alignment tilt each business gives the decider.
        tailored: whether any business tilts alignment.
        coef: the choice coefficients (`Coefficients`).
        keys: the ``"choice"`` stream's key per market (`Streams.kernel_keys`).
        n: clients per market (`Streams.kernel_keys`).

    Returns:
        choosers: the positions in `ids` of the clients who choose (int64).
        start: chooser j's candidates are entries ``start[j]:start[j + 1]`` (int64).
        business: each candidate's business (int64), ascending within a chooser.
        utility: each candidate's utility without the noise.
        u: each candidate's uniform, ``Streams.uniform("choice", week, id, business)``.
        picked: each client's provider if it goes back to it, else -1 (`pick` fills in).
        opens: a lower bound on the first week some business is open to each client: `week`
            if one is eligible (or it goes back), else the first week one is open (`NEVER`
            if none ever is), or its `look_from` if it was not looked at.
    """
    n_b, markets = known_week.shape[1], len(keys)
    # what depends on the business alone, once per business of each market
    bases = np.empty((markets, n_b), dtype=np.uint64)  # the draw's key
    is_active = np.empty((markets, n_b), dtype=np.bool_)
    queue_of = np.empty((markets, n_b))  # (weeks)
    for r in range(markets):
        for b in range(n_b):
            bases[r, b] = draws.base(keys[r], week, b)
            firm = b * markets + r
            is_active[r, b], queue_of[r, b] = active[firm], queue[firm]
    picked = np.full(len(ids), -1, dtype=np.int64)
    opens = np.full(len(ids), week, dtype=np.int64)
    choosers = np.empty(len(ids), dtype=np.int64)
    c = 0
    for i in range(len(ids)):  # who goes back, who is not looked at, who chooses
        row = rows[i]
        back = np.int64(provider[row])
        if back >= 0 and (declined_by[row] >> np.uint64(back)) & np.uint64(1) == 0:
            picked[i] = back
        elif look_from[row] > week:
            opens[i] = look_from[row]
        else:
            choosers[c] = i
            c += 1
    start = np.empty(c + 1, dtype=np.int64)
    business = np.empty(c * n_b, dtype=np.int64)
    utility, u = np.empty(c * n_b), np.empty(c * n_b)
    m = 0
    for j in range(c):
        if j + AHEAD < c:  # the rows of a chooser further on, read while this one is scored
            later, later_row = ids[choosers[j + AHEAD]], rows[choosers[j + AHEAD]]
            for matrix in (known_week, blocked_until, credit_week, warning_week):
                draws.prefetch(matrix, later_row, 0)
            for b in range(0, n_b, 8):  # (8 floats a cache line)
                for matrix in (credit, warning):
                    draws.prefetch(matrix, later_row, b)
            draws.prefetch(values, later, 0)
            draws.prefetch(patience, later, 0)
            draws.prefetch(budget, later, 0)
        i = choosers[j]
        start[j] = m
        client, row = ids[i], rows[i]
        declined = declined_by[row]
        market = client // n
        wait = patience[client]
        first, eligible = np.int64(NEVER), False
        known, blocked = known_week[row], blocked_until[row]
        open_here, queue_here = is_active[market], queue_of[market]
        for b in range(n_b):  # the candidates, without a branch on the pair's state
            open_week = max(np.int64(known[b]), np.int64(blocked[b]))
            open_week = open_week if open_here[b] else np.int64(NEVER)
            first = min(first, open_week)
            ok = (open_week <= week) & ((declined >> np.uint64(b)) & np.uint64(1) == 0)
            eligible |= ok
            business[m] = b
            m += ok & ~(queue_here[b] > wait)  # it balks at a longer queue
        if not eligible:
            opens[i] = first
        local = np.uint64(client - market * n) * draws.GOLDEN
        spend = budget[client]
        for k in range(start[j], m):
            b = business[k]
            align = formulas.aligned(values, cultures, client, b, market)
            if tailored:
                align = _tailored(align, shift[b])
            since = credit_week[row, b]
            heard = credit[row, b] * powers[week - since] if since >= 0 else 0.0
            since = warning_week[row, b]
            warned = warning[row, b] * powers[week - since] if since >= 0 else 0.0
            firm = b * markets + market
            # the noise is added by `pick` (x + 0.0 is x: the same sum as with the noise here)
            utility[k] = _utility(reputation[firm], align, price_ratio[b], spend, heard, warned,
                                  queue[firm], 0.0, coef, prepayment[b])  # fmt: skip
            u[k] = draws.unit(draws.mix(bases[market, b] + local))
    start[c] = m
    return choosers[:c], start, business[:m], utility[:m], u[:m], picked, opens


@numba.njit(cache=True)
def pick(choosers, start, business, utility, noise, scale, picked):
    """Set `picked` of each client who chose (`choosers`) with candidates: the best one.

    The utility of a candidate is its `utility` (`candidates`) plus `scale` times its
    standard Gumbel variate `noise`. Ties go to the lowest business, and a NaN utility
    wins, as in `np.argmax`.
    """
    for j in range(len(choosers)):
        if start[j] == start[j + 1]:
            continue
        top, best = -np.inf, 0
        for k in range(start[j], start[j + 1]):
            value = utility[k] + scale * noise[k]
            if value > top:
                top, best = value, business[k]
            elif value != value:  # NaN: the first one wins
                best = business[k]
                break
        picked[choosers[j]] = best
