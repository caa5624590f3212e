"""The agents engine: every client is a Mesa agent; readable, for teaching and checking.

A client agent holds its own state and acts through small verb methods (`arrive_need`,
`choose`, `hear`...), one agent at a time, calling the same `sim.model.phases` functions as the
vectorized engine with arrays of one. Businesses act on their applicants and finished jobs
as a batch, as in the vectorized engine, so the two engines agree run for run.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.model import phases, state
from sim.model.market import MarketModel
from sim.model.state import Job


class Client(mesa.Agent):
    """A client: its traits live in `model.population`, its state (`sim.model.state`) here.

    Its attributes are the fields of `sim.model.state.CLIENT` (Python numbers), one array per
    field of `sim.model.state.PAIR` (an entry per business), and `job`: its open `Job` or None.
    """

    def __init__(self, model: AgentsModel, index: int, ad_week: np.ndarray) -> None:
        super().__init__(model)
        self.index = index  # the client id that keys its random numbers
        self.ids = np.array([index])
        vars(self).update(state.scalars(state.CLIENT))
        vars(self).update(state.arrays(state.PAIR, model.n_businesses))
        self.known_week[:] = ad_week
        self.difficulty = float(model.population["difficulty"][index])
        self.next_need = int(phases.need_gap(model.world, self.ids, 0)[0]) - 1
        self.job: Job | None = None

    def arrive_need(self, week: int) -> None:
        """Phase 1: if a need arrives and no job is open, open one."""
        if self.next_need != week:
            return
        self.need_arrivals += 1
        self.next_need += int(phases.need_gap(self.model.world, self.ids, self.need_arrivals)[0])
        if self.job is None:
            jobs = phases.open_jobs(self.model.world, self.ids, week)
            self.job = Job(
                float(jobs.true_hours[0]), float(jobs.stated_hours[0]), int(jobs.deadline[0]), week
            )
            self.model.count(new_needs=1)

    def standing(self, week: int, kind: str) -> np.ndarray:
        """Its credits (or warnings) for every business, decayed to `week`."""
        amount, since = getattr(self, kind), getattr(self, f"{kind}_week")
        return phases.standing(self.model.world, amount, since, week)

    def choose(self, week: int, business_state) -> None:
        """Phase 3: apply to its provider, or pick a business it knows by logit."""
        if self.job is None or self.job.provider >= 0:
            return
        if phases.out_of_patience(self.model.world, self.ids, week - self.job.need_week)[0]:
            self.job = None  # it gives up the need
            self.model.count(gave_up=1)
            return
        if self.provider >= 0:
            self.model.applications[self.provider].append(self)
            return
        open_from = phases.open_from(self.known_week, self.blocked_until, business_state[2])
        business = np.flatnonzero(open_from <= week)
        if len(business) == 0:
            return
        pick = phases.choose(
            self.model.world, self.ids, np.zeros(len(business), dtype=np.int64), business, week,
            self.model.decider_alignment[self.index, business],
            self.standing(week, "credit")[business], self.standing(week, "warning")[business],
            business_state,
        )  # fmt: skip
        if pick[0] >= 0:  # -1: it balks at every queue it may join
            self.model.applications[int(pick[0])].append(self)

    def declined_by(self, business: int, week: int, reforms: bool) -> None:
        """Remember a refusal (its own or the business's); maybe reform."""
        self.blocked_until[business] = phases.blocked_until(self.model.world, week)
        if self.provider == business:
            self.provider = -1
        if reforms:
            self.difficulty = phases.reformed_difficulty(self.model.world, self.difficulty)
            self.reformed = True

    def close_job(self, retained: bool, paid: float, unpaid: float, rating: int, week: int,
                  abandoned: bool = False):  # fmt: skip
        """Phase 7: pay, count the job (unless it left the queue), stay or leave."""
        business = self.job.provider
        self.spend += paid
        self.unpaid += unpaid
        self.jobs_done += int(not abandoned)
        self.reviews += int(rating > 0)
        if self.first_job_week < 0 and not abandoned:
            self.first_job_week = week
        self.job = None
        self.provider = business if retained else -1
        if not retained:
            self.blocked_until[business] = phases.blocked_until(self.model.world, week)

    def hear(self, business: int, story: int, week: int) -> None:
        """Phase 8: a neighbour's story about `business` (+1 referral, -1 warning)."""
        kind, world = "credit" if story > 0 else "warning", self.model.world
        value, since = getattr(self, kind), getattr(self, f"{kind}_week")
        phases.hear_stories(
            world, self.known_week, value, since, np.array([business]),
            phases.story_weight(world, story), week,
        )  # fmt: skip


class AgentsModel(MarketModel):
    """The market with every client a Mesa agent."""

    def setup_clients(self) -> None:
        """Create one `Client` agent per client, in id order."""
        if self.replicas > 1:
            raise ValueError("the agents engine steps one market: batches need engine=vectorized")
        ids = np.arange(self.cfg.market.n_clients)
        ad_weeks = phases.ad_weeks(self.world, ids)
        self.clients = [Client(self, i, ad_weeks[i]) for i in ids]
        self.client_agents = mesa.agent.AgentSet(self.clients, random=self.random)
        self.queues: list[list[Client]] = [[] for _ in self.businesses]
        self.applications: list[list[Client]] = []

    def arrive_needs(self, week: int) -> None:
        """Phase 1, client by client."""
        self.client_agents.do("arrive_need", week)

    def choose(self, week: int) -> None:
        """Phase 3, client by client, against the businesses' state at the phase's start."""
        self.applications = [[] for _ in self.businesses]
        self.client_agents.do("choose", week, self.business_state())

    def screen_and_quote(self, week: int) -> None:
        """Phases 4-5: the businesses take their applicants (by business, then id), at once."""
        clients = [c for applicants in self.applications for c in applicants]
        business = np.array(
            [b for b, applicants in enumerate(self.applications) for _ in applicants],
            dtype=np.int64,
        )
        ids = np.array([c.index for c in clients], dtype=np.int64)
        new = np.array([c.provider != b for c, b in zip(clients, business, strict=True)],
                       dtype=bool)  # fmt: skip
        credit = np.array(
            [c.standing(week, "credit")[b] for c, b in zip(clients, business, strict=True)]
        )
        job = {f: np.array([getattr(c.job, f) for c in clients]) for f in phases.INTAKE_JOB_FIELDS}
        applicants = phases.applicants(
            self.world, ids, business, week, new, phases.fresh_referrals(self.world, new, credit),
            np.array([c.difficulty for c in clients]), job,
        )  # fmt: skip
        intake = self.firms.take(applicants)
        first = phases.credits_referrer(
            intake.accepted, applicants.referred,
            np.array([c.referred_by for c in clients], dtype=np.int64),
            np.array([c.first_job_week >= 0 for c in clients], dtype=bool),
        )  # fmt: skip
        for i, (client, b) in enumerate(zip(clients, business.tolist(), strict=True)):
            client.hours += intake.overhead_hours[i]
            if not intake.accepted[i]:
                client.declined_by(b, week, bool(intake.reforms[i]))
                continue
            if first[i]:
                client.referred_by = int(client.referrer[b])
            job = client.job
            job.provider, job.accept_week, job.billed = b, week, float(intake.billed[i])
            job.misfit, job.extras = bool(intake.misfit[i]), bool(intake.extras[i])
            job.remaining, job.prepaid = float(intake.work_hours[i]), intake.prepaid[i] > 0
            client.spend += intake.prepaid[i]
            self.queues[b].append(client)

    def serve(self, week: int) -> None:
        """Phase 6: each business works its queue in order of acceptance."""
        queued = [c for queue in self.queues for c in queue]
        worked = self.firms.serve(
            np.array([c.job.provider for c in queued], dtype=np.int64),
            np.array([c.job.remaining for c in queued], dtype=float),
            phases.difficult(self.world, np.array([c.difficulty for c in queued], dtype=float)),
        )
        for client, hours in zip(queued, worked, strict=True):
            client.job.remaining -= hours
            client.hours += hours

    def complete(self, week: int) -> None:
        """Phases 7-8: finished jobs are paid and judged; happy and angry clients talk."""
        serving = sorted((c for q in self.queues for c in q), key=lambda c: c.index)
        job = {
            f: np.array([getattr(c.job, f) for c in serving], dtype=state.BY_NAME[f"job_{f}"].dtype)
            for f in phases.FINISH_JOB_FIELDS
        }
        finished = np.array([c.job.remaining <= 0.0 for c in serving], dtype=bool)
        ids = np.array([c.index for c in serving], dtype=np.int64)
        closing = finished | phases.abandons(self.world, ids, week, job)
        done = [c for c, closes in zip(serving, closing, strict=True) if closes]
        closed = {c.index for c in done}
        self.queues = [[c for c in q if c.index not in closed] for q in self.queues]
        ids, abandoned = ids[closing], ~finished[closing]
        job = {f: values[closing] for f, values in job.items()}
        provider = np.array([c.job.provider for c in done], dtype=np.int64)
        first = np.array([c.provider != c.job.provider for c in done], dtype=bool)
        difficulty = np.array([c.difficulty for c in done])
        out = phases.finish_jobs(self.world, ids, week, provider, job, first, difficulty, abandoned)
        phases.book_outcomes(self.firms, lambda **m: self.count_clients(ids, **m), provider, out)
        for i, client in enumerate(done):
            client.close_job(bool(out.retained[i]), out.paid[i], out.unpaid[i], out.rating[i],
                             week, bool(abandoned[i]))  # fmt: skip
        referrals = []  # (client told, business, teller) of the week's referrals
        for i, client in enumerate(done):
            if out.story[i] != 0:
                business, story = self.businesses[provider[i]], int(out.story[i])
                referrals += self._tell(client, business, out.tell_probability[i], story, week)
        self._remember_referrers(referrals)

    def _tell(self, client: Client, business, p_tell: float, story: int, week: int) -> list:
        """A client tells its story to the neighbours it reaches; returns its referrals."""
        _, neighbours = phases.tell_neighbours(
            self.world,
            client.ids,
            np.array([p_tell]),
            week,
            np.array([business.index]),
            np.array([story]),
        )
        for neighbour in neighbours:
            self.clients[neighbour].hear(business.index, story, week)
        told = np.zeros(self.n_businesses, dtype=np.int64)
        told[business.index] = len(neighbours)
        if story < 0:
            self.firms.book(warnings_made=told)
            self.count(wom_negative=len(neighbours))
            return []
        self.firms.book(referrals_made=told)
        client.referrals_made += len(neighbours)
        self.count(wom_positive=len(neighbours))
        return [(neighbour, business.index, client.index) for neighbour in neighbours.tolist()]

    def _remember_referrers(self, referrals: list[tuple[int, int, int]]) -> None:
        """Each client told referrals this week remembers its referrer (`sim.model.phases`)."""
        told = np.array(referrals, dtype=np.int64).reshape(-1, 3)
        pairs, index = np.unique(told[:, :2], axis=0, return_inverse=True)
        referrers = np.array([self.clients[c].referrer[b] for c, b in pairs], dtype=np.int32)
        phases.remember_referrers(referrers, index.reshape(-1), told[:, 2])
        for (client, business), referrer in zip(pairs.tolist(), referrers.tolist(), strict=True):
            self.clients[client].referrer[business] = referrer

    def release(self, business: int) -> None:
        """A business exits (`sim.model.phases.release`); its queue of agents is emptied."""
        super().release(business)
        self.queues[business] = []

    def counts(self) -> tuple[int, int, int]:
        """Clients with an unplaced job, with an open job, and ever served."""
        open_jobs = [c.job for c in self.clients if c.job is not None]
        unplaced = sum(job.provider < 0 for job in open_jobs)
        return unplaced, len(open_jobs), sum(c.first_job_week >= 0 for c in self.clients)

    def read(self, name: str, ids: np.ndarray, business=None) -> np.ndarray:
        """Field `name` of the clients `ids`, agent by agent (see `MarketModel.read`)."""
        field, clients = state.BY_NAME[name], [self.clients[i] for i in ids]
        if name in state.PAIR_NAMES:
            pairs = zip(clients, np.broadcast_to(business, len(clients)), strict=True)
            values = [getattr(c, name)[b] for c, b in pairs]
        elif name.startswith("job_"):
            values = [field.initial if c.job is None else getattr(c.job, name[4:]) for c in clients]
        else:
            values = [getattr(c, name) for c in clients]
        return np.array(values, dtype=field.dtype)

    def write(self, name: str, ids: np.ndarray, values, business=None) -> None:
        """Set field `name` of the clients `ids`, agent by agent (see `MarketModel.write`)."""
        values = np.broadcast_to(np.asarray(values, dtype=state.BY_NAME[name].dtype), len(ids))
        if name in state.PAIR_NAMES:
            pairs = zip(ids, np.broadcast_to(business, len(ids)), values, strict=True)
            for i, b, value in pairs:
                getattr(self.clients[i], name)[b] = value
            return
        for i, value in zip(ids, values.tolist(), strict=True):
            if name.startswith("job_"):
                setattr(self.clients[i].job, name[4:], value)
            else:
                setattr(self.clients[i], name, value)
