import numpy as np
import pandas as pd
import pytest
import yaml

from sim.cli import calibrate as calibrate_cli
from sim.errors import UserError
from sim.validation import calibrate
from sim.validation.facts import load_targets


def test_parameter_spec_is_key_low_high():
    assert calibrate.parse_parameter("clients.wom.p_negative=0.05:0.25") == (
        "clients.wom.p_negative", 0.05, 0.25,
    )  # fmt: skip
    assert calibrate.parse_parameter("clients.wom.p_negative=0.05") is None
    assert calibrate.parse_parameter("market/policy_mix=half_half") is None
    with pytest.raises(UserError, match="low end"):
        calibrate.parse_parameter("clients.reviews.floor=0.2:0.1")


def test_latin_hypercube_puts_one_point_in_each_stratum_of_each_parameter():
    space = {"a": (0.0, 1.0), "b": (10.0, 20.0)}
    points = calibrate.latin_hypercube(space, 8, seed=3)
    assert list(points.columns) == ["a", "b"] and len(points) == 8
    for key, (low, high) in space.items():
        strata = np.floor((points[key] - low) / (high - low) * 8).astype(int)
        assert sorted(strata) == list(range(8))


def test_distance_of_a_variant_uses_its_mean_over_seeds():
    values = pd.DataFrame({
        "variant": [0, 0, 1, 1], "seed": [0, 1, 0, 1], "fact": "wom_ratio",
        "value": [1.5, 2.5, 3.0, 3.0],
    })  # fmt: skip
    table = calibrate.distances(values, load_targets()).set_index("variant")
    assert table.loc[0, "value"] == 2.0 and table.loc[0, "distance"] == pytest.approx(0.2)
    assert table.loc[1, "distance"] == 0.0


def test_calibration_runs_end_to_end_and_writes_its_proposal(tmp_path, capsys):
    out = tmp_path / "proposal.yaml"
    size = ["--samples", "2", "--seeds", "1", "--clients", "300", "--weeks", "26", "--jobs", "1"]
    space = ["clients.reviews.floor=0:0.1", "clients.wom.p_negative=0.1:0.2"]
    argv = [*size, "--out", str(out), *space]
    assert calibrate_cli.main(argv) == 0
    proposal = yaml.safe_load(out.read_text())
    assert set(proposal["proposal"]) == {"clients.reviews.floor", "clients.wom.p_negative"}
    assert 0 <= proposal["proposal"]["clients.reviews.floor"] <= 0.1
    assert proposal["distance"]["after"] <= proposal["distance"]["before"]
    calibrated = {name for name, t in load_targets().items() if t.calibrate}
    assert set(proposal["targets"]) == calibrated and len(proposal["samples"]) == 2
    printed = capsys.readouterr().out
    assert "before" in printed and "proposal: clients.reviews.floor=" in printed


@pytest.mark.parametrize(
    "argv",
    [
        ["--samples", "0"],
        ["clients.reviews.floor=0.3:0.1"],
        ["clients.reviews.floor=-1:0.1"],
        ["no.such.key=0:1"],
        ["--weeks", "x"],
    ],
    ids=["no_samples", "reversed_range", "out_of_schema_range", "unknown_key", "not_a_number"],
)
def test_calibrate_command_exits_2_with_one_line_on_bad_input(argv, tmp_path, capsys):
    assert calibrate_cli.main([*argv, "--out", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("clientsim-calibrate: ")
    assert not (tmp_path / "p.yaml").exists()


SMALL = ["--samples", "2", "--seeds", "1", "--clients", "300", "--weeks", "26", "--jobs", "1",
         "clients.reviews.floor=0:0.1"]  # fmt: skip


def test_the_default_out_does_not_replace_a_users_calibration_yaml(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "calibration.yaml").write_text("my own notes\n")
    assert calibrate_cli.main(SMALL) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "calibration.yaml" in err
    assert (tmp_path / "calibration.yaml").read_text() == "my own notes\n"


def test_the_default_out_replaces_the_proposal_clientsim_wrote(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert calibrate_cli.main(SMALL) == 0
    assert calibrate_cli.main(SMALL) == 0
    assert "proposal" in yaml.safe_load((tmp_path / "calibration.yaml").read_text())
