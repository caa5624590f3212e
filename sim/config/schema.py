"""Typed config schema with declared ranges, and its registration with Hydra.

The defaults live in the YAML files under `configs/` (one source of truth); the dataclasses
here give every key its type and its allowed values. Every numeric leaf declares its range
(`num`), every string leaf its choices (`one_of`), every Beta distribution its parameters'
range (`beta`). `sim.config.checks.validate` walks a composed config along this schema. A user
error is reported as a `ConfigError`: one line naming the full key, the value and what is
allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from sim.config.registry import CRITERIA, NETWORK_KINDS, POLICY_KINDS, SERVES, WEEKS_PER_YEAR
from sim.errors import UserError

ENGINES = ("agents", "vectorized")
MAX_BUSINESSES = 64
MAX_WEEKS = 10_000  # about 190 years: far beyond any horizon of interest
MAX_CLIENTS = 2**31 - 1  # the network's indices are int32
#: The largest seed. The random streams take any non-negative integer (numpy's SeedSequence,
#: `sim.model.rng`), but every table stores a run's seed as an int64; a sweep's seeds `seed + i`
#: must all fit too (`sim.sweeps.experiment.check_design`).
MAX_SEED = 2**63 - 1


class ConfigError(UserError, ValueError):
    """A config value a user set is not allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"invalid config: {key}={value!r}: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


@dataclass(frozen=True)
class Range:
    """Allowed values of a numeric leaf: `lo` to `hi`, each end closed unless declared open.

    NaN is never inside; infinity only when an end is infinite and closed.
    """

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def describe(self, integer: bool = False) -> str:
        """What is allowed, e.g. "must be an integer in [1, 10,000]"."""
        kind = "an integer" if integer else "a finite number" if self.finite else "a number"
        return f"must be {kind} in {self.interval(integer)}"

    def interval(self, integer: bool = False) -> str:
        """The range in interval notation, e.g. "(0, 1]"."""
        lo, hi = (f"{v:,}" if integer else f"{v:g}" for v in (self.lo, self.hi))
        return f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"

    @property
    def finite(self) -> bool:
        """Whether both ends are finite (infinity then is outside)."""
        return math.isfinite(self.lo) and math.isfinite(self.hi)


UNIT = Range(0.0, 1.0)


def num(
    lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False, default: Any = MISSING
) -> Any:
    """A numeric field (int or float) whose value must lie in the declared range."""
    return field(default=default, metadata={"range": Range(lo, hi, lo_open, hi_open)})


def free(default: Any = MISSING, *, factory: Any = None, checked_by: str = "") -> Any:
    """A field whose value this walker does not check (text, or checked where it is used)."""
    default = {"default_factory": factory} if factory else {"default": default}
    return field(**default, metadata={"free": checked_by or "any value"})


def unit() -> Any:
    """A numeric field in [0, 1]: a probability, a share, a score."""
    return field(default=MISSING, metadata={"range": UNIT})


def one_of(*choices: str, default: Any = MISSING) -> Any:
    """A string field that must be one of `choices`."""
    return field(default=default, metadata={"choices": choices})


def beta() -> Any:
    """A Beta distribution [a, b], with 0 < a, b <= 1000."""
    return field(default=MISSING, metadata={"range": Range(0.0, 1000.0, lo_open=True), "length": 2})


def entries(values: Range, *, keys: tuple[str, ...] | None = None, empty: bool = False) -> Any:
    """A dict field: every value in `values`, every key one of `keys` (if given).

    `empty` makes `{}` the schema default (else the YAML must give the entries).
    """
    default = {"default_factory": dict} if empty else {"default": MISSING}
    return field(**default, metadata={"range": values, "keys": keys})


