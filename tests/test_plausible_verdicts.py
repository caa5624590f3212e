"""Every headline verdict as a probability over the plausible set (sim.explore.verdicts)."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from sim.analysis.report import SWEEP_NAME, write_results
from sim.cli.experiment import main as experiment_main
from sim.cli.report import main as report_main
from sim.errors import UserError
from sim.explore import verdict_text, verdicts
from sim.validation.plausible import load_plausible, write_plausible

#: Three calibrated parameters, in their calibration ranges (sim/validation/targets.yaml).
PARAMETERS = {
    "clients.wom.p_positive": [0.2, 0.4],
    "clients.satisfaction.baseline": [0.8, 0.98],
    "clients.reviews.floor": [0.0, 0.15],
}
TINY = ["market.n_clients=300", "steps=20"]


def tiny_set(folder, rows: int = 6):
    """A hand-made plausible set of `rows` vectors, equal weights, inside every range."""
    rng = np.random.default_rng(5)
    table = pd.DataFrame({"vector": np.arange(rows)})
    for key, (low, high) in PARAMETERS.items():
        table[key] = rng.uniform(low, high, rows)
    table["distance"] = 0.0
    table["weight"] = 1 / rows
    meta = {"method": "hand-made for a test", "parameters": PARAMETERS, "targets": {},
            "settings": {}, "command": "tests/test_plausible_verdicts.py"}  # fmt: skip
    write_plausible(table, meta, folder)
    return load_plausible(folder)


def gap_table(holds: list[bool], values: list[float], **columns) -> pd.DataFrame:
    """A per-vector table of one claim's own row, as `vector_gaps` returns it."""
    n = len(holds)
    return pd.DataFrame({
        "vector": range(n), **columns, "claim": "a − b positive", "metric": "profit_horizon",
        "where": "", "point": verdicts.EVERY_POINT, "statistic": "mean gap", "value": values,
        "holds": holds, "verdict": ["supported"] * n, "seeds": 4,
    })  # fmt: skip


@pytest.mark.parametrize(
    ("holds", "share", "low", "high"),
    [
        # k = 0 of 4: [0, 1 − 0.025^(1/4)]; k = 4 of 4: [0.025^(1/4), 1] (Clopper–Pearson)
        ([False] * 4, 0.0, 0.0, 1 - 0.025**0.25),
        ([True] * 4, 1.0, 0.025**0.25, 1.0),
        # k = 1 of 2: [1 − sqrt(0.975), sqrt(0.975)]
        ([True, False], 0.5, 1 - 0.975**0.5, 0.975**0.5),
    ],
)
def test_share_and_clopper_pearson_interval_of_a_hand_made_table(holds, share, low, high):
    table = gap_table(holds, [1.0] * len(holds), **{"clients.reviews.floor": 0.1})
    (row,) = verdicts.shares(table).to_dict("records")
    assert row["holds"] == sum(holds) and row["vectors"] == len(holds)
    assert row["share"] == share
    assert row["low"] == pytest.approx(low, abs=1e-9)
    assert row["high"] == pytest.approx(high, abs=1e-9)


def test_the_parameter_whose_rank_follows_the_gap_is_named_most_sensitive():
    a = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    b = [0.5, 0.1, 0.6, 0.2, 0.4, 0.3]
    gaps = [-3.0, -1.0, 2.0, 2.5, 7.0, 9.0]  # monotone in a, not in b
    table = gap_table([g > 0 for g in gaps], gaps, a=a, b=b)
    (row,) = verdicts.sensitivity(table, ["a", "b"]).to_dict("records")
    assert row["sensitive"].startswith("a (rho +1.00); b (rho ")
    # too few vectors for a rank correlation: none named
    assert verdicts.sensitivity(table.head(4), ["a", "b"])["sensitive"].tolist() == [""]


