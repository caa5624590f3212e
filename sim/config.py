"""Typed config schema, registration with Hydra's ConfigStore, and validation.

The defaults live in the YAML files under `configs/` (one source of truth); the dataclasses
here give every key its type, so that Hydra rejects unknown keys and wrong types, and
`validate` checks the ranges. A user error is reported as a `ConfigError`: one line naming
the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

ENGINES = ("agents", "vectorized")
MAX_BUSINESSES = 64


class ConfigError(ValueError):
    """A config value a user set is not allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"invalid config: {key}={value!r}: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


@dataclass
class Segment:
    """A client segment: its share of clients and the distributions of its traits.

    Beta distributions are given as [a, b]; `budget` multiplies the market price (a budget of
    1.1 expects to pay 10% above it); `need_rate` is in jobs per year.
    """

    share: float = MISSING
    difficulty: list[float] = MISSING
    pay_reliability: list[float] = MISSING
    budget: float = MISSING
    misdiagnosis: list[float] = MISSING
    unrealistic: list[float] = MISSING
    need_rate: float = MISSING
    talkativeness: list[float] = MISSING


@dataclass
class BuyingCentre:
    """The buying centre: decider, user, payer and influencer (off by default)."""

    enabled: bool = MISSING
    role_spread: float = MISSING
    budget_sigma: float = MISSING


@dataclass
class Choice:
    """Coefficients of the clients' multinomial-logit choice of a business."""

    beta_reputation: float = MISSING
    reference_rating: float = MISSING
    beta_alignment: float = MISSING
    beta_price: float = MISSING
    beta_wait: float = MISSING
    noise: float = MISSING


@dataclass
class Satisfaction:
    """Coefficients of satisfaction S in [0, 1] with a finished job, and retention."""

    baseline: float = MISSING
    alignment: float = MISSING
    wait: float = MISSING
    wait_grace: float = MISSING
    price: float = MISSING
    misfit: float = MISSING
    extras: float = MISSING
    late: float = MISSING
    difficulty: float = MISSING
    noise: float = MISSING
    retention_slope: float = MISSING


@dataclass
class Reviews:
    """J-shaped reviews and the Bayesian reputation (prior, half-life in weeks)."""

    floor: float = MISSING
    prior_reviews: float = MISSING
    prior_rating: float = MISSING
    half_life: float = MISSING


@dataclass
class WordOfMouth:
    """Stories told to network neighbours: thresholds, probabilities, weights."""

    enabled: bool = MISSING
    positive: float = MISSING
    negative: float = MISSING
    p_positive: float = MISSING
    p_negative: float = MISSING
    credit: float = MISSING
    referral_min: float = MISSING
    negativity_bias: float = MISSING
    decay: float = MISSING


@dataclass
class Reform:
    """A declined difficult client sometimes becomes reasonable."""

    min_difficulty: float = MISSING
    prob: float = MISSING
    amount: float = MISSING


@dataclass
class ClientsConfig:
    """Who the clients are (segments, trait spreads) and how they behave."""

    segments: dict[str, Segment] = MISSING
    need_rate_sigma: float = MISSING
    budget_sigma: float = MISSING
    review_propensity: list[float] = MISSING
    prepay_exponent: float = MISSING
    buying_centre: BuyingCentre = field(default_factory=BuyingCentre)
    choice: Choice = field(default_factory=Choice)
    satisfaction: Satisfaction = field(default_factory=Satisfaction)
    reviews: Reviews = field(default_factory=Reviews)
    wom: WordOfMouth = field(default_factory=WordOfMouth)
    reform: Reform = field(default_factory=Reform)
    decline_memory: int = MISSING


@dataclass
class Network:
    """The clients' social network: generator kind, its parameters, homophily."""

    kind: str = MISSING
    homophily: float = MISSING
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class Jobs:
    """Job sizes (hours), misdiagnosis and deadlines (weeks)."""

    median_hours: float = MISSING
    sigma: float = MISSING
    misdiagnosed_low: float = MISSING
    misdiagnosed_high: float = MISSING
    deadline_weeks: int = MISSING


@dataclass
class Service:
    """Hours a job takes beyond its billed hours (difficulty, conflict)."""

    difficulty_hours: float = MISSING
    conflict_prob: float = MISSING
    conflict_hours: float = MISSING
    difficult_above: float = MISSING


@dataclass
class Payment:
    """How unreliable payers pay: part of the invoice, or nothing."""

    partial_prob: float = MISSING
    partial_share: float = MISSING


@dataclass
class Ads:
    """Advertising reach and the cost of overpromising."""

    reach: float = MISSING
    dishonesty_boost: float = MISSING
    overpromise: float = MISSING


@dataclass
class MarketConfig:
    """The market: its size, its businesses and their economics."""

    n_clients: int = MISSING
    policy_mix: dict[str, int] = MISSING
    demand_supply_ratio: float = MISSING
    price: float = MISSING
    wage: float = MISSING
    salary: float = MISSING
    ad_spend: float = MISSING
    initial_cash_weeks: float = MISSING
    credit_limit_weeks: float = MISSING
    exit_after: int = MISSING
    network: Network = field(default_factory=Network)
    jobs: Jobs = field(default_factory=Jobs)
    service: Service = field(default_factory=Service)
    payment: Payment = field(default_factory=Payment)
    ads: Ads = field(default_factory=Ads)