@dataclass
class Segment:
    """A client segment: its share of clients and the distributions of its traits.

    Beta distributions are given as [a, b]; `budget` multiplies the market price (a budget of
    1.1 expects to pay 10% above it); `need_rate` is in jobs per year.
    """

    share: float = unit()
    difficulty: list[float] = beta()
    pay_reliability: list[float] = beta()
    budget: float = num(0, 100, lo_open=True)
    misdiagnosis: list[float] = beta()
    unrealistic: list[float] = beta()
    need_rate: float = num(0, 520, lo_open=True)  # up to ten a week
    talkativeness: list[float] = beta()


@dataclass
class BuyingCentre:
    """The buying centre: decider, user, payer and influencer (off by default)."""

    enabled: bool = MISSING
    role_spread: float = num(0, 10)  # radians: beyond about pi the roles' values are uniform
    budget_sigma: float = num(0, 3)  # log s.d.: 3 already spreads budgets by e^9 at 3 s.d.
    tailoring: float = unit()  # how far serving one role shifts its alignment and the other's


@dataclass
class Choice:
    """Coefficients of the clients' multinomial-logit choice of a business.

    Their signs are fixed (a better reputation attracts, a higher price and a longer queue
    deter); a coefficient of 0 switches its term off.
    """

    beta_reputation: float = num(0, 50)
    reference_rating: float = num(1, 5)
    beta_alignment: float = num(0, 50)
    beta_price: float = num(0, 50)  # subtracted: a higher price deters
    beta_wait: float = num(-50, 0)  # added: negative, a longer queue deters
    beta_prepay: float = num(-50, 0)  # added: negative, a business that requires prepayment deters
    noise: float = num(0, 50, lo_open=True)  # Gumbel scale


@dataclass
class Satisfaction:
    """Coefficients of satisfaction S in [0, 1] with a finished job, and retention."""

    baseline: float = unit()
    alignment: float = num(0, 10)
    wait: float = num(0, 1)  # per week: 1 already empties S in a week
    wait_grace: float = num(0, 520)
    price: float = num(0, 10)
    misfit: float = unit()
    extras: float = unit()
    late: float = unit()
    difficulty: float = unit()
    failed: float = unit()  # an impossible job that failed (`market.jobs.impossible_failure`)
    noise: float = num(0, 1)
    retention_slope: float = num(0, 100)
    retention_threshold: float = unit()  # satisfaction at which P(stay) is one half
    memory: float = num(0, 0.99)  # weight of the satisfaction held of a provider in staying


@dataclass
class Reviews:
    """J-shaped reviews and the Bayesian reputation (prior, half-life in weeks)."""

    floor: float = unit()
    prior_reviews: float = num(0, 10_000, lo_open=True)  # the prior anchors a new business
    prior_rating: float = num(1, 5)
    half_life: float = num(0, MAX_WEEKS, lo_open=True)


@dataclass
class WordOfMouth:
    """Stories told to network neighbours: thresholds, probabilities, weights."""

    enabled: bool = MISSING
    positive: float = unit()
    negative: float = unit()
    p_positive: float = unit()
    p_negative: float = unit()
    credit: float = num(0, 50)
    referral_min: float = num(0, 50)
    negativity_bias: float = num(1, 100)  # a warning weighs at least as much as a credit
    matching: float = unit()  # how much a referrer tells the friends who would fit the business
    decay: float = unit()


@dataclass
class Reform:
    """A declined difficult client sometimes becomes reasonable."""

    min_difficulty: float = unit()
    prob: float = unit()
    amount: float = unit()


@dataclass
class Patience:
    """How long a client waits for a job before it gives up, and what leaving costs.

    Patience is a trait, in weeks: `median_weeks` x lognormal(0, `sigma`). Off, it is
    infinite: nobody leaves a queue or balks.
    """

    enabled: bool = MISSING
    median_weeks: float = num(0, MAX_WEEKS, lo_open=True)
    sigma: float = num(0, 3)  # log s.d.
    penalty: float = unit()  # satisfaction lost by a client who leaves a business's queue
    prepaid_leave: bool = MISSING  # a prepaid client leaves a queue too, and is refunded


