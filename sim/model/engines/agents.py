"""The agents engine: every client is a Mesa agent; readable, for teaching and checking.

Follow one client's week in `Client`: `step` is its own part (a need may arrive; it gives
up, or applies to a business), and the businesses then decide on it (`hear_back`), work on
its job (`work_done`) and, when the job ends, it pays and judges (`settle`) and tells its
neighbours (`tell`, `hear`). Each verb calls a rule of `sim.model.phases` with arrays of one
client and writes what the rule decided with `MarketModel.apply`, exactly as the
vectorized engine does for arrays of many. The businesses act on all their applicants and
jobs at once (`sim.model.business.Firms`), as in the vectorized engine, so the two engines agree
run for run.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.model import phases, state
from sim.model.intake import Applicants, Intake
from sim.model.market import MarketModel
from sim.model.state import Job

ROW = np.zeros(1, dtype=np.int64)  # a client's own pair arrays, as the one row of a matrix
ANY_WEEK = np.zeros(1, dtype=np.int32)  # its `look_from` for `phases.choose`: it always looks


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
        vars(self).update(state.arrays(model.pair_fields, model.n_businesses))
        self.known_week[:] = ad_week
        self.difficulty = float(model.population["difficulty"][index])
        self.next_need = int(phases.need_gap(model.world, self.ids, 0)[0]) - 1
        self.job: Job | None = None

    # --- its own part of the week (phases 1 and 3) ----------------------------------------
    def step(self) -> None:
        """A need may arrive; a job waiting for a business is given up or taken to one."""
        week = self.model.week
        self.arrive_need(week)
        if self.job is None or self.job.provider >= 0:
            return
        if phases.out_of_patience(self.model.world, self.ids, week - self.job.need_week)[0]:
            self.give_up()
        else:
            self.apply_to(self.choose_business(week))

    def arrive_need(self, week: int) -> None:
        """Phase 1: if a need arrives and no job is open, open one."""
        if self.next_need == week:
            has_job = np.array([self.job is not None])
            self.model.apply(phases.need_arrives(self.model.world, self.ids, self.need_arrivals,
                                                 has_job, week))  # fmt: skip

    def give_up(self) -> None:
        """Phase 3: its job waited past its patience for a business: it gives up the need."""
        self.model.apply(phases.give_up(self.ids))

    def choose_business(self, week: int) -> int:
        """Phase 3: its provider, or a business it knows by logit (-1: none, or it balks).

        It goes back to its provider unless the provider declined this job.
        """
        model = self.model
        picked, _ = phases.choose(
            model.world, self.ids, week, np.array([self.provider], dtype=np.int16),
            np.array([self.job.declined_by], dtype=np.uint64), ANY_WEEK,
            {name: getattr(self, name)[None] for name in phases.CHOICE_PAIR_FIELDS},
            model.business_state_now, rows=ROW,
        )  # fmt: skip
        return int(picked[0])

    def apply_to(self, business: int) -> None:
        """Join the applicants of `business` this week (none if -1)."""
        if business >= 0:
            self.model.applications[business].append(self)

    def standing(self, week: int, kind: str) -> np.ndarray:
        """Its credits (or warnings) for every business, decayed to `week`."""
        amount, since = getattr(self, kind), getattr(self, f"{kind}_week")
        return phases.standing(self.model.world, amount, since, week)

    # --- what the businesses do with it (phases 4-8) --------------------------------------
    def hear_back(self, applied: Applicants, decision: Intake, business: int, week: int) -> None:
        """Phases 4-5: the business it applied to screened, quoted and accepted or declined it.

        `applied`, `decision`: its rows of the week's applicants and of the intake.
        """
        self.model.apply(
            phases.intake_outcome(
                self.model.world, applied, np.array([business]), decision, week,
                np.array([self.referred_by]), np.array([self.first_job_week >= 0]),
                self.referrer[[business]],
            )
        )  # fmt: skip
        if decision.accepted[0]:
            self.model.queues[business].append(self)

    def work_done(self, hours: float) -> None:
        """Phase 6: its business worked `hours` on its job."""
        job = self.job
        self.model.apply(
            phases.served(self.ids, np.array([job.remaining]), np.array([hours]), job.provider)
        )

    def settle(self, outcome: phases.Outcome, week: int) -> None:
        """Phase 7: its job ended (`outcome`: its row): it pays, counts it, stays or leaves."""
        provider = np.array([self.job.provider], dtype=np.int64)
        first_job_week, kept = np.array([self.first_job_week]), np.array([self.provider])
        self.model.apply(
            phases.settle(self.model.world, self.ids, week, provider, outcome, first_job_week, kept)
        )

    def tell(self, business: int, p_tell: float, story: int, week: int) -> list:
        """Phase 8: tell its story about `business` (+1 referral, -1 warning) to neighbours.

        Returns its referrals, as (neighbour told, business, teller).
        """
        model = self.model
        _, neighbours = phases.tell_neighbours(
            model.world, self.ids, np.array([p_tell]), week, np.array([business]),
            np.array([story]),
        )  # fmt: skip
        for neighbour in neighbours:
            model.clients[neighbour].hear(business, story, week)
        told = np.zeros(model.n_businesses, dtype=np.int64)
        told[business] = len(neighbours)
        model.firms.book(**{"referrals_made" if story > 0 else "warnings_made": told})
        each = np.zeros(len(neighbours), np.int64), np.full(len(neighbours), story)
        model.apply(phases.stories_told(self.ids, *each))
        if story < 0:
            return []
        return [(neighbour, business, self.index) for neighbour in neighbours.tolist()]

    def hear(self, business: int, story: int, week: int) -> None:
        """Phase 8: a neighbour's story about `business` (+1 referral, -1 warning)."""
        pair = (getattr(self, name) for name in phases.HEARD)
        phases.hear_stories(self.model.world, *pair, np.array([business]), np.array([story]), week)


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
        self.business_state_now = self.business_state()

    def clients_step(self, week: int) -> None:
        """Phases 1 and 3: every client steps, against the businesses' state at the start."""
        self.applications = [[] for _ in self.businesses]
        self.business_state_now = self.business_state()
        self.client_agents.do("step")

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
        fields = phases.INTAKE_JOB_FIELDS
        job = dict(zip(fields, self._job_fields(clients, *fields), strict=True))
        applicants = phases.applicants(
            self.world, ids, business, week, new, phases.fresh_referrals(self.world, new, credit),
            np.array([c.difficulty for c in clients]), job,
        )  # fmt: skip
        intake = self.firms.take(applicants)
        for i, (client, b) in enumerate(zip(clients, business.tolist(), strict=True)):
            client.hear_back(applicants[i : i + 1], intake[i : i + 1], b, week)

    def serve(self, week: int) -> None:
        """Phase 6: each business works its queue in order of acceptance."""
        queued = [c for queue in self.queues for c in queue]
        worked = self.firms.serve(
            np.array([c.job.provider for c in queued], dtype=np.int64),
            np.array([c.job.remaining for c in queued], dtype=float),
            phases.difficult(self.world, np.array([c.difficulty for c in queued], dtype=float)),
            phases.due(self.world, week, *self._job_fields(queued, "accept_week", "deadline")),
        )
        for client, hours in zip(queued, worked, strict=True):
            client.work_done(hours)

    @staticmethod
    def _job_fields(clients: list[Client], *names: str) -> list[np.ndarray]:
        """Fields `names` of the clients' open jobs, as arrays of their declared dtypes."""
        return [
            np.array([getattr(c.job, f) for c in clients], dtype=state.BY_NAME[f"job_{f}"].dtype)
            for f in names
        ]

    def complete(self, week: int) -> None:
        """Phases 7-8: finished jobs are paid and judged; happy and angry clients talk."""
        serving = sorted((c for q in self.queues for c in q), key=lambda c: c.index)
        fields = phases.FINISH_JOB_FIELDS
        job = dict(zip(fields, self._job_fields(serving, *fields), strict=True))
        finished = np.array([c.job.remaining <= 0.0 for c in serving], dtype=bool)
        ids = np.array([c.index for c in serving], dtype=np.int64)
        closing = finished | phases.abandons(self.world, ids, week, job)
        done = [c for c, closes in zip(serving, closing, strict=True) if closes]
        closed = {c.index for c in done}
        self.queues = [[c for c in q if c.index not in closed] for q in self.queues]
        ids, abandoned = ids[closing], ~finished[closing]
        job = {f: values[closing] for f, values in job.items()}
        provider = np.array([c.job.provider for c in done], dtype=np.int64)
        kept = np.array([c.provider for c in done], dtype=state.BY_NAME["provider"].dtype)
        difficulty = np.array([c.difficulty for c in done])
        held = np.array([c.provider_satisfaction for c in done], dtype=np.float64)
        out = phases.finish_jobs(
            self.world, ids, week, provider, job, kept, difficulty, abandoned, held
        )
        phases.book_outcomes(self.firms, lambda **m: self.count_clients(ids, **m), provider, out)
        for i, client in enumerate(done):
            client.settle(out[i : i + 1], week)
        referrals = []  # (client told, business, teller) of the week's referrals
        for i, client in enumerate(done):
            if out.story[i] != 0:
                referrals += client.tell(
                    int(provider[i]), out.tell_probability[i], int(out.story[i]), week
                )
        self._remember_referrers(referrals)

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
        elif name == "job_open":
            values = [c.job is not None for c in clients]
        elif name.startswith("job_"):
            values = [field.initial if c.job is None else getattr(c.job, name[4:]) for c in clients]
        else:
            values = [getattr(c, name) for c in clients]
        return np.array(values, dtype=field.dtype)

    def write(self, name: str, ids: np.ndarray, values, business=None) -> None:
        """Set field `name` of the clients `ids`, agent by agent (see `MarketModel.write`).

        Setting ``job_open`` opens a job (all its fields initial) or closes it (None).
        """
        values = np.asarray(values, dtype=state.BY_NAME[name].dtype)
        values = values.tolist() if values.ndim else [values.item()] * len(ids)
        clients = [self.clients[i] for i in ids.tolist()]
        if name in state.PAIR_NAMES:
            pairs = zip(clients, np.broadcast_to(business, len(ids)).tolist(), values, strict=True)
            for client, b, value in pairs:
                getattr(client, name)[b] = value
        elif name == "job_open":
            for client, value in zip(clients, values, strict=True):
                client.job = (client.job or Job(open=True)) if value else None
        elif name.startswith("job_"):
            for client, value in zip(clients, values, strict=True):
                setattr(client.job, name[4:], value)
        else:
            for client, value in zip(clients, values, strict=True):
                setattr(client, name, value)
