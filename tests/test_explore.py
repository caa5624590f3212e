import json
import math

import numpy as np
import pandas as pd
import pytest

from sim.cli.explore import main
from sim.explore import boxes as bx
from sim.explore import files
from sim.explore import space as sp
from sim.explore.figure import map_figure, probability_grid
from sim.explore.map import explore
from sim.validation import sensitivity as sa
from sim.validation.plausible import load_plausible, write_plausible

SMOKE = ["--smoke", "--jobs", "1"]
TINY = {"clients": 300, "weeks": 13, "jobs": 1}
FILES = ("samples.parquet", "points.parquet", "boxes.csv", "manifest.json", "summary.md",
         "map.png")  # fmt: skip
CONDITIONS = [text.partition("=")[0] for text in sp.DEFAULT_SPACE]


@pytest.fixture(scope="module")
def base():
    return sa.base_config(["progress=false"], clients=300, weeks=13)


@pytest.fixture(scope="module")
def smoke_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "map"
    assert main([*SMOKE, "--out", str(out)]) == 0
    return out


# --- the space ---------------------------------------------------------------------------


def test_the_difficult_share_keeps_segment_shares_summing_to_one(base):
    dims = sp.parse_space(sp.DEFAULT_SPACE, base)
    cfg = sp.configure(base, dims, {"market.demand_supply_ratio": 1.0,
                                    "clients.segments.difficult.share": 0.3,
                                    "clients.wom.p_positive": 0.2,
                                    "market.policy_mix.fit_filter": 3})  # fmt: skip
    shares = [s.share for s in cfg.clients.segments.values()]
    assert math.isclose(sum(shares), 1.0) and cfg.clients.segments.difficult.share == 0.3
    assert (cfg.market.policy_mix.fit_filter, cfg.market.policy_mix.serve_all) == (3, 7)


def test_an_integer_key_gets_every_integer_equally_often(base):
    dims = sp.parse_space(["market.policy_mix.fit_filter=1:9"], base)
    counts = sp.sample(dims, 900, seed=0)["market.policy_mix.fit_filter"].value_counts()
    assert sorted(counts.index) == list(range(1, 10)) and set(counts) == {100}


@pytest.mark.slow
def test_the_same_sample_seed_gives_the_same_samples_table_another_seed_another():
    one, two = (explore(None, samples=3, seeds=1, sample_seed=5, **TINY) for _ in range(2))
    pd.testing.assert_frame_equal(one.samples, two.samples)
    pd.testing.assert_frame_equal(one.points, two.points)
    base = sa.base_config([], clients=300, weeks=13)
    dims = sp.parse_space(sp.DEFAULT_SPACE, base)
    assert not sp.sample(dims, 3, 5).equals(sp.sample(dims, 3, 6))
    pd.testing.assert_frame_equal(one.points[CONDITIONS], sp.sample(dims, 3, 5))


def test_a_plausible_set_gives_each_sample_a_drawn_vector_and_the_space_wins(tmp_path):
    table = pd.DataFrame({"vector": [0, 1], "clients.wom.p_positive": [0.11, 0.12],
                          "market.service.difficulty_hours": [0.7, 2.5],
                          "distance": [0.0, 0.0], "weight": [0.5, 0.5]})  # fmt: skip
    meta = {
        "method": "test",
        "parameters": {
            "clients.wom.p_positive": [0.1, 0.4],
            "market.service.difficulty_hours": [0.5, 3.0],
        },
    }
    write_plausible(table, meta, tmp_path / "set")
    found = explore(None, samples=4, seeds=1, plausible=load_plausible(tmp_path / "set"), **TINY)
    assert found.parameters == ["market.service.difficulty_hours"]
    for outcome, count in (
        ("pays", found.points["pays"].sum()),
        ("loses", (~found.points["pays"]).sum()),
    ):
        boxes = found.boxes[found.boxes["outcome"] == outcome]
        assert boxes.empty == (count == 0) and (boxes["hits"] <= count).all()
    assert set(found.points["market.service.difficulty_hours"]) == {0.7, 2.5}
    assert found.points["clients.wom.p_positive"].between(0.1, 0.4).all()


# --- PRIM --------------------------------------------------------------------------------


def test_prim_recovers_a_known_box_from_uniform_points():
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.random((300, 3)), columns=["x1", "x2", "x3"])
    y = ((x["x1"] > 0.6) & (x["x2"] < 0.3)).to_numpy()
    found = bx.find_boxes(x, y, spans={k: (0.0, 1.0) for k in x})
    first = found[found["box"] == 1].set_index("dimension")
    assert set(first.index) == {"x1", "x2"} and first["dense"].all()
    assert first.loc["x1", "low"] == pytest.approx(0.6, abs=0.08)
    assert first.loc["x1", "high"] == 1.0 and first.loc["x2", "low"] == 0.0
    assert first.loc["x2", "high"] == pytest.approx(0.3, abs=0.1)
    assert first["density"].iloc[0] >= bx.THRESHOLD and first["coverage"].iloc[0] > 0.8


def test_prim_reports_an_integer_dimension_in_whole_numbers_and_both_outcomes():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.random(300), "k": rng.integers(1, 10, 300)})
    pays = ((x["k"] >= 6) & (x["a"] < 0.5)).to_numpy()
    found = bx.outcome_boxes(x, pays, spans={"a": (0.0, 1.0), "k": (1, 9)})
    first = found[(found["outcome"] == "pays") & (found["box"] == 1)].set_index("dimension")
    assert (first.loc["k", "low"], first.loc["k", "high"]) == (6.0, 9.0)
    assert set(found["outcome"]) == {"pays", "loses"}
    assert list(found.dtypes.astype(str)) == list(bx.BOX_COLUMNS.values())