@dataclass
class ClientsConfig:
    """Who the clients are (segments, trait spreads) and how they behave."""

    segments: dict[str, Segment] = MISSING
    need_rate_sigma: float = num(0, 3)  # log s.d.
    scale_sigma: float = num(0, 3)  # log s.d. of a client's size (its jobs' hours), mean 1
    budget_sigma: float = num(0, 3)  # log s.d.
    review_propensity: list[float] = beta()
    prepay_exponent: float = num(0, 100)
    buying_centre: BuyingCentre = field(default_factory=BuyingCentre)
    choice: Choice = field(default_factory=Choice)
    satisfaction: Satisfaction = field(default_factory=Satisfaction)
    reviews: Reviews = field(default_factory=Reviews)
    wom: WordOfMouth = field(default_factory=WordOfMouth)
    reform: Reform = field(default_factory=Reform)
    patience: Patience = field(default_factory=Patience)
    decline_memory: int = num(0, MAX_WEEKS)  # weeks: a screen's refusal, a provider left
    declined_job_memory: int = num(0, MAX_WEEKS)  # weeks: a job declined, the client kept


@dataclass
class Network:
    """The clients' social network: generator kind, its parameters, homophily."""

    kind: str = one_of(*NETWORK_KINDS)
    homophily: float = unit()
    # each kind's own limits (e.g. an even k below n_clients) are a cross-field rule
    params: dict[str, float] = entries(Range(0, 1e6))


@dataclass
class Jobs:
    """Job sizes (hours), misdiagnosis and deadlines (weeks)."""

    median_hours: float = num(0, 10_000, lo_open=True)
    sigma: float = num(0, 3)  # log s.d.: 3 gives jobs of e^9 times the median at 3 s.d.
    misdiagnosed_low: float = num(0, 10, lo_open=True)  # shares of the true size ...
    misdiagnosed_high: float = num(0, 10, lo_open=True)  # ... low <= high
    deadline_weeks: int = num(1, 520)
    impossible_failure: float = unit()  # P(an accepted job of deadline 0 fails: nothing paid)


@dataclass
class Service:
    """Hours a job takes beyond its billed hours (difficulty, conflict, rework, rush)."""

    difficulty_hours: float = num(0, 100)
    conflict_prob: float = unit()
    conflict_hours: float = num(0, 100)
    difficult_above: float = unit()
    rework_share: float = num(0, 10)  # unbilled rework hours per hour a misdiagnosis missed
    rush_share: float = num(0, 10)  # overtime a week for due jobs, a share of capacity
    rush_premium: float = num(1, 10)  # an overtime hour's pay over (wage + salary)


@dataclass
class Payment:
    """How unreliable payers pay (part of the invoice, or nothing), and late jobs disputed."""

    partial_prob: float = unit()
    partial_share: float = unit()
    dispute_late: float = unit()  # P(a late job is disputed)
    dispute_share: float = unit()  # the share of a disputed invoice withheld or refunded


@dataclass
class Ads:
    """Advertising reach and the cost of overpromising."""

    reach: float = unit()
    dishonesty_boost: float = num(0, 100)
    overpromise: float = unit()


@dataclass
class Capacity:
    """Capacity that adjusts toward demand (Sterman 2000, ch. 19); off, it stays as it starts.

    Times are in weeks (>= 1: one step is a week), costs in weeks of pay (salary + wage) per
    hour of weekly capacity added or shed, bounds in shares of a business's starting capacity.
    """

    adjust: bool = MISSING
    demand_weeks: float = num(1, MAX_WEEKS)  # smoothing time of the accepted load
    adjust_weeks: float = num(1, MAX_WEEKS)  # time to close the gap to desired capacity
    target_backlog_weeks: float = num(0, MAX_WEEKS)  # backlog aimed at, weeks of load
    hire_cost_weeks: float = num(0, MAX_WEEKS)
    layoff_cost_weeks: float = num(0, MAX_WEEKS)
    min_share: float = num(0, 1, lo_open=True)  # floor: > 0, a queue is backlog / capacity
    max_share: float = num(1, 100)


