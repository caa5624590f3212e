"""The vectorized engine: businesses are Mesa agents, clients are numpy arrays.

Every phase is a few array operations over the clients who act this week (open jobs,
choosers, tellers); no Python loop runs over clients or businesses, only over the (few)
policies (`sim.model.business.Firms`). The
per (client, business) state -- awareness by ads, referral credits, warnings, refusals -- is
stored densely but touched only for the clients who act; credits decay lazily (the week they
were set is stored). What a rule changes is written by `MarketModel.apply` (`write` here).
"""

from __future__ import annotations

import numpy as np

from sim.model import phases, state
from sim.model.kernels import finish, intake, needs, scatter, service
from sim.model.market import MarketModel
from sim.model.state import Field

#: What the vectorized engine keeps to find who acts; the agents engine asks its agents.
INDEX: tuple[Field, ...] = (
    Field("applied_to", np.int16, -1),  # the business it applies to this week, or -1
    Field("look_from", np.int32, 0),  # no business is open to it before this week (a lower bound)
)


class VectorizedModel(MarketModel):
    """The market with clients as arrays: `s` per client, `p` per (client, business) pair.

    `s` holds the fields of `sim.model.state.CLIENT`, `INDEX` and `sim.model.state.JOB`
    (as ``job_`` + name), `p` those of `sim.model.state.PAIR`, shape (n, B).
    """

    def setup_clients(self) -> None:
        """Create the state arrays; draw each client's first need and ad-awareness weeks."""
        n, n_b = len(self.population), self.n_businesses  # clients of all the markets
        self.ids = np.arange(n, dtype=np.int64)
        self.s = {
            **state.arrays(state.CLIENT, n),
            **state.arrays(INDEX, n),
            **state.arrays(state.JOB, n, prefix="job_"),
        }
        self.p = state.arrays(self.pair_fields, (n, n_b))
        self.s["difficulty"][:] = self.population["difficulty"]
        self.s["next_need"][:] = phases.need_gap(self.world, self.ids, 0) - 1
        self.p["known_week"][:] = phases.ad_weeks(self.world, self.ids)
        self.s["look_from"][:] = self.p["known_week"].min(axis=1, initial=phases.NEVER)

    def free_pair_state(self) -> None:
        """Free the pair matrices too (`MarketModel.free_pair_state`)."""
        super().free_pair_state()
        self.p = None

    def clients_step(self, week: int) -> None:
        """Phases 1 and 3: needs arrive, then clients without a provider choose."""
        self.arrive_needs(week)
        self.choose(week)

    def arrive_needs(self, week: int) -> None:
        """Phase 1: needs arrive; clients without an open job open one."""
        s = self.s
        arriving = np.flatnonzero(s["next_need"] == week)
        self.apply(
            phases.need_arrives(
                self.world, arriving, s["need_arrivals"][arriving], s["job_open"][arriving], week
            )
        )

    def _standing(self, kind: str, flat: np.ndarray, week: int, since=None) -> np.ndarray:
        """Credits (or warnings) of the pairs at `flat` (client * B + business), decayed.

        `since`: the weeks they were set, if already read. Most pairs never heard a story:
        their standing is 0 and their value is not read.
        """
        if since is None:
            since = self.p[f"{kind}_week"].reshape(-1).take(flat)
        heard = np.flatnonzero(since >= 0)
        value = np.zeros(len(flat))
        value[heard] = phases.standing(
            self.world, self.p[kind].reshape(-1).take(flat.take(heard)), since.take(heard), week
        )
        return value

    def choose(self, week: int) -> None:
        """Phase 3: clients past their patience give up; the others apply (`phases.choose`).

        Only the clients who may have a business open to them are looked at (`look_from`):
        early on most clients know no business at all, and later many know only businesses
        that refused them; a client found with none keeps a later `look_from`.
        """
        s = self.s
        unplaced = np.flatnonzero(s["job_open"] & (s["job_provider"] < 0))
        gone = phases.out_of_patience(self.world, unplaced, week - s["job_need_week"][unplaced])
        self.apply(phases.give_up(unplaced[gone]))
        ids = unplaced[~gone]
        picked, opens = phases.choose(
            self.world, ids, week, s["provider"], s["job_declined_by"], s["look_from"], self.p,
            self.business_state(),
        )  # fmt: skip
        s["applied_to"][:] = -1
        s["applied_to"][ids] = picked
        stuck = opens > week  # (`look_from` stays a lower bound for the next job)
        s["look_from"][ids[stuck]] = opens[stuck]

    def screen_and_quote(self, week: int) -> None:
        """Phases 4-5: the businesses take their applicants (sorted by business, then id).

        The applicants of all businesses are gathered in one pass
        (`sim.model.kernels.intake.applications`), taken at once
        (`sim.model.business.Firms.take`), and the decisions stored at once.
        """
        s, p, n_b = self.s, self.p, self.n_businesses
        n = np.count_nonzero(s["applied_to"] >= 0)
        ints, floats, flags = np.empty((5, n), np.int64), np.empty((3, n)), np.empty((3, n), bool)
        job = {"true_hours": floats[0], "stated_hours": floats[1]}
        job["deadline"] = np.empty(n, dtype=s["job_deadline"].dtype)
        intake.applications(
            s["applied_to"], s["provider"], s["job_true_hours"], s["job_stated_hours"],
            s["job_deadline"], s["difficulty"], s["referred_by"], s["first_job_week"],
            self.firms.screens, self.replicas, self.n_clients, n_b, ints, floats, flags,
            job["deadline"],
        )  # fmt: skip
        ids, firm, b, flat, referred_by = ints
        new, screened, ever_served = flags  # (no noise is drawn for the unscreened)
        credit = np.zeros(n)  # read for new applicants only (`fresh_referrals`)
        newcomers = np.flatnonzero(new)
        credit[newcomers] = self._standing("credit", flat.take(newcomers), week)
        referred = phases.fresh_referrals(self.world, new, credit)
        # a referrer is read only for a referred applicant (`credits_referrer`)
        referrer, rows = np.full(n, -1, dtype=p["referrer"].dtype), np.flatnonzero(referred)
        referrer[rows] = p["referrer"].reshape(-1).take(flat.take(rows))
        everyone = phases.applicants(
            self.world, ids, b, week, new, referred, floats[2], job, firm, screened
        )
        decisions = self.firms.take(everyone)
        self.apply(
            phases.intake_outcome(
                self.world, everyone, b, decisions, week, referred_by, ever_served, referrer
            )
        )

    def serve(self, week: int) -> None:
        """Phase 6: each business works its backlog first come, first served (ties by id).

        The queues are gathered in one pass (`sim.model.kernels.service.queues`).
        """
        s = self.s
        n = np.count_nonzero(s["job_provider"] >= 0)
        ids, firm, provider = (np.empty(n, dtype=np.int64) for _ in range(3))
        remaining, difficulty = np.empty(n), np.empty(n)
        accept, deadline = (
            np.empty(n, dtype=s[f"job_{f}"].dtype) for f in ("accept_week", "deadline")
        )
        service.queues(
            s["job_provider"], s["job_accept_week"], s["job_remaining"], s["difficulty"],
            s["job_deadline"], self.replicas, self.n_clients, week + 1, ids, firm, provider,
            remaining, difficulty, accept, deadline,
        )  # fmt: skip
        hard = phases.difficult(self.world, difficulty)
        due = phases.due(self.world, week, accept, deadline)
        worked = self.firms.serve(firm, remaining, hard, due)
        self.apply(phases.served(ids, remaining, worked, provider))

    def complete(self, week: int) -> None:
        """Phases 7-8: finished jobs are paid and judged; reviews and word of mouth.

        The closing jobs are found in one pass (`sim.model.kernels.finish.closing`), and
        judged reading their state by row (`phases.finish_jobs`).
        """
        s, n = self.s, len(self.s["job_provider"])
        ids, provider, abandoned = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, bool)
        k = finish.closing(
            s["job_provider"], s["job_remaining"], s["job_need_week"], s["job_prepaid"],
            self.population["patience"], week, bool(self.world.clients.patience.prepaid_leave),
            ids, provider, abandoned,
        )  # fmt: skip
        ids, provider, abandoned = ids[:k], provider[:k], abandoned[:k]
        job = {f: s[f"job_{f}"] for f in phases.FINISH_JOB_FIELDS}  # read by row (the ids)
        out = phases.finish_jobs(
            self.world, ids, week, provider, job, s["provider"], s["difficulty"], abandoned,
            s["provider_satisfaction"], rows=ids,
        )  # fmt: skip
        phases.book_outcomes(
            self.firms, lambda **m: self.count_clients(ids, **m), self.firm(ids, provider), out
        )
        self.apply(phases.settle(
            self.world, ids, week, provider, out, s["first_job_week"].take(ids),
            s["provider"].take(ids),
        ))  # fmt: skip
        speaking = out.story != 0
        self._word_of_mouth(
            ids[speaking],
            out.tell_probability[speaking],
            out.story[speaking],
            provider[speaking],
            week,
        )

    def _word_of_mouth(self, tellers, p_tell, story, about, week: int) -> None:
        """Phase 8: `tellers` tell their `story` (+1, -1) about business `about` to neighbours."""
        owner, neighbour = phases.tell_neighbours(self.world, tellers, p_tell, week, about, story)
        look_from = self.s["look_from"]
        look_from[neighbour] = np.minimum(look_from.take(neighbour), week)
        heard, business = story.take(owner), about.take(owner)
        flat = neighbour * self.n_businesses + business
        pair = {name: self.p[name].reshape(-1) for name in phases.HEARD}
        phases.hear_stories(self.world, *pair.values(), flat, heard, week)
        referral, speakers = heard > 0, tellers.take(owner)
        firm = self.firm(speakers, business)
        total = self.firms.total
        self.firms.book(referrals_made=total(firm[referral]), warnings_made=total(firm[~referral]))
        self.apply(phases.stories_told(tellers, owner, heard))
        referrer = self.p["referrer"].reshape(-1)
        phases.remember_referrers(referrer, flat[referral], speakers[referral])

    def counts(self) -> tuple:
        """Clients with an unplaced job, with an open job, and ever served (per market).

        Counted in one pass (`sim.model.kernels.needs.counts`): ints for one market.
        """
        s, out = self.s, np.zeros((3, self.replicas), dtype=np.int64)
        needs.counts(s["job_open"], s["job_provider"], s["first_job_week"], self.n_clients, out)
        return tuple(out[:, 0].tolist()) if self.replicas == 1 else tuple(out)

    def apply(self, updates: state.Updates) -> None:
        """`MarketModel.apply` with the fields' arrays written directly (for speed).

        The same writes in the same order, each in one compiled pass (`kernels.scatter`): an
        added amount is read, added and written back (the clients of a change are distinct);
        values are cast to the field's dtype first, as numpy's assignment casts them. A
        `Tally` is counted as the shared method counts it; a field not kept is skipped.
        """
        s, p, left_out = self.s, self.p, self.left_out
        for change in updates:
            if type(change) is not state.Change:
                self.count_clients(change.ids, **{change.name: change.mask})
                continue
            name, ids, values, add, business = change
            if len(ids) == 0 or name in left_out:
                continue
            ids = _flat(ids, _INT64)
            if name in state.PAIR_NAMES:
                column = p[name]
                values = _flat(values, column.dtype)
                scatter.put_pairs(column, ids, _flat(business, _INT64), values, add)
            else:
                column = s[name]
                scatter.put(column, ids, _flat(values, column.dtype), add)

    def read(self, name: str, ids: np.ndarray, business=None) -> np.ndarray:
        """Field `name` of the clients `ids` (see `MarketModel.read`)."""
        if name in state.PAIR_NAMES:
            return phases.pairs(self.p[name], ids, business)
        return self.s[name][ids]

    def write(self, name: str, ids: np.ndarray, values, business=None) -> None:
        """Set field `name` of the clients `ids` (see `MarketModel.write`)."""
        if name in state.PAIR_NAMES:
            self.p[name].reshape(-1)[ids * self.n_businesses + business] = values
        else:
            self.s[name][ids] = values


_INT64 = np.dtype(np.int64)


def _flat(values, dtype: np.dtype) -> np.ndarray:
    """`values` (an array, or one value for all) as a 1-d array of `dtype`: itself if it is one."""
    if type(values) is np.ndarray and values.dtype is dtype and values.ndim == 1:
        return values
    return np.asarray(values).astype(dtype, copy=False).reshape(-1)
