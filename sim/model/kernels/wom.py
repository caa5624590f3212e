"""Kernels of phase 8, word of mouth: who is told a story, what hearing it does to a pair.

`told` draws, teller by teller and neighbour by neighbour (the tellers' CSR lists), which
neighbours hear each story; `hear` adds the stories heard to the pairs' standing in place
and `remember` sets the pairs' referrers in place. `sim.model.phases` (`tell_neighbours`,
`hear_stories`, `remember_referrers`) calls them for both engines.
"""

from __future__ import annotations

import numba
import numpy as np

from sim.model import mechanics
from sim.model.kernels import draws, formulas

#: `mechanics.culture_affinity` compiled: the very formula, in the same order of operations.
_affinity = numba.njit(cache=True, inline="always")(mechanics.culture_affinity)
AHEAD = 16  # tellers between a teller's neighbour list fetched ahead and its own turn


@numba.njit(cache=True)
def told(indptr, indices, tellers, p_tell, keys, n, week, about, story, values, cultures,
         strength, reach, reach_max):  # fmt: skip
    """Which neighbours each teller tells: (teller index, neighbour) of each story told.

    Neighbour k of teller i (k-th in its CSR list) is told if the uniform of stream "wom",
    slot k, is below its probability: `p_tell[i]`, times the culture affinity of business
    `about[i]` with the neighbour's decider (`mechanics.culture_affinity`) when `strength`
    is given, times the neighbour's `reach` for a referral (`story[i]` > 0) when `reach` is
    given; the products in the order of the numpy rule. A referral's draw at or above its
    probability times `reach_max` fails whatever the neighbour's reach (products round
    monotonically), so that reach is not read (a cache miss saved). The neighbour list of
    the teller `AHEAD` places on is fetched while this one's are drawn (`draws.prefetch`).

    Args:
        indptr: the network's CSR row starts (`World.indptr`, int64).
        indices: the network's neighbours, by client (`World.indices`).
        tellers: the tellers' client ids (int64).
        p_tell: each teller's probability of telling a neighbour (float64).
        keys: the "wom" stream's key per market (`Streams.kernel_keys`).
        n: clients per market (`Streams.kernel_keys`).
        week: the week (keys the draws).
        about: the business each teller's story is about (int64).
        story: each teller's story, +1 referral or -1 warning (int64).
        values: each client's decider's values, by id (clients, 2), and
        cultures: each business's culture in each market (businesses, markets, 2): the
            neighbour's alignment with the business (`formulas.aligned`; read only with
            `strength`).
        strength: each business's culture strength (float64), or empty: culture off.
        reach: each client's referral reach (float64), or empty: matching off.
        reach_max: the largest of `reach` (or any number, without `reach`).

    Returns:
        (owner, neighbour): the index in `tellers` and the client id of each story told, by
        teller, then neighbour, in CSR order (int64).
    """
    cultured, matched = len(strength) > 0, len(reach) > 0
    total, widest = 0, 0
    for i in range(len(tellers)):
        degree = indptr[tellers[i] + 1] - indptr[tellers[i]]
        total, widest = total + degree, max(widest, degree)
    # `draws.base` of each market and slot, computed up to the widest teller of the market
    bases, filled = np.empty((len(keys), widest), np.uint64), np.zeros(len(keys), np.int64)
    owner, neighbour = np.empty(total, np.int64), np.empty(total, np.int64)
    k = 0
    for i in range(len(tellers)):
        teller, b = tellers[i], about[i]
        if i + AHEAD < len(tellers):
            draws.prefetch(indices, indptr[tellers[i + AHEAD]], 0)
        start, market = indptr[teller], teller // n
        degree = indptr[teller + 1] - start
        for slot in range(filled[market], degree):
            bases[market, slot] = draws.base(keys[market], week, slot)
        filled[market] = max(filled[market], degree)
        local = np.uint64(teller - market * n) * draws.GOLDEN
        for slot in range(degree):
            heard_by = np.int64(indices[start + slot])
            u = draws.unit(draws.mix(bases[market, slot] + local))  # `draws.uniform`
            p = p_tell[i]
            if cultured:
                align = formulas.aligned(values, cultures, heard_by, b, market)
                p = p * _affinity(align, strength[b])
            if matched and story[i] > 0:
                if u >= p * reach_max:
                    continue
                p = p * reach[heard_by]
            if u < p:
                owner[k], neighbour[k] = i, heard_by
                k += 1
    return owner[:k], neighbour[:k]


@numba.njit(cache=True, inline="always")
def _add(value, since, f, amount, week, powers):
    """Pair `f`'s credit (or warning) decayed to `week` (0 if never set), plus `amount`.

    The age of an unset pair (``week + 1``) is looked up too, then discarded (no branch).
    """
    decayed = value[f] * powers[week - since[f]]
    value[f] = (decayed if since[f] >= 0 else 0.0) + amount
    since[f] = week


@numba.njit(cache=True)
def hear(known_week, credit, credit_week, warning, warning_week, flat, story, amounts, week,
         powers):  # fmt: skip
    """Stories heard, in place, story by story (referrals and warnings in one pass).

    Each pair of `flat` knows its business by `week`; its credit (a referral, `story` > 0) or
    warning is decayed to `week` (once: a repeat decays by ``powers[0] == 1``) and gains the
    story's amount, story after story in order (as `np.add.at`).

    Args:
        known_week: the first week each pair knows its business (flat over pairs).
        credit: the referral credit of each pair (flat over pairs).
        credit_week: the week each pair's credit was last set (-1: never; it starts from 0).
        warning: the warnings of each pair (flat over pairs).
        warning_week: the week each pair's warning was last set (as `credit_week`).
        flat: the pair of each story heard.
        story: each story's sign (+1 referral, -1 warning).
        amounts: what a referral and what a warning adds (`phases.story_weight`).
        week: this week.
        powers: the decay's powers by age in weeks (`World.decay_powers`).
    """
    for i in range(len(flat)):
        f = flat[i]
        known_week[f] = min(known_week[f], week)
        if story[i] > 0:
            _add(credit, credit_week, f, amounts[0], week, powers)
        else:
            _add(warning, warning_week, f, amounts[1], week, powers)


@numba.njit(cache=True)
def remember(referrer, pair, teller):
    """Each pair of `pair` remembers the highest of the `teller`s who told it, in place."""
    for i in range(len(pair)):
        referrer[pair[i]] = -1
    for i in range(len(pair)):
        referrer[pair[i]] = max(referrer[pair[i]], teller[i])