@dataclass
class MarketConfig:
    """The market: its size, its businesses and their economics.

    Money is in currency units (cu); 1e6 cu per hour bounds every price and cost, far above
    any calibration, so that sums over years of weeks stay exact in float64.
    """

    n_clients: int = num(2, MAX_CLIENTS)  # and what fits in memory (a cross-field rule)
    policy_mix: dict[str, int] = entries(Range(0, MAX_BUSINESSES))  # keys: the presets
    # capacity = demand / ratio: a tiny ratio buys an absurd capacity, a huge one none
    demand_supply_ratio: float = num(0.01, 100)
    price: float = num(0, 1e6, lo_open=True)
    wage: float = num(0, 1e6)
    salary: float = num(0, 1e6)
    ad_spend: float = num(0, 1e8)
    initial_cash_weeks: float = num(0, MAX_WEEKS)
    credit_limit_weeks: float = num(0, MAX_WEEKS)
    exit_after: int = num(1, MAX_WEEKS)
    network: Network = field(default_factory=Network)
    jobs: Jobs = field(default_factory=Jobs)
    service: Service = field(default_factory=Service)
    payment: Payment = field(default_factory=Payment)
    ads: Ads = field(default_factory=Ads)
    capacity: Capacity = field(default_factory=Capacity)


@dataclass
class PolicyConfig:
    """One policy preset: a screen plus service habits (see `sim.model.policies`).

    Its defaults are `configs/policies/preset/base.yaml`, which every preset extends.
    """

    kind: str = one_of(*POLICY_KINDS)
    threshold: float = unit()
    criteria: dict[str, float] = entries(Range(0, 100), keys=CRITERIA)
    screening_noise: float = num(0, 10)
    screening_hours: float = num(0, 168)  # hours a week
    diagnosis: bool = MISSING
    diagnosis_hours: float = num(0, 168)
    decline_impossible: bool = MISSING
    prepayment: bool = MISSING
    upsell_rate: float = unit()
    upsell_share: float = num(0, 10)
    ad_honesty: float = unit()
    culture_strength: float = unit()  # how strongly its culture shows (docs/ODD.md §7.12)
    serves: str = one_of(*SERVES)  # whose interests it satisfies (buying centre, §7.10)
    capacity_share: float = num(0, 100, lo_open=True)  # x the market's starting capacity
    # intake: how it refuses, and in what order it decides (docs/ODD.md §7.4)
    ends_relationship: bool = MISSING  # every refusal ends the relationship (else: the job)
    careful_order: bool = MISSING  # queue and deadline before diagnosis; no screens when full
    full_weeks: float = num(0, MAX_WEEKS, lo_open=True)  # backlog (weeks) at which it is full


@dataclass
class Compare:
    """What an experiment compares: two policies (`axis: policy`) or two values of a swept key.

    With `axis` a swept key, `a` and `b` are two of its values and `policy` names the policy
    whose outcomes are compared; pairs are matched on the seed (common random numbers).
    """

    axis: str = free("policy", checked_by="sim.sweeps.experiment.check_design")
    a: Any = free("fit_filter", checked_by="sim.sweeps.experiment.check_design")
    b: Any = free("serve_all", checked_by="sim.sweeps.experiment.check_design")
    policy: str | None = None


