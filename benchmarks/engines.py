"""Benchmark the engines: client-steps per second and peak memory, side by side.

Run as ``python benchmarks/engines.py`` (or ``make bench``). Every measurement runs in a
fresh process, so its peak memory (max RSS) is its own; a speed is the fastest of
``--repeat`` such runs (wall clock, steps only, not the model's construction). Both engines
simulate the same config (the defaults, with `market.n_clients` set) over the same weeks
from the start, then the vectorized engine alone runs the whole default horizon.

    python benchmarks/engines.py                      # 1k, 10k, 100k (+1M vectorized)
    python benchmarks/engines.py --sizes 1000 10000 --weeks 10 --no-million
    python benchmarks/engines.py --full-scale         # 1,000,000 clients x 260 weeks
    python benchmarks/engines.py --profile 100000     # where the vectorized engine's time goes
    python benchmarks/engines.py --targets --against ../old   # speed targets, old beside new

`--targets` measures the vectorized engine at 1,000 to 100,000 clients over the whole
default horizon (260 weeks) and at 1,000,000 clients (memory), fits the cost of a week as
fixed + marginal x clients, and checks the speed and memory targets. `--against DIR` runs
every measurement also with the checkout in DIR (another commit, with its own `.venv`, e.g.
``git worktree add ../old REV && make -C ../old .venv/.installed``), alternating the two so
both see the same machine: speeds are only comparable side by side, in one session.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import anchors  # benchmarks/anchors.py, beside this script

AGENTS_MAX = 100_000  # the agents engine takes minutes per run above this


def measure(engine: str, n_clients: int, weeks: int, replicas: int = 1, accounts: int = 1) -> dict:
    """Build and run one model in this process; time the steps only.

    `replicas` > 1: that many seeds of the config stepped as one model (a batch).
    `accounts` 0: without the pair accounts, as a sweep's runs are built (a checkout from
    before they could be left out keeps them; `"accounts"` in the result says which).
    A tiny model of the same engine steps first, untimed: a process's first week loads the
    kernels from numba's cache (about 0.07 s, 0.3 ms a week of a 260-week run), which the
    start-up line reports; the weeks timed here are the steady state.
    """
    from sim.config.compose import compose
    from sim.model.engines import engine_class

    model_class = engine_class(engine)
    kept = bool(accounts) or "accounts" not in inspect.signature(model_class).parameters
    options = {} if kept else {"accounts": False}

    def build(cfg, seeds):
        return model_class(cfg, **options) if replicas == 1 else model_class(cfg, seeds, **options)

    tiny = compose([f"engine={engine}", "market.n_clients=200", "steps=2"])
    warm = build(tiny, [0, 1])
    for _ in range(2):
        warm.step()
    cfg = compose([f"engine={engine}", f"market.n_clients={n_clients}", f"steps={weeks}"])
    start = time.perf_counter()
    model = build(cfg, list(range(replicas)))
    built = time.perf_counter()
    for _ in range(weeks):
        model.step()
    ran = time.perf_counter()
    return {
        "engine": engine, "clients": n_clients, "weeks": weeks, "replicas": replicas,
        "accounts": kept, "init_s": built - start, "run_s": ran - built,
        "client_steps_per_s": replicas * n_clients * weeks / (ran - built),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def startup() -> dict:
    """Seconds to import the engine, build a 1,000-client model and step its first week.

    Composing the config (Hydra) is left out. The first week includes compiling numba's
    kernels when their cache is cold (or loading them when it is warm):
    `startup_in_subprocess` runs it both ways.
    """
    start = time.perf_counter()
    from sim.config.compose import compose
    from sim.model.engines import engine_class

    model_class = engine_class("vectorized")
    imported = time.perf_counter()
    cfg = compose(["market.n_clients=1000", "steps=2"])
    composed = time.perf_counter()
    model = model_class(cfg)
    built = time.perf_counter()
    model.step()
    stepped = time.perf_counter()
    return {"import_s": imported - start, "build_s": built - composed,
            "first_week_s": stepped - built}  # fmt: skip


def startup_in_subprocess(checkout: Path | None = None) -> dict:
    """`startup` in fresh processes with an empty numba cache (cold), then again (warm).

    `checkout`: with that checkout's `.venv` (its package, this script).
    """
    import tempfile

    python, script = sys.executable, Path(__file__)
    if checkout is not None:
        python = checkout / ".venv" / "bin" / "python"
    out = {}
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for name in ("cold", "warm"):
            done = subprocess.run(
                [str(python), str(script), "--startup"], capture_output=True, text=True,
                check=True, cwd=checkout or script.parent.parent, env=env,
            )  # fmt: skip
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def startup_line(label: str, r: dict) -> str:
    """The start-up figures of one checkout as a line."""
    cold, warm = r["cold"], r["warm"]
    return (
        f"start-up {label}: import {warm['import_s']:.2f} s, build 1,000 clients "
        f"{warm['build_s']:.2f} s, first week {cold['first_week_s']:.2f} s with an empty numba "
        f"cache (compiling), {warm['first_week_s']:.3f} s cached"
    )


def in_subprocess(
    engine: str,
    n_clients: int,
    weeks: int,
    repeat: int = 1,
    checkout: Path | None = None,
    replicas: int = 1,
    accounts: bool = True,
) -> dict:
    """`measure` in fresh Python processes: the fastest of `repeat` runs, the largest peak.

    `checkout`: with that checkout's `.venv` (its package, measured the same way: by this
    script, as `startup_in_subprocess`).
    """
    python, script = sys.executable, Path(__file__)
    if checkout is not None:
        python = checkout / ".venv" / "bin" / "python"
    runs = []
    for _ in range(repeat):
        args = [str(python), str(script), "--one", engine, str(n_clients), str(weeks)]
        args += [str(replicas), str(int(accounts))]
        done = subprocess.run(
            args, capture_output=True, text=True, check=True, cwd=checkout or script.parent.parent
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = max(runs, key=lambda r: r["client_steps_per_s"])
    return best | {"repeats": repeat, "peak_mb": max(r["peak_mb"] for r in runs)}


BATCH = 10  # seeds stepped as one model in the batched measurement (`experiment.batch`)

#: The speed and memory targets (issue "Speed near the limit"): name -> (limit, unit). The
#: marginal cost is a multiple of the numpy Boltzmann step measured in the same run
#: (`benchmarks/anchors.py`): machines differ by 2x, the ratio travels.
TARGETS = {
    "fixed cost per week": (0.5, "ms"),
    "marginal cost per client-step at 100,000": (8.0, "x"),
    f"default run stepping, {BATCH} seeds as one batch, per run": (0.1, "s"),
    "peak memory per client at 1,000,000": (0.8, "kB"),
}
TARGET_SIZES = (1_000, 5_000, 20_000, 100_000)


def cost_fit(rows: list[dict]) -> tuple[float, float]:
    """Least-squares fit of seconds per week = fixed + marginal x clients: (fixed s, marginal s)."""
    import numpy as np

    clients = np.array([r["clients"] for r in rows], dtype=float)
    per_week = np.array([r["run_s"] / r["weeks"] for r in rows])
    marginal, fixed = np.polyfit(clients, per_week, 1)
    return float(fixed), float(marginal)


def target_figures(
    rows: list[dict], million: dict | None, batched: dict | None, boltzmann_rate: float
) -> dict[str, float]:
    """The measured value of each of `TARGETS` (NaN where not measured).

    `boltzmann_rate`: the numpy Boltzmann anchor's agent-steps per second in the same run.

    Without a batched run (a checkout that cannot batch) a run in a batch costs what it
    costs alone.
    """
    by_size = {r["clients"]: r for r in rows}
    fixed, _ = cost_fit(rows)
    big = by_size.get(100_000)
    marginal = (big["run_s"] / big["weeks"] - fixed) / 1e5 if big else float("nan")
    default = by_size.get(5_000)
    return {
        "fixed cost per week": 1e3 * fixed,
        "marginal cost per client-step at 100,000": marginal * boltzmann_rate,
        f"default run stepping, {BATCH} seeds as one batch, per run": (
            batched["run_s"] / batched["replicas"]
            if batched
            else default["run_s"]
            if default
            else float("nan")
        ),
        "peak memory per client at 1,000,000": (
            million["peak_mb"] / 1e3 if million else float("nan")  # MB per 1e6 = kB each
        ),
    }


def targets_report(new: dict, old: dict | None) -> str:
    """The issue's table (stepping over 260 weeks per size) and the targets, old beside new.

    `new["anchors"]`: the anchors measured in the same run (`benchmarks/anchors.py`).
    """
    lines = [anchors.line(r) for r in new["anchors"]]
    lines += [startup_line(label, side["startup"]) for label, side in (("old", old), ("new", new))
              if side and "startup" in side]  # fmt: skip
    lines += ["", f"{'clients':>9} {'':>4} {'stepping s':>11} {'per week ms':>12} "
              f"{'client-steps/s':>15} {'peak MB':>8}"]  # fmt: skip
    for n in TARGET_SIZES:
        for label, side in (("old", old), ("new", new)):
            if side is None:
                continue
            r = next(r for r in side["rows"] if r["clients"] == n)
            lines.append(f"{n:>9,} {label:>4} {r['run_s']:>11.2f} "
                         f"{1e3 * r['run_s'] / r['weeks']:>12.2f} "
                         f"{r['client_steps_per_s']:>15,.0f} {r['peak_mb']:>8,.0f}")  # fmt: skip
    for label, side in (("old", old), ("new", new)):
        batched = side.get("batched") if side else None
        if batched:
            per_run = batched["run_s"] / batched["replicas"]
            how = "" if batched.get("accounts", True) else ", no pair accounts"
            lines.append(f"{batched['clients']:>9,} {label:>4} {per_run:>11.2f} "
                         f"{1e3 * per_run / batched['weeks']:>12.2f} "
                         f"{batched['client_steps_per_s']:>15,.0f} {batched['peak_mb']:>8,.0f}"
                         f"  per run, {batched['replicas']} seeds as one batch{how}")  # fmt: skip
    lines.append("")
    lines.append(f"{'target':<52} {'limit':>9} {'old':>9} {'new':>9}  verdict")
    rate = boltzmann_rate(new["anchors"])
    figures = {
        k: target_figures(s["rows"], s["million"], s.get("batched"), rate)
        for k, s in (("new", new), ("old", old)) if s
    }  # fmt: skip
    for name, (limit, unit) in TARGETS.items():
        now, before = figures["new"][name], figures.get("old", {}).get(name, float("nan"))
        verdict = (
            "not measured" if now != now else "met" if now <= limit
            else f"missed by {now / limit:.1f}x"
        )  # fmt: skip
        lines.append(f"{name:<52} {limit:>6.2f} {unit:<2} {before:>9.3f} {now:>9.3f}  {verdict}")
    lines.append(f"(marginal cost as a multiple of one numpy Boltzmann agent-step, "
                 f"{1e9 / rate:.1f} ns in this run)")  # fmt: skip
    if new.get("million_sweep"):
        lines.append(f"(peak memory per client at 1,000,000 without the pair accounts, as a "
                     f"sweep's run: {new['million_sweep']['peak_mb'] / 1e3:.3f} kB)")  # fmt: skip
    fixed, marginal = cost_fit(new["rows"])
    sizes = ", ".join(f"{n:,}" for n in TARGET_SIZES)
    lines.append(f"\nnew: a week costs {1e3 * fixed:.2f} ms + {1e9 * marginal:.0f} ns x clients "
                 f"(least squares over {sizes} clients)")  # fmt: skip
    return "\n".join(lines)


def boltzmann_rate(measured: list[dict]) -> float:
    """The numpy Boltzmann anchor's agent-steps per second among `measured` anchors."""
    return next(r["agent_steps_per_s"] for r in measured if r["anchor"] == "numpy")


