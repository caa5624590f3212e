"""Docking to Bass diffusion (sim.validation.docking): real runs of the reduced model against Bass.

Every tolerance is derived from the market's size N: the exact one-step map is binomial, so
its residuals have known mean and variance; the share's variance and the bias of its mean
come from the linear-noise approximation of the map; the gap between the discrete map and
Bass's closed form is computed. K is the number of standard deviations allowed.
"""

import numpy as np
import pandas as pd
import pytest

from sim.config.checks import validate
from sim.config.compose import compose
from sim.runs.run import simulate
from sim.validation import docking

K = 4.0  # standard deviations: P(|Z| > 4) = 6e-5 for each (nearly) independent check
#: (p, q) per year, clients, weeks: the published mean, fast diffusion, strong imitation.
#: Each runs until about 95% have adopted (the complete graph's cost grows with N^2 x weeks).
PAIRS = {
    "published": (docking.PUBLISHED_P, docking.PUBLISHED_Q, 500, 728),
    "fast": (0.2, 1.0, 600, 208),
    "imitation": (0.01, 1.5, 600, 286),
}


def run(overrides: list[str]):
    """One real run of the composed, validated config: (config, model, recorder)."""
    cfg = compose(overrides)
    validate(cfg)
    model, recorder = simulate(cfg)
    return cfg, model, recorder


@pytest.fixture(scope="module", params=list(PAIRS))
def bass_run(request):
    p, q, n, weeks = PAIRS[request.param]
    cfg, _, recorder = run(docking.docking_overrides(p, q, n, weeks))
    return cfg, recorder.market_frame(), recorder.steps_frame()


@pytest.mark.parametrize("name", list(PAIRS))
def test_the_preset_reads_back_the_bass_parameters_it_was_given(name):
    p, q, n, weeks = PAIRS[name]
    cfg = compose(docking.docking_overrides(p, q, n, weeks))
    assert docking.bass_parameters(cfg) == pytest.approx((p, q), rel=1e-5)
    assert cfg.market.network.kind == "complete" and cfg.engine == "vectorized"


def test_every_adopter_tells_every_week_and_nobody_leaves(bass_run):
    _, market, steps = bass_run
    # a week without a need has probability e^-10 per client: a handful of client-weeks
    missing = (market["adopters"] - market["completed"]).to_numpy()
    assert missing.min() >= 0 and missing.sum() <= 10
    assert (steps["acquisitions"].cumsum().to_numpy() == market["adopters"].to_numpy()).all()
    assert (market["active_businesses"] == 1).all()


def test_new_adopters_follow_the_exact_one_step_map(bass_run):
    """Given last week, this week's adoptions are binomial: both statistics are N(0, 1)."""
    cfg, market, _ = bass_run
    r = docking.one_step_residuals(market, cfg.market.n_clients, *docking.bass_parameters(cfg))
    total, squares = docking.one_step_z(r)
    assert abs(total) < K and abs(squares) < K


def test_the_one_step_check_rejects_a_map_with_too_little_imitation(bass_run):
    """The check has power: the same run against a q 40% lower fails it."""
    cfg, market, _ = bass_run
    p, q = docking.bass_parameters(cfg)
    r = docking.one_step_residuals(market, cfg.market.n_clients, p, 0.6 * q)
    assert docking.one_step_z(r)[0] > K


def test_adopters_follow_the_bass_closed_form_within_the_noise_of_n_clients(bass_run):
    cfg, market, _ = bass_run
    p, q = docking.bass_parameters(cfg)
    n = cfg.market.n_clients
    ref = docking.deterministic_map(p, q, n, cfg.steps)
    share = market["adopters"].to_numpy() / n
    discretisation = np.abs(ref["discrete"] - ref["closed_form"])
    assert discretisation.max() < docking.lag_estimate(p, q)  # word of mouth's lag: O(1/52)
    noise = K * np.sqrt(ref["variance"]) + np.abs(ref["bias"])
    assert (np.abs(share - ref["discrete"]) <= noise).all()
    assert (np.abs(share - ref["closed_form"]) <= noise + discretisation).all()
    assert share[-1] > 0.9  # the run covers the whole curve


def test_the_agents_engine_adopts_exactly_as_the_vectorized_engine():
    overrides = docking.docking_overrides(0.5, 3.0, 40, 60)
    runs = [run([*overrides, f"engine={engine}"])[2].market_frame() for engine in
            ("vectorized", "agents")]  # fmt: skip
    assert runs[0]["adopters"].iloc[-1] > 20  # diffusion happened
    assert runs[0]["adopters"].tolist() == runs[1]["adopters"].tolist()


def test_a_sparse_network_adopts_more_slowly_than_complete_mixing():
    """Fibich & Gibori (2010): on a ring the same word of mouth spreads more slowly.

    Each adopter tells each of its k = 2 ring neighbours at q / 2 a year, as a client of
    the complete graph hears at q x (share of adopters): a client whose neighbours have all
    adopted is told at rate q in both. Compared when Bass's closed form reaches one half,
    where the ring's one-dimensional solution f = 1 - exp(-(p + q) t + q (1 - e^{-pt}) / p)
    is near a quarter. The margin is the predicted gap less K standard deviations of the
    difference of the means (complete: linear noise; ring: at most binomial x 2 for the
    neighbours' correlation), so the test fails only if most of the slow-down is missing.
    """
    p, q, n, seeds = 0.05, 1.5, 600, 3
    ref = docking.deterministic_map(p, q, n, 400)
    week = int(np.argmax(ref["closed_form"].to_numpy() >= 0.5))
    t = docking.week_end_years(week)
    ring_share = 1 - np.exp(-(p + q) * t + q * -np.expm1(-p * t) / p)
    ring = [
        "market/network=watts_strogatz", "market.network.params.k=2",
        "market.network.params.p=0.0", "market.network.homophily=0.0",
        f"clients.wom.p_positive={docking.weekly(q / 2)!r}",
    ]  # fmt: skip
    base = docking.docking_overrides(p, q, n, week + 1)
    shares = {}
    for name, extra in (("complete", []), ("ring", ring)):
        shares[name] = np.mean([
            run([*base, *extra, f"seed={seed}"])[2].market_frame()["adopters"].iloc[-1] / n
            for seed in range(seeds)
        ])  # fmt: skip
    sd = np.sqrt((ref["variance"][week] + 2 * ring_share * (1 - ring_share) / n) / seeds)
    margin = (ref["closed_form"][week] - ring_share) - K * sd
    assert margin > 0.05  # the prediction is far outside the noise
    assert shares["ring"] < shares["complete"] - margin


def test_clientsim_plot_draws_the_docking_figure_of_the_bass_experiment(tmp_path):
    from sim.cli.experiment import main as experiment
    from sim.cli.plot import main as plot

    sweep = tmp_path / "bass"
    experiment(["run", "bass", "--smoke", "--launcher", "basic", "--dir", str(sweep)])
    assert plot([str(sweep), "--format", "png"]) == 0
    png = sweep / "figures" / "bass.png"
    assert png.exists() and png.stat().st_size < 300_000
    table = pd.read_csv(sweep / "figures" / "bass.csv")
    assert len(table) == 26 and (table["seeds"] == 2).all()
    assert (table["low"] <= table["mean"]).all() and (table["mean"] <= table["high"]).all()
    assert table["closed_form"].is_monotonic_increasing