@dataclass
class ExperimentConfig:
    """One experiment (`experiments/NAME.yaml`, Hydra group `experiment`), run as a sweep.

    Each job of the sweep runs one design point for the seeds `seed + i`, i in
    [0, `seeds`), or for chunk `chunk` of `chunk_size` of them (see `sim.sweeps`).
    """

    name: str = free()
    hypothesis: str = free()
    question: str = free()
    seeds: int = num(1, 1_000_000, default=10)
    chunk_size: int = num(1, 1_000_000, default=10)
    chunk: int | None = num(0, 1_000_000, default=None)  # set by `clientsim-experiment run`
    #: seeds of a chunk stepped together as one array program by the vectorized engine
    #: (`sim.runs.run.simulate_batch`; each run's results are those it has alone); 1: one by one
    batch: int = num(1, 1000, default=10)
    total_runs: int = num(0, 1e12, default=0)  # for the progress lines; 0: unknown
    #: the submission this job belongs to (set by `clientsim-experiment run`): a job of an
    #: earlier submission of the same sweep directory writes nothing (`sim.sweeps.jobs.run_job`)
    sweep_id: str | None = free(None, checked_by="sim.sweeps.jobs.run_job")
    x: str | None = None  # the swept key on the figure's x axis
    group: str | None = None  # a second swept key, drawn as separate lines
    compare: Compare = field(default_factory=Compare)
    metrics: list[str] = free(factory=lambda: ["profit_week_13", "profit_horizon"],
                              checked_by="sim.sweeps.experiment.check_design")  # fmt: skip
    #: the figures that answer the question, the first one first (`clientsim-plot` names)
    figures: list[str] = free(
        factory=lambda: ["paired", "profit"], checked_by="sim.analysis.report"
    )
    #: what the hypothesis predicts, as claims `sim.analysis.report` checks:
    #: {metric, sign: positive | negative}, {metric, trend: increasing | decreasing}, {metric,
    #: shape: hump}, {metric, larger_at: VALUE of x}; `at: VALUE` restricts a claim to one value of
    #: x, and
    #: `policy: NAME` makes it about that policy's own metric rather than the difference
    expect: list[Any] = free(factory=list, checked_by="sim.analysis.report")
    #: a two-level full factorial (`sim.analysis.factorial`): swept key -> its "on" level (the
    #: other swept value is "off"); the results give each metric's main effects and two-way
    #: interactions on the gap. None: not a factorial
    factorial: dict[str, Any] | None = free(None, checked_by="sim.sweeps.experiment.check_design")


@dataclass
class Config:
    """The whole run: `clientsim` composes it from `configs/config.yaml`."""

    seed: int = num(0, MAX_SEED)
    steps: int = num(1, MAX_WEEKS)
    engine: str = one_of(*ENGINES)
    progress: bool = MISSING
    #: write pairs.parquet; false leaves it out, and its accounts' memory (18 bytes a client
    #: and business) with it
    pairs: bool = True
    output_dir: str | None = None
    clients: ClientsConfig = field(default_factory=ClientsConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    policies: dict[str, PolicyConfig] = MISSING
    experiment: ExperimentConfig | None = None


def _register_resolvers() -> None:
    """Resolvers the experiments use to keep a total fixed while one part is swept."""
    resolvers = {
        # ${minus:10,${market.policy_mix.fit_filter}}: the rest of ten businesses
        "minus": lambda a, b: a - b,
        # ${rescale:0.40,${clients.segments.difficult.share},0.10}: a share scaled so that all
        # shares still sum to 1 when another segment's default share 0.10 becomes x
        "rescale": lambda share, x, x_default: share * (1 - x) / (1 - x_default),
        # ${weekly:0.03}: the weekly probability of an event at a rate per year (Bass's p)
        "weekly": lambda per_year: -math.expm1(-per_year / WEEKS_PER_YEAR),
        # ${weekly_pair:0.38,${market.n_clients}}: one adopter telling one of n clients in a
        # week, so that all adopters together reach a client at q x (adopter share) a year
        "weekly_pair": lambda per_year, n: -math.expm1(-per_year / (WEEKS_PER_YEAR * n)),
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def register_configs() -> None:
    """Store the schemas as `base_*` in Hydra's ConfigStore (the YAML files extend them)."""
    _register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="clients", name="base_clients", node=ClientsConfig)
    cs.store(group="market", name="base_market", node=MarketConfig)
    cs.store(group="market/network", name="base_network", node=Network)
    cs.store(group="policies/preset", name="base_policy", node=PolicyConfig)