def test_prim_reports_the_whole_space_when_all_pay_and_no_box_when_none():
    x = pd.DataFrame({"a": np.linspace(0, 1, 50), "k": np.arange(50) % 9 + 1})
    whole = bx.find_boxes(x, np.ones(50, bool))
    assert whole["dimension"].tolist() == [bx.WHOLE] and whole["density"].iloc[0] == 1.0
    assert bx.find_boxes(x, np.zeros(50, bool)).empty


# --- the command -------------------------------------------------------------------------


@pytest.mark.slow
def test_smoke_writes_every_file_with_the_documented_columns(smoke_out):
    assert all((smoke_out / name).is_file() for name in FILES)
    samples = pd.read_parquet(smoke_out / "samples.parquet")
    assert list(samples) == ["sample", "seed", *CONDITIONS, "gap"]
    assert samples.dtypes.astype(str).tolist() == ["int64", "int64", "float64", "float64",
                                                   "float64", "int64", "float64"]  # fmt: skip
    assert len(samples) == 12 * 2 and samples["seed"].tolist()[:4] == [0, 1, 0, 1]
    points = pd.read_parquet(smoke_out / "points.parquet")
    assert list(points) == ["sample", *CONDITIONS, "seeds", "gap_mean", "gap_sd",
                            "share_positive", "pays"]  # fmt: skip
    assert points["pays"].dtype == bool and len(points) == 12
    mean = samples.groupby("sample")["gap"].mean().to_numpy()
    assert np.allclose(points["gap_mean"], mean) and (points["pays"] == (mean > 0)).all()
    assert list(pd.read_csv(smoke_out / "boxes.csv")) == list(bx.BOX_COLUMNS)
    manifest = json.loads((smoke_out / "manifest.json").read_text())
    assert manifest["command"].startswith("clientsim-explore --smoke")
    assert manifest["settings"]["clients"] == 300 and "ema_workbench" in manifest["versions"]
    assert "Where filtering pays" in (smoke_out / "summary.md").read_text()
    assert (smoke_out / "map.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_the_written_map_reads_back_and_gives_the_same_summary(smoke_out):
    found = files.read(smoke_out)
    assert found.conditions == CONDITIONS and found.parameters == []
    assert files.markdown(found) == (smoke_out / "summary.md").read_text()
    pays = found.points["pays"].mean()
    assert f"In {pays:.0%} of the sampled markets" in files.markdown(found)


@pytest.mark.parametrize(
    "argv, says",
    [
        (
            ["--space", "market.no_such_key=0:1", "market.price=50:100"],
            "market.no_such_key is not a number",
        ),
        (
            ["--space", "market.price=50:100", "market.demand_supply_ratio=2:1"],
            "the low end must be below",
        ),
        (
            ["--space", "market.price=50:100", "market.demand_supply_ratio=0.5"],
            "expected KEY=LOW:HIGH",
        ),
        (["--space", "market.price=50:100", "market.demand_supply_ratio=0:2"], "invalid config"),
        (["--axes", "market.demand_supply_ratio", "market.price"], "--axes market.price"),
        (["--threshold", "1.5"], "--threshold"),
    ],
)
def test_wrong_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, says):
    out = tmp_path / "out"
    assert main([*SMOKE, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not out.exists() or not any(out.iterdir())


def test_a_foreign_file_in_out_is_refused_and_left_untouched(tmp_path, capsys):
    (tmp_path / "summary.md").write_text("mine")
    assert main([*SMOKE, "--out", str(tmp_path)]) == 2
    assert "would replace" in capsys.readouterr().err
    assert (tmp_path / "summary.md").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]


def test_the_figure_draws_the_share_that_pays_and_the_boxes_as_svg(tmp_path):
    points = pd.DataFrame({"d": [0.6, 0.7, 1.5, 1.9], "k": [1, 2, 8, 9],
                           "pays": [False, False, True, True]})  # fmt: skip
    x = points[["d", "k"]]
    boxes = bx.outcome_boxes(x, points["pays"].to_numpy(), spans={"d": (0.5, 2.0), "k": (1, 9)})
    path = tmp_path / "map.svg"
    map_figure(points, boxes, ("d", "k"), path, title="a test map", spans={"d": (0.5, 2.0)})
    text = path.read_text()
    assert text.startswith("<?xml") and "a test map" in text and "pays box 1" in text
    _, _, share = probability_grid(points, "d", "k", {"d": (0.5, 2.0), "k": (1, 9)})
    assert share.shape == (2, 9) and np.nanmax(share) == 1.0 and np.nanmin(share) == 0.0


def test_results_md_gets_the_maps_section_and_figure(smoke_out, tmp_path):
    from sim.cli.report import map_section

    text = map_section(smoke_out, figures=tmp_path / "figures")
    assert text.startswith("## Where does filtering pay? A map over market.demand_supply_ratio")
    assert "Where filtering pays:" in text and f"figures/{smoke_out.name}.png" in text
    assert (tmp_path / "figures" / f"{smoke_out.name}.png").stat().st_size > 0
    assert map_section(tmp_path / "no-map", figures=tmp_path / "figures") == ""
