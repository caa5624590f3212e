"""The students' view: the market in the browser (Solara, Mesa's views), `clientsim-app`.

Display code only. The sliders' values become Hydra overrides of the project's config
(`sim.config.compose.compose`), so every default comes from `configs/`; the market is the real
`engine=agents` model (`sim.runs.run.build_model`), recorded by `sim.runs.record.Recorder`.
Every plot is drawn with matplotlib (Altair/vega charts load their JavaScript from a CDN and stay
blank offline). The sidebar is `sim.app.controls` (why not Mesa's `SolaraViz` sliders: there).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections import Counter

import matplotlib as mpl
import mesa
import networkx as nx
import numpy as np
import solara
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mesa import DataCollector
from mesa.visualization import make_plot_component
from mesa.visualization.solara_viz import ComponentsView
from omegaconf import OmegaConf

from sim.app.controls import MarketKnobs, RunControls
from sim.config.checks import validate
from sim.config.compose import compose
from sim.runs.record import Recorder
from sim.runs.run import build_model

logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO

#: Classroom size: a few hundred clients, two fit_filter among eight businesses. Seed 0 (walked
#: in docs/TUTORIAL.md): fit_filter's reputation climbs above serve_all's (4.7 against 4.3
#: stars at week 260) but its profit stays behind for the five years; with six of the eight
#: filtering, serve_all's reputation falls to 3.1 and fit_filter leads from week 217.
CLASSROOM = [
    "engine=agents",
    "market.n_clients=500",
    "market/policy_mix=half_half",
    "market.policy_mix.fit_filter=2",
    "market.policy_mix.serve_all=6",
]
#: The knobs a student moves first: slider name -> (config key, label, min, max, step). Each
#: config default lies on its slider's steps: a slider moves a value off its steps to the
#: nearest step and sends it (word of mouth's 0.22 became 0.20 on a step of 0.05).
KNOBS = {
    "fit_filter": ("market.policy_mix.fit_filter", "fit_filter businesses", 1, 6, 1),
    "serve_all": ("market.policy_mix.serve_all", "serve_all businesses", 1, 8, 1),
    "threshold": ("policies.fit_filter.threshold", "fit_filter screening threshold", 0.0, 1.0,
                  0.05),
    "difficult_share": ("clients.segments.difficult.share", "share of difficult clients", 0.0,
                        0.5, 0.05),
    "demand_supply_ratio": ("market.demand_supply_ratio", "demand / supply", 0.5, 2.0, 0.1),
    "word_of_mouth": ("clients.wom.p_positive", "word of mouth: P(tell a neighbour)", 0.0, 0.5,
                      0.01),
    "seed": ("seed", "seed", 0, 99, 1),
}  # fmt: skip
#: Each policy's colour map: its businesses in shades of it, its lines in its middle shade.
POLICY_SHADES = {"fit_filter": "Blues", "serve_all": "Oranges"}
NO_PROVIDER = "#d0d0d0"
_COMPOSING = threading.Lock()  # Hydra's compose API is a process-wide singleton


def _compose(overrides: list[str]):
    with _COMPOSING:
        cfg = compose(CLASSROOM + overrides)
    validate(cfg)
    return cfg


DEFAULTS = _compose([])


def overrides(knobs: dict[str, float]) -> list[str]:
    """Hydra overrides for the sliders' values (missing knobs keep the config's value).

    Word of mouth sets the chance of telling a good story, and scales the chance of telling a
    bad one in proportion (at the config's value both keep theirs; at 0 nobody talks); the
    difficult clients' share rescales the other segments (keeping their proportions) so
    that the shares still sum to 1.
    """
    lines = [f"{KNOBS[name][0]}={value!r}" for name, value in knobs.items()]
    if "word_of_mouth" in knobs:
        wom = DEFAULTS.clients.wom
        p_negative = round(wom.p_negative * knobs["word_of_mouth"] / wom.p_positive, 6)
        lines.append(f"clients.wom.p_negative={p_negative!r}")
    if "difficult_share" in knobs:  # as experiments/difficult.yaml does, with sim.config.schema's
        segments = DEFAULTS.clients.segments  # `rescale` resolver
        x, x_default = "${clients.segments.difficult.share}", segments.difficult.share
        lines += [
            f"clients.segments.{name}.share='${{rescale:{seg.share},{x},{x_default}}}'"
            for name, seg in segments.items()
            if name != "difficult"
        ]
    return lines


def knob_values(cfg=DEFAULTS) -> dict[str, float]:
    """The knobs' values in `cfg` (the sliders start at the config's values)."""
    return {name: OmegaConf.select(cfg, key) for name, (key, *_) in KNOBS.items()}


def watch_intake(market) -> np.ndarray:
    """Count each business's accepted and declined applicants by client segment.

    Watches the businesses' decisions through the model's hook (`Firms.on_intake`: the
    week's applicants and the decisions on them, after every intake). Returns the live
    counts, shape (businesses, segments, 2): accepted, declined.
    """
    segment = market.population["segment"]
    n_segments = len(market.population.segment_names)
    counts = np.zeros((len(market.businesses), n_segments, 2), dtype=np.int64)

    def count(applicants, intake) -> None:
        decided = np.where(intake.accepted, 0, 1)
        np.add.at(counts, (applicants.business, segment[applicants.ids], decided), 1)

    market.firms.on_intake.append(count)
    return counts


def network_layout(market, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The network's edges (pairs of client ids) and a spring layout of its clients."""
    indptr, indices = market.indptr, market.indices
    graph = nx.Graph()
    graph.add_nodes_from(range(len(indptr) - 1))
    for client in range(len(indptr) - 1):
        graph.add_edges_from((client, int(n)) for n in indices[indptr[client] : indptr[client + 1]])
    layout = nx.spring_layout(graph, seed=seed, iterations=40)
    edges = np.array(graph.edges(), dtype=np.int64).reshape(-1, 2)
    return edges, np.array([layout[i] for i in range(graph.number_of_nodes())])


class ClassroomMarket(mesa.Model):
    """The market the sliders describe, stepped and recorded for the views.

    Every argument is a slider of `KNOBS`; None (the default) keeps the config's value.
    """

    def __init__(
        self,
        fit_filter: int | None = None,
        serve_all: int | None = None,
        threshold: float | None = None,
        difficult_share: float | None = None,
        demand_supply_ratio: float | None = None,
        word_of_mouth: float | None = None,
        seed: int | None = None,
    ) -> None:
        knobs = {k: v for k, v in locals().items() if k in KNOBS and v is not None}
        cfg = _compose(overrides(knobs))
        super().__init__(rng=cfg.seed)
        self.market = build_model(cfg)
        self.recorder = Recorder()
        self.intake = watch_intake(self.market)
        self.cfg = cfg
        self.edges, self.positions = network_layout(self.market, cfg.seed)
        # Mesa's DataCollector feeds Mesa's own plot component (`ReferralView`).
        self.datacollector = DataCollector(
            model_reporters={policy: _referrals_of(policy) for policy in POLICY_SHADES}
        )
        self.datacollector.collect(self)

    def step(self) -> None:
        """One week of the market, then its records."""
        self.market.step()
        self.recorder.collect(self.market)
        self.datacollector.collect(self)

    def policy_series(self, column: str):
        """`column` of steps.parquet per policy and week (mean over the policy's businesses)."""
        steps = self.recorder.steps_frame()
        return steps.pivot_table(index="step", columns="policy", values=column,
                                 aggfunc="mean", observed=True)  # fmt: skip


def _referrals_of(policy: str):
    """A model reporter: `policy`'s referral acquisitions per business so far (NaN if none)."""

    def referrals(model: ClassroomMarket) -> float:
        if not model.recorder.weeks:
            return 0.0
        total = model.policy_series("referral_acquisitions").cumsum()
        return float(total[policy].iloc[-1]) if policy in total else float("nan")

    return referrals


def policy_colour(policy: str, shade: float = 0.7) -> tuple:
    """The colour of `policy` (0 light, 1 dark)."""
    return mpl.colormaps[POLICY_SHADES.get(policy, "Greys")](shade)


def _business_colours(market) -> list:
    """A shade of its policy's colour for each business."""
    shades = []
    for b in market.businesses:
        same = [x for x in market.businesses if x.policy.name == b.policy.name]
        shades.append(
            policy_colour(b.policy.name, 0.45 + 0.45 * same.index(b) / max(len(same) - 1, 1))
        )
    return shades


def settings_caption(model: ClassroomMarket) -> None:
    """The market being shown, in words (sliders take effect on Reset)."""
    cfg, market = model.cfg, model.market
    counts = Counter(b.policy.name for b in market.businesses)  # the market's, not the config's
    mix = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    text = (
        f"<b>Week {market.week}</b> of a market of {cfg.market.n_clients} clients and {mix} "
        f"businesses (fit_filter threshold {cfg.policies.fit_filter.threshold:.2f}); "
        f"{cfg.clients.segments.difficult.share:.0%} difficult clients, demand/supply "
        f"{cfg.market.demand_supply_ratio:.1f}, word of mouth {cfg.clients.wom.p_positive:.2f}, "
        f"seed {cfg.seed}. Press <b>Step</b> or <b>▶</b>; sliders take effect on <b>Reset</b>."
    )
    solara.HTML("p", unsafe_innerHTML=text)  # not Markdown: it fetches KaTeX from a CDN


def NetworkView(model: ClassroomMarket) -> None:
    """The social network: clients coloured by provider, referrals drawn, businesses marked."""
    market, pos = model.market, model.positions
    everyone = np.arange(len(market.population))
    provider = market.read("provider", everyone).astype(int)
    referred_by = market.read("referred_by", everyone)
    colours = _business_colours(market)
    settings_caption(model)
    fig = Figure(figsize=(6, 3.3))
    ax = fig.subplots()
    ax.add_collection(LineCollection(pos[model.edges], colors="#e8e8e8", linewidths=0.4))
    referred = np.flatnonzero(referred_by >= 0)
    pairs = np.stack([pos[referred_by[referred]], pos[referred]], axis=1)
    ax.add_collection(LineCollection(pairs, colors="tab:green", linewidths=1.6))
    face = [colours[p] if p >= 0 else NO_PROVIDER for p in provider]
    ax.scatter(pos[:, 0], pos[:, 1], s=18, c=face, edgecolors="none", zorder=2)
    for b in market.businesses:
        mine = provider == b.index
        where = pos[mine].mean(axis=0) if mine.any() else pos.mean(axis=0)
        ax.scatter(*where, s=260, marker="*" if b.active else "X", c=[colours[b.index]],
                   edgecolors="black", linewidths=1.0, zorder=3)  # fmt: skip
        ax.annotate(f"{b.policy.name[0].upper()}{b.index}", where, fontsize=8, zorder=4,
                    xytext=(6, 6), textcoords="offset points")  # fmt: skip
    ax.set_title(f"Clients by provider (grey: none); {len(referred)} referrals so far (green)",
                 fontsize=9)  # fmt: skip
    ax.set_axis_off()
    ax.autoscale()
    solara.FigureMatplotlib(fig, format="png", bbox_inches="tight")


def ProfitReputationView(model: ClassroomMarket) -> None:
    """Cumulative profit and reputation per policy (mean per business) over the weeks."""
    fig = Figure(figsize=(6, 5))
    profit_ax, reputation_ax = fig.subplots(2, 1, sharex=True)
    if model.recorder.weeks:
        profit = model.policy_series("profit").cumsum()
        reputation = model.policy_series("reputation")
        for policy in profit.columns:
            colour = policy_colour(policy)
            profit_ax.plot(profit.index, profit[policy], label=policy, color=colour)
            reputation_ax.plot(reputation.index, reputation[policy], color=colour)
        profit_ax.legend(loc="upper left")
    profit_ax.axhline(0, color="grey", linewidth=0.6)
    profit_ax.set_ylabel("cumulative profit\nper business")
    reputation_ax.set_ylabel("reputation (stars)")
    reputation_ax.set_xlabel("week")
    reputation_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    solara.FigureMatplotlib(fig, format="png", bbox_inches="tight")


def IntakeView(model: ClassroomMarket) -> None:
    """Applications accepted and declined, by client segment and policy (so far)."""
    market = model.market
    names = market.population.segment_names
    policies = list(dict.fromkeys(b.policy.name for b in market.businesses))
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    width = 0.8 / len(policies)
    x = np.arange(len(names))
    for k, policy in enumerate(policies):
        rows = [b.index for b in market.businesses if b.policy.name == policy]
        accepted, declined = model.intake[rows].sum(axis=0).T
        at = x + (k - (len(policies) - 1) / 2) * width
        colour = policy_colour(policy)
        ax.bar(at, accepted, width, color=colour, label=f"{policy}: accepted")
        ax.bar(at, declined, width, bottom=accepted, color="white", edgecolor=colour,
               hatch="//", label=f"{policy}: declined")  # fmt: skip
    ax.set_xticks(x, names)
    ax.set_ylabel("applications")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Accepted and declined, by client segment", fontsize=10)
    ax.legend(fontsize=8)
    solara.FigureMatplotlib(fig, format="png", bbox_inches="tight")


def _referral_axes(ax) -> None:
    ax.set_ylabel("referral acquisitions\nper business (cumulative)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Referral cascades: new clients who came through word of mouth", fontsize=10)


#: The referral loop, per policy: Mesa's plot component over the model's DataCollector.
ReferralView, _ = make_plot_component(
    {policy: mpl.colors.to_hex(policy_colour(policy)) for policy in POLICY_SHADES},
    post_process=_referral_axes,
)


#: The main area: Mesa's grid of views (each redrawn on Mesa's `force_update`).
VIEWS = [(NetworkView, 0), (ProfitReputationView, 0), (IntakeView, 0), (ReferralView, 0)]
TITLE = "clientsim: serve every client, or choose clients for fit?"


@solara.component
def Page():
    """The page Solara serves: the classroom market, its sliders and buttons, four views."""
    params = solara.use_reactive(solara.use_memo(knob_values, []))
    model = solara.use_reactive(solara.use_memo(ClassroomMarket, []))
    with solara.AppBar():
        solara.AppBarTitle(TITLE)
    with solara.Sidebar(), solara.Column():
        with solara.Card("Run"):
            RunControls(model, ClassroomMarket, params)
        with solara.Card("Market (takes effect on Reset)"):
            MarketKnobs(KNOBS, params)
    ComponentsView(VIEWS, model.value)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `clientsim-app`: serve the page on localhost:8765 (Solara's default).

    Extra arguments go to `solara run` (e.g. `--port 8800`, `--host 0.0.0.0`).
    """
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "false")
    # over plain http on localhost Solara falls back to samesite=lax cookies: nothing to fix
    warnings.filterwarnings("ignore", message="Cookies with samesite=none")
    from solara.__main__ import main as solara_main

    argv = sys.argv[1:] if argv is None else argv
    # no version check: it would advise a Solara whose page is blank offline
    sys.argv = ["solara", "run", "sim.app.view", "--production", "--no-open", "--no-check-version",
                *argv]  # fmt: skip
    solara_main()