@dataclass
class PolicyConfig:
    """One policy preset: a screen plus service habits (see `sim.policies`)."""

    kind: str = "threshold"
    threshold: float = MISSING
    criteria: dict[str, float] = MISSING
    screening_noise: float = MISSING
    screening_hours: float = MISSING
    diagnosis: bool = MISSING
    diagnosis_hours: float = MISSING
    decline_impossible: bool = MISSING
    prepayment: bool = MISSING
    upsell_rate: float = MISSING
    upsell_share: float = MISSING
    ad_honesty: float = MISSING


@dataclass
class Compare:
    """What an experiment compares: two policies (`axis: policy`) or two values of a swept key.

    With `axis` a swept key, `a` and `b` are two of its values and `policy` names the policy
    whose outcomes are compared; pairs are matched on the seed (common random numbers).
    """

    axis: str = "policy"
    a: Any = "fit_filter"
    b: Any = "serve_all"
    policy: str | None = None


@dataclass
class ExperimentConfig:
    """One experiment (`experiments/NAME.yaml`, Hydra group `experiment`), run as a sweep.

    Each job of the sweep runs one design point for the seeds `seed + i`, i in
    [0, `seeds`), or for chunk `chunk` of `chunk_size` of them (see `sim.sweep`).
    """

    name: str = MISSING
    hypothesis: str = MISSING
    question: str = MISSING
    seeds: int = 10
    chunk_size: int = 10
    chunk: int | None = None  # set by `clientsim-experiment run`; None: every seed in one job
    total_runs: int = 0  # set by `clientsim-experiment run` for the progress lines; 0: unknown
    x: str | None = None  # the swept key on the figure's x axis
    group: str | None = None  # a second swept key, drawn as separate lines
    compare: Compare = field(default_factory=Compare)
    metrics: list[str] = field(default_factory=lambda: ["profit_week_13", "profit_horizon"])
    #: what the hypothesis predicts, as claims `sim.report` checks: {metric, sign: positive |
    #: negative}, {metric, trend: increasing | decreasing}, {metric, shape: hump},
    #: {metric, larger_at: VALUE of x}
    expect: list[Any] = field(default_factory=list)


@dataclass
class Config:
    """The whole run: `clientsim` composes it from `configs/config.yaml`."""

    seed: int = MISSING
    steps: int = MISSING
    engine: str = MISSING
    progress: bool = MISSING
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


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed)


def _unit(key: str, value: float) -> None:
    _check(0.0 <= value <= 1.0, key, value, "must be in [0, 1]")


def _positive(key: str, value: float, *, strict: bool = True) -> None:
    ok = value > 0 if strict else value >= 0
    _check(math.isfinite(value) and ok, key, value, "must be > 0" if strict else "must be >= 0")


def _beta(key: str, value: list[float]) -> None:
    ok = len(value) == 2 and all(v > 0 and math.isfinite(v) for v in value)
    _check(ok, key, list(value), "must be a Beta distribution [a, b] with a, b > 0")


def _validate_clients(c: DictConfig) -> None:
    _check(len(c.segments) > 0, "clients.segments", {}, "needs at least one segment")
    total = 0.0
    for name, seg in c.segments.items():
        key = f"clients.segments.{name}"
        _unit(f"{key}.share", seg.share)
        total += seg.share
        for trait in ("difficulty", "pay_reliability", "misdiagnosis", "unrealistic"):
            _beta(f"{key}.{trait}", seg[trait])
        _beta(f"{key}.talkativeness", seg.talkativeness)
        _positive(f"{key}.budget", seg.budget)
        _positive(f"{key}.need_rate", seg.need_rate)
    shares = {n: s.share for n, s in c.segments.items()}
    _check(abs(total - 1.0) < 1e-6, "clients.segments.*.share", shares, "shares must sum to 1")
    _beta("clients.review_propensity", c.review_propensity)
    for key in ("need_rate_sigma", "budget_sigma", "prepay_exponent", "decline_memory"):
        _positive(f"clients.{key}", c[key], strict=False)
    for key in ("wom.positive", "wom.negative", "wom.p_positive", "wom.p_negative", "wom.decay"):
        _unit(f"clients.{key}", OmegaConf.select(c, key))
    _check(
        c.wom.negativity_bias >= 1,
        "clients.wom.negativity_bias",
        c.wom.negativity_bias,
        "must be >= 1 (a negative story weighs at least as much as a positive one)",
    )
    _check(
        c.wom.negative <= c.wom.positive,
        "clients.wom.negative",
        c.wom.negative,
        f"must be <= clients.wom.positive ({c.wom.positive})",
    )
    for key in ("reform.min_difficulty", "reform.prob", "reform.amount"):
        _unit(f"clients.{key}", OmegaConf.select(c, key))
    _positive("clients.reviews.half_life", c.reviews.half_life)
    _positive(
        "clients.reviews.prior_reviews", c.reviews.prior_reviews
    )  # the prior anchors a new business
    _check(
        1 <= c.reviews.prior_rating <= 5,
        "clients.reviews.prior_rating",
        c.reviews.prior_rating,
        "must be a rating in [1, 5]",
    )
    _positive("clients.choice.noise", c.choice.noise)
    _positive("clients.satisfaction.noise", c.satisfaction.noise, strict=False)
    _positive("clients.buying_centre.role_spread", c.buying_centre.role_spread, strict=False)