def hand_runs(gaps: dict[tuple, float], x: str = "market/policy_mix") -> pd.DataFrame:
    """A runs table of two arms at (value of x, seed): fit_filter's profit the gap, serve_all 0."""
    values = list(dict.fromkeys(value for value, _ in gaps))
    rows = []
    for (value, seed), gap in gaps.items():
        for policy, profit in (("fit_filter", gap), ("serve_all", 0.0)):
            rows.append({"point": values.index(value), "seed": seed, "policy": policy,
                         "status": "ok", x: value, "profit_horizon": profit})  # fmt: skip
    return pd.DataFrame(rows)


EXPERIMENT = {"compare": {"on": "policy", "a": "fit_filter", "b": "serve_all"},
              "x": "market/policy_mix",
              "expect": [{"metric": "profit_horizon", "sign": "positive"}]}  # fmt: skip


def test_a_sign_claim_holds_in_a_vector_only_where_every_points_seed_mean_is_on_its_side():
    # all_four: seeds +3 and −1 (mean +1: holds); half_half: +1 and −2 (mean −0.5: does not)
    runs = hand_runs({("all_four", 0): 3, ("all_four", 1): -1,
                      ("half_half", 0): 1, ("half_half", 1): -2})  # fmt: skip
    rows = {r["point"]: r for r in verdicts.claim_rows(runs, EXPERIMENT)}
    assert rows["market/policy_mix=all_four"]["value"] == 1.0
    assert rows["market/policy_mix=all_four"]["holds"]
    assert not rows["market/policy_mix=half_half"]["holds"]
    assert not rows[verdicts.EVERY_POINT]["holds"]  # the claim asks for every point
    assert rows[verdicts.EVERY_POINT]["verdict"] == "inconclusive"  # its own, on 2 seeds


def test_a_trend_claim_holds_where_the_mean_slope_over_seeds_has_its_sign():
    x = "market.demand_supply_ratio"
    runs = hand_runs({(1.0, 0): 1.0, (2.0, 0): 3.0, (1.0, 1): 2.0, (2.0, 1): 1.0}, x)
    claims = [
        {"metric": "profit_horizon", "trend": trend} for trend in ("increasing", "decreasing")
    ]
    exp = {**EXPERIMENT, "x": x, "expect": claims}
    up, down = verdicts.claim_rows(runs, exp)
    assert up["value"] == pytest.approx(0.5)  # slopes +2 (seed 0) and −1 (seed 1): mean +0.5
    assert up["holds"] and not down["holds"]


def test_a_factorial_without_claims_gives_each_instruments_main_effect_on_the_gap():
    threshold, diagnosis = "policies.fit_filter.threshold", "policies.fit_filter.diagnosis"
    rows = []
    for point, (t, d) in enumerate([(0.55, True), (0.55, False), (0.0, True), (0.0, False)]):
        for seed in (0, 1):
            gap = (4.0 if d else -4.0) + seed  # diagnosis adds 8; the screen adds nothing
            for policy, profit in (("fit_filter", gap), ("serve_all", 0.0)):
                rows.append({"point": point, "seed": seed, "policy": policy, "status": "ok",
                             threshold: t, diagnosis: d, "profit_horizon": profit})  # fmt: skip
    exp = {**EXPERIMENT, "expect": [], "metrics": ["profit_horizon"],
           "factorial": {threshold: 0.55, diagnosis: True}}  # fmt: skip
    found = {r["claim"]: r for r in verdicts.claim_rows(pd.DataFrame(rows), exp)}
    assert found["diagnosis adds to fit_filter − serve_all"]["value"] == 8.0
    assert found["diagnosis adds to fit_filter − serve_all"]["holds"]
    assert found["threshold adds to fit_filter − serve_all"]["value"] == 0.0
    assert not found["threshold adds to fit_filter − serve_all"]["holds"]


def test_the_same_draw_seed_draws_the_same_vectors_and_another_is_refused(tmp_path):
    found = tiny_set(tmp_path / "set")
    assert found.draw(3, seed=7) == found.draw(3, seed=7)
    out = tmp_path / "out"
    verdicts.record_draw(out, found.draw(3, seed=7))
    verdicts.record_draw(out, found.draw(3, seed=7))  # the same: resumed
    with pytest.raises(UserError, match="holds other plausible vectors"):
        verdicts.record_draw(out, found.draw(3, seed=8))