def measure_targets(args) -> dict:
    """Measure `TARGET_SIZES` x 260 weeks (and 1M x 4 weeks), alternating new and old.

    This checkout also steps `BATCH` default markets as one batch (`sim.model.market.MarketModel`
    with seeds); an older checkout that cannot is charged its run alone.
    """
    sides = {"new": None, "old": args.against}
    out = {name: {"rows": [], "million": None} for name, where in sides.items()
           if name == "new" or where is not None}  # fmt: skip
    out["new"]["anchors"] = [anchors.in_subprocess(*a, args.repeat) for a in anchors.DEFAULTS]
    for r in out["new"]["anchors"]:
        print("  " + anchors.line(r), file=sys.stderr, flush=True)
    for name in out:
        out[name]["startup"] = startup_in_subprocess(sides[name])
        print("  " + startup_line(name, out[name]["startup"]), file=sys.stderr, flush=True)
    for n in TARGET_SIZES:
        for name in out:
            out[name]["rows"].append(in_subprocess("vectorized", n, 260, args.repeat, sides[name]))
            log(out[name]["rows"][-1] | {"engine": name})
    for name in out:  # built as a sweep builds its batches: without the pair accounts
        out[name]["batched"] = in_subprocess(
            "vectorized", 5_000, 260, args.repeat, sides[name], replicas=BATCH, accounts=False
        )
        log(out[name]["batched"] | {"engine": f"{name}, {BATCH} as one"})
    if args.million:
        for name in out:
            out[name]["million"] = in_subprocess("vectorized", 1_000_000, 4, 1, sides[name])
            log(out[name]["million"] | {"engine": name})
        # a run whose pairs are not read (a sweep's) leaves the accounts out
        out["new"]["million_sweep"] = in_subprocess(
            "vectorized", 1_000_000, 4, 1, sides["new"], accounts=False
        )
        log(out["new"]["million_sweep"] | {"engine": "new, without the pair accounts"})
    return out