def _validate_market(m: DictConfig, policies: DictConfig) -> None:
    from sim.network import NETWORK_KINDS, NETWORK_PARAMS, check_params

    _check(m.n_clients >= 2, "market.n_clients", m.n_clients, "must be an integer >= 2")
    _check(len(m.policy_mix) > 0, "market.policy_mix", {}, "needs at least one policy")
    for name, count in m.policy_mix.items():
        _check(
            name in policies,
            f"market.policy_mix.{name}",
            count,
            f"unknown policy; allowed: {', '.join(policies)}",
        )
        _check(count >= 0, f"market.policy_mix.{name}", count, "must be an integer >= 0")
    n = sum(m.policy_mix.values())
    _check(
        1 <= n <= MAX_BUSINESSES,
        "market.policy_mix",
        dict(m.policy_mix),
        f"total businesses must be in [1, {MAX_BUSINESSES}]",
    )
    _positive("market.demand_supply_ratio", m.demand_supply_ratio)
    for key in ("price", "wage", "salary", "ad_spend", "initial_cash_weeks", "credit_limit_weeks"):
        _positive(f"market.{key}", m[key], strict=key == "price")
    _check(m.exit_after >= 1, "market.exit_after", m.exit_after, "must be an integer >= 1")
    net = m.network
    _check(
        net.kind in NETWORK_KINDS,
        "market.network.kind",
        net.kind,
        f"allowed: {', '.join(NETWORK_KINDS)}",
    )
    _unit("market.network.homophily", net.homophily)
    for key in net.params:
        _check(
            key in NETWORK_PARAMS[net.kind],
            f"market.network.params.{key}",
            net.params[key],
            f"unknown parameter of {net.kind}; allowed: {', '.join(NETWORK_PARAMS[net.kind])}",
        )
    try:
        check_params(m.n_clients, net.kind, dict(net.params))
    except ValueError as error:
        raise ConfigError("market.network.params", dict(net.params), str(error)) from None
    _positive("market.jobs.median_hours", m.jobs.median_hours)
    _positive("market.jobs.sigma", m.jobs.sigma, strict=False)
    _check(
        0 < m.jobs.misdiagnosed_low <= m.jobs.misdiagnosed_high,
        "market.jobs.misdiagnosed_low",
        m.jobs.misdiagnosed_low,
        "must be in (0, market.jobs.misdiagnosed_high]",
    )
    _check(
        m.jobs.deadline_weeks >= 1,
        "market.jobs.deadline_weeks",
        m.jobs.deadline_weeks,
        "must be an integer >= 1",
    )
    for key in (
        "service.conflict_prob",
        "payment.partial_prob",
        "payment.partial_share",
        "ads.reach",
        "ads.overpromise",
        "service.difficult_above",
    ):
        _unit(f"market.{key}", OmegaConf.select(m, key))


def _validate_policies(policies: DictConfig) -> None:
    from sim.policies import CRITERIA, POLICY_KINDS

    for name, p in policies.items():
        key = f"policies.{name}"
        _check(p.kind in POLICY_KINDS, f"{key}.kind", p.kind, f"allowed: {', '.join(POLICY_KINDS)}")
        for knob in ("threshold", "upsell_rate", "ad_honesty"):
            _unit(f"{key}.{knob}", p[knob])
        for knob in ("screening_noise", "screening_hours", "diagnosis_hours", "upsell_share"):
            _positive(f"{key}.{knob}", p[knob], strict=False)
        for crit, weight in p.criteria.items():
            _check(
                crit in CRITERIA,
                f"{key}.criteria.{crit}",
                weight,
                f"unknown criterion; allowed: {', '.join(CRITERIA)}",
            )
            _positive(f"{key}.criteria.{crit}", weight, strict=False)
        _check(
            sum(p.criteria.values()) > 0,
            f"{key}.criteria",
            dict(p.criteria),
            "weights must not all be 0",
        )


def validate(cfg: DictConfig) -> None:
    """Check every value of a composed config; raise `ConfigError` on the first bad one."""
    _check(cfg.engine in ENGINES, "engine", cfg.engine, f"allowed: {', '.join(ENGINES)}")
    _check(cfg.seed >= 0, "seed", cfg.seed, "must be an integer >= 0")
    _check(cfg.steps >= 1, "steps", cfg.steps, "must be an integer >= 1")
    _validate_policies(cfg.policies)
    _validate_clients(cfg.clients)
    _validate_market(cfg.market, cfg.policies)