@pytest.mark.slow  # four tiny sweeps: about 10 s on a quiet machine
def test_a_tiny_run_over_two_vectors_writes_the_table_and_the_text(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the verdict at the defaults: results/strategy/make-results
    defaults = tmp_path / "results" / "strategy" / SWEEP_NAME
    tiny = [*TINY, "--launcher", "basic"]
    assert (
        experiment_main(["run", "strategy", "--dir", str(defaults), "experiment.seeds=2", *tiny])
        == 0
    )
    found = tiny_set(tmp_path / "set")
    out = tmp_path / "strategy"
    args = ["plausible", "strategy", "--vectors", "2", "--seeds", "2", "--set",
            str(tmp_path / "set"), "--dir", str(out), *tiny]  # fmt: skip
    capsys.readouterr()
    assert experiment_main(args) == 0
    printed = capsys.readouterr().out
    table = pd.read_parquet(out / verdicts.GAPS)
    # 2 vectors × 2 claims × (the claim + its 3 design points)
    assert len(table) == 16 and set(table["seeds"]) == {2}
    assert verdict_text.parameters_of(table) == list(PARAMETERS)
    drawn = pd.DataFrame(found.draw(2, seed=0))
    for index, vector in table.groupby("vector"):
        assert np.allclose(vector[list(PARAMETERS)].to_numpy(), drawn.iloc[index].to_numpy())
    # the vector's values reached its sweep: its manifest's command sets them
    assert "clients.wom.p_positive=" in (out / "vector-1" / "manifest.json").read_text()
    assert "holds in (share [95% CI])" in printed and "| 2 × 2 |" in printed
    assert printed.count("design points x") == 2  # a sweep per vector
    assert "(2 seeds)" in printed  # a verdict at the defaults beside the shares
    assert (out / verdicts.SHARES).is_file()
    # again: every vector's sweep finished with these overrides, so none is launched
    assert experiment_main(args) == 0
    assert "design points x" not in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(out / verdicts.GAPS), table)
    given = json.loads((out / verdicts.DONE).read_text())["0"]["overrides"]
    assert verdicts.finished(out, 0, given)
    assert not verdicts.finished(out, 0, [*given[:-1], "clients.reviews.floor=0.1"])

    column = verdict_text.findings_column({"strategy": table})
    section = verdict_text.results_section({"strategy": table}, "make results")
    results = write_results(["strategy"], root=tmp_path / "results", out=tmp_path / "RESULTS.md",
                            plausible=column, plausible_section=section)  # fmt: skip
    findings = [line for line in results.read_text().splitlines() if "| profit_horizon |" in line]
    share = r"holds in \d+% \[\d+%, \d+%\] \(2 vectors × 2 seeds\)"
    assert re.search(r"\| (supported|rejected|mixed|inconclusive) \| " + share, findings[0])
    assert "## Over the plausible set" in results.read_text()


@pytest.mark.parametrize(
    ("main", "args", "named"),
    [
        (experiment_main, ["plausible", "strategy", "--vectors", "0"], "--vectors"),
        (experiment_main, ["plausible", "strategy", "--vectors", "many"], "--vectors"),
        (report_main, ["--plausible", "-1"], "--plausible -1"),
        # checked before any experiment runs
        (report_main, ["--run", "--plausible-set", "/no/such/set"], "--plausible 0"),
        (report_main, ["--plausible-size", "instruments=8"], "--plausible-size instruments=8"),
        (report_main, ["--plausible-size", "nosuch=8x2"], "NAME one of strategy"),
    ],
)
def test_a_wrong_number_of_vectors_or_set_exits_2_with_one_line(main, args, named, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err


def test_an_experiment_can_run_at_its_own_size_over_the_plausible_set():
    from sim.cli.report import parser, sizes

    args = parser().parse_args(["--plausible", "20", "--plausible-seeds", "4",
                                "--plausible-size", "instruments=8x2", "market=0x4"])  # fmt: skip
    assert sizes(args) == {"strategy": (20, 4), "mix": (20, 4), "instruments": (8, 2)}