def table(rows: list[dict]) -> str:
    """Side-by-side table: per size, each engine's speed and memory, and the ratio."""
    lines = [
        f"{'clients':>10} {'weeks':>5} {'agents c-s/s':>14} {'vectorized c-s/s':>17} "
        f"{'ratio':>7} {'agents MB':>10} {'vect. MB':>9} {'vect. ns/client-step':>21}"
    ]
    for n in sorted({r["clients"] for r in rows}):
        by = {r["engine"]: r for r in rows if r["clients"] == n}
        a, v = by.get("agents"), by["vectorized"]
        ratio = v["client_steps_per_s"] / a["client_steps_per_s"] if a else float("nan")
        lines.append(
            f"{n:>10,} {v['weeks']:>5} "
            f"{a['client_steps_per_s'] if a else float('nan'):>14,.0f} "
            f"{v['client_steps_per_s']:>17,.0f} {ratio:>6.1f}x "
            f"{a['peak_mb'] if a else float('nan'):>10,.0f} {v['peak_mb']:>9,.0f} "
            f"{1e9 / v['client_steps_per_s']:>21,.0f}"
        )
    return "\n".join(lines)


def horizon_line(r: dict) -> str:
    """One vectorized run over a whole horizon, as a line."""
    return (
        f"{r['clients']:>10,} clients x {r['weeks']} weeks (vectorized): "
        f"init {r['init_s']:.1f} s, run {r['run_s']:.1f} s, "
        f"{r['client_steps_per_s']:,.0f} client-steps/s, peak {r['peak_mb']:,.0f} MB"
    )


