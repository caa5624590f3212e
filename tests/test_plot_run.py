"""clientsim-plot on one run: what `clientsim` wrote, drawn into RUN_DIR/figures/."""

import pandas as pd
import pytest

from sim.analysis.run_figures import FIGURES, REASONS, is_run_dir
from sim.cli.clientsim import main as clientsim_main
from sim.cli.plot import main as plot_main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plot-run") / "run"
    assert clientsim_main([f"output_dir={out}", "market.n_clients=300", "steps=26"]) == 0
    return out


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_run_directory_is_told_from_a_sweep(run_dir, tmp_path):
    assert is_run_dir(run_dir)
    assert not is_run_dir(tmp_path)


def test_plot_draws_a_runs_figures_and_tables(run_dir, capsys):
    assert plot_main([str(run_dir), "--format", "png", "svg"]) == 0
    written = capsys.readouterr().out.split()
    expected = {f"{n}.{f}" for n in FIGURES for f in ("png", "svg")} | {"refusals.csv",
                                                                        "segments.csv"}  # fmt: skip
    assert {p.rsplit("/", 1)[-1] for p in written} == expected
    for name in expected:
        path = run_dir / "figures" / name
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.stat().st_size < 300_000


def test_the_tables_add_up_to_the_runs_own(run_dir):
    plot_main([str(run_dir), "--format", "png"])
    steps = pd.read_parquet(run_dir / "steps.parquet")
    clients = pd.read_parquet(run_dir / "clients.parquet")
    refusals = pd.read_csv(run_dir / "figures" / "refusals.csv", index_col="policy")
    steps["policy"] = steps["policy"].astype(str)
    by_policy = steps.groupby("policy")[["accepted", *REASONS]].sum().rename(columns=REASONS)
    pd.testing.assert_frame_equal(refusals.sort_index(), by_policy.sort_index(),
                                  check_names=False, check_dtype=False)  # fmt: skip
    segments = pd.read_csv(run_dir / "figures" / "segments.csv", index_col="segment")
    assert segments["clients"].sum() == len(clients)
    clients["served"] = clients["jobs"] > 0
    served = clients.astype({"segment": str}).groupby("segment")["served"].mean()
    pd.testing.assert_series_equal(segments["served_share"].sort_index(), served.sort_index(),
                                   check_names=False)  # fmt: skip


def test_a_users_file_in_figures_is_refused_and_kept(run_dir, capsys):
    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    mine = figures / "whale.pdf"
    mine.write_text("my own figure")
    assert plot_main([str(run_dir), "--format", "pdf"]) == 2
    assert "whale.pdf" in _one_line(capsys)
    assert mine.read_text() == "my own figure"
    mine.unlink()


def test_a_directory_with_neither_a_run_nor_a_sweep_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a run")
    assert plot_main([str(tmp_path)]) == 2
    assert "neither a sweep" in _one_line(capsys)


def test_a_run_with_pairs_false_writes_no_pairs_parquet_and_is_still_drawn(tmp_path):
    """pairs=false leaves pairs.parquet out; every other file is the same byte for byte."""
    small = ["market.n_clients=300", "steps=8", "progress=false"]
    assert clientsim_main([f"output_dir={tmp_path / 'with'}", *small]) == 0
    assert clientsim_main([f"output_dir={tmp_path / 'without'}", *small, "pairs=false"]) == 0
    without = tmp_path / "without"
    assert (tmp_path / "with" / "pairs.parquet").is_file()
    assert not (without / "pairs.parquet").exists()
    assert "pairs.parquet" not in (without / ".clientsim.json").read_text()
    for name in ("steps.parquet", "market.parquet", "clients.parquet", "summary.json"):
        assert (without / name).read_bytes() == (tmp_path / "with" / name).read_bytes(), name
    assert plot_main([str(without), "--format", "png"]) == 0
    assert (without / "figures" / "whale.png").stat().st_size > 0
