"""Benchmark a sweep: wall time, runs per minute and overhead of the experiments' sweep path.

Runs ``--runs`` default runs (5,000 clients x 260 weeks unless told otherwise) as one
experiment (`hard_sell`: one design point, the default market), seeds chunked into jobs,
with joblib on ``--jobs`` workers; with ``--baseline`` also as a plain process-per-run
Hydra sweep (`clientsim -m seed=range(0,N)`, every job a whole run writing all its files).

    overhead = wall time x workers / sum of the runs' in-process stepping time

(1.0 would be a sweep that does nothing but step models). Stepping time is what each job
records per run (`jobs/*.json`: the time inside `model.step()`, not building the model nor
recording); the baseline's runs are the same seeds of the same config, so they are charged
the same stepping time.

    python benchmarks/sweep.py                     # 200 default runs, joblib on 2 cores
    python benchmarks/sweep.py --runs 20 --baseline
    python benchmarks/sweep.py --runs 40 --clients 1000 --weeks 52 --json out.json
    python benchmarks/sweep.py --against ../old   # the same sweep with another checkout too

`--against DIR` runs the same sweep with the checkout in DIR (another commit, with its own
`.venv`) right after, and prints both rows and the projected wall time of 1,000 default runs
(the target: 2 minutes on 2 cores), so the two are measured on the same machine state.
The numpy Boltzmann anchor (`benchmarks/anchors.py`) is measured before and after the sweeps
and printed beside them (the machine's speed drifts by up to a quarter within minutes here);
`--json` holds both: ``{"anchors": [...], "sweeps": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anchors  # benchmarks/anchors.py, beside this script

ROOT = Path(__file__).resolve().parent.parent


def sized(args: argparse.Namespace) -> list[str]:
    """The overrides that set the market size and horizon."""
    return [f"market.n_clients={args.clients}", f"steps={args.weeks}", "progress=false"]


def timed(command: list[str], cwd: Path) -> float:
    """Run a command to the end (output discarded); return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def chunked(args: argparse.Namespace, work: Path, checkout: Path | None = None) -> dict:
    """The experiments' sweep path: `clientsim-experiment run hard_sell`.

    `checkout`: run it with the code (and `.venv`) of another checkout.
    """
    python = sys.executable if checkout is None else str(checkout / ".venv" / "bin" / "python")
    sweep_dir = work / ("chunked" if checkout is None else "against")
    code = "from sim.cli.experiment import main; raise SystemExit(main())"
    command = [python, "-c", code, "run",
               "hard_sell", "--dir", str(sweep_dir), "--jobs", str(args.jobs),
               f"experiment.seeds={args.runs}", f"experiment.chunk_size={args.chunk_size}",
               *sized(args)]  # fmt: skip
    wall = timed(command, work if checkout is None else checkout)
    records = [json.loads(p.read_text()) for p in (sweep_dir / "jobs").glob("*.json")]
    stepping = sum(s for r in records for s in r["seconds"].values())
    mode = f"chunked ({args.chunk_size} seeds a job)" + ("" if checkout is None else ", old")
    return {"mode": mode, "runs": args.runs, "wall_s": wall, "stepping_s": stepping}


def per_run(args: argparse.Namespace, work: Path, stepping: float) -> dict:
    """A plain Hydra sweep, one job a run: `clientsim -m seed=range(0,N)`."""
    command = [sys.executable, "-m", "sim", "-m", f"seed=range(0,{args.runs})",
               "hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}",
               f"hydra.sweep.dir={work / 'per_run'}", *sized(args)]  # fmt: skip
    wall = timed(command, work)
    return {"mode": "process per run (plain -m)", "runs": args.runs, "wall_s": wall,
            "stepping_s": stepping}  # fmt: skip


def table(rows: list[dict], jobs: int) -> str:
    """The measured rows as a table."""
    lines = [f"{'mode':<35} {'runs':>5} {'wall s':>8} {'runs/min':>9} {'stepping s':>11} "
             f"{'overhead':>9} {'1,000 runs min':>15}"]  # fmt: skip
    for r in rows:
        r["runs_per_min"] = r["runs"] / r["wall_s"] * 60
        r["overhead"] = r["wall_s"] * jobs / r["stepping_s"]
        r["minutes_per_1000"] = 1000 / r["runs_per_min"]
        lines.append(f"{r['mode']:<35} {r['runs']:>5} {r['wall_s']:>8.1f} "
                     f"{r['runs_per_min']:>9.1f} {r['stepping_s']:>11.1f} "
                     f"{r['overhead']:>9.2f} {r['minutes_per_1000']:>15.1f}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """Measure and print the table (and write --json)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--chunk-size", type=int, default=10)
    p.add_argument("--clients", type=int, default=5000)
    p.add_argument("--weeks", type=int, default=260)
    p.add_argument("--baseline", action="store_true", help="also a process-per-run sweep")
    p.add_argument("--against", type=Path, metavar="DIR",
                   help="also run the sweep with the checkout in DIR (its own .venv)")  # fmt: skip
    p.add_argument("--json", help="write the rows to this file")
    args = p.parse_args()
    # the machine's speed, before and after (it drifts by a quarter within minutes here)
    numpy = anchors.DEFAULTS[0]
    speed = [anchors.in_subprocess(*numpy, repeat=2)]
    with tempfile.TemporaryDirectory(prefix="clientsim-bench-") as tmp:
        work = Path(tmp)
        rows = [chunked(args, work)]
        if args.baseline:
            rows.append(per_run(args, work, rows[0]["stepping_s"]))
        if args.against:
            rows.append(chunked(args, work, args.against.resolve()))
    speed.append(anchors.in_subprocess(*numpy, repeat=2))
    print(f"{args.runs} runs of {args.clients:,} clients x {args.weeks} weeks, joblib on "
          f"{args.jobs} workers ({os.cpu_count()} cores)")  # fmt: skip
    for when, anchor in zip(("before", "after"), speed, strict=True):
        print(f"{anchors.line(anchor)} ({when} the sweeps)")
    print(table(rows, args.jobs))
    print("(1,000 runs min: the wall time of 1,000 such runs at the measured rate; "
          "target 2 minutes for default runs on 2 cores)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"anchors": speed, "sweeps": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