def profile(n_clients: int, weeks: int) -> None:
    """Print pyinstrument's call tree of the vectorized engine's steps."""
    from pyinstrument import Profiler

    from sim.config.compose import compose
    from sim.model.engines import engine_class

    cfg = compose(["engine=vectorized", f"market.n_clients={n_clients}", f"steps={weeks}"])
    model = engine_class("vectorized")(cfg)
    profiler = Profiler(interval=0.001)
    with profiler:
        for _ in range(weeks):
            model.step()
    print(profiler.output_text(unicode=True, color=False))


def log(r: dict) -> None:
    """One progress line on stderr."""
    print(
        f"  {r['engine']:>10} {r['clients']:>9,} x {r['weeks']}: "
        f"{r['client_steps_per_s']:>12,.0f} client-steps/s, {r['peak_mb']:,.0f} MB",
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000],
                        help="numbers of clients, both engines")  # fmt: skip
    parser.add_argument("--weeks", type=int, default=26, help="weeks per side-by-side run")
    parser.add_argument("--million", action=argparse.BooleanOptionalAction, default=True,
                        help="also 1,000,000 clients, vectorized only")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3,
                        help="vectorized runs per measurement (the fastest counts); "
                             "the agents engine runs once")  # fmt: skip
    parser.add_argument("--horizon", type=int, default=260,
                        help="weeks of the vectorized whole-horizon run at the largest size "
                             "of --sizes (0: skip)")  # fmt: skip
    parser.add_argument("--full-scale", action="store_true",
                        help="only run 1,000,000 clients x 260 weeks (vectorized)")  # fmt: skip
    parser.add_argument(
        "--profile",
        type=int,
        metavar="CLIENTS",
        help="only profile the vectorized engine at this size (pyinstrument)",
    )
    parser.add_argument(
        "--targets", action="store_true", help="measure the speed and memory targets (vectorized)"
    )
    parser.add_argument(
        "--against", type=Path, metavar="DIR",
        help="also measure the checkout in DIR (with its own .venv), side by side",
    )  # fmt: skip
    parser.add_argument("--json", metavar="PATH", help="also write every measurement here")
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--startup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], *map(int, args.one[1:]))))
        return
    if args.startup:
        print(json.dumps(startup()))
        return
    if args.profile:
        profile(args.profile, args.weeks)
        return
    if args.targets:
        measured = measure_targets(args)
        print(targets_report(measured["new"], measured.get("old")))
        if args.json:
            Path(args.json).write_text(json.dumps(measured, indent=1) + "\n")
        return
    rows = []
    if args.full_scale:
        rows.append(in_subprocess("vectorized", 1_000_000, 260))
        print(horizon_line(rows[-1]))
    else:
        for n in args.sizes + ([1_000_000] if args.million else []):
            for engine in ("agents", "vectorized"):
                if engine == "agents" and n > AGENTS_MAX:
                    continue
                repeat = args.repeat if engine == "vectorized" else 1
                rows.append(in_subprocess(engine, n, args.weeks, repeat))
                log(rows[-1])
        horizon = []
        if args.horizon:
            horizon.append(in_subprocess("vectorized", max(args.sizes), args.horizon, args.repeat))
            log(horizon[-1])
        print(table(rows))
        for r in horizon:
            print(horizon_line(r))
        rows += horizon
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
