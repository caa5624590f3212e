"""Benchmark the engines: client-steps per second and peak memory, side by side.

Run as ``python benchmarks/engines.py`` (or ``make bench``). Each measurement runs in a
fresh process, so its peak memory (max RSS) is its own. Both engines simulate the same
config (the defaults, with `market.n_clients` set) over the same weeks from the start.

    python benchmarks/engines.py                      # 1k, 10k, 100k (+1M vectorized)
    python benchmarks/engines.py --sizes 1000 10000 --weeks 10
    python benchmarks/engines.py --full-scale         # 1,000,000 clients x 260 weeks
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

AGENTS_MAX = 100_000  # the agents engine takes minutes per run above this


def measure(engine: str, n_clients: int, weeks: int) -> dict:
    """Build and run one model in this process; time the steps only."""
    from sim.cli import compose
    from sim.engines import engine_class

    cfg = compose([f"engine={engine}", f"market.n_clients={n_clients}", f"steps={weeks}"])
    start = time.perf_counter()
    model = engine_class(engine)(cfg)
    built = time.perf_counter()
    for _ in range(weeks):
        model.step()
    ran = time.perf_counter()
    return {
        "engine": engine, "clients": n_clients, "weeks": weeks,
        "init_s": built - start, "run_s": ran - built,
        "client_steps_per_s": n_clients * weeks / (ran - built),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def in_subprocess(engine: str, n_clients: int, weeks: int) -> dict:
    """`measure` in a fresh Python process (its own peak memory)."""
    args = [sys.executable, __file__, "--one", engine, str(n_clients), str(weeks)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def main() -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--weeks", type=int, default=26, help="weeks per run (default 26)")
    parser.add_argument("--million", action=argparse.BooleanOptionalAction, default=True,
                        help="also 1,000,000 clients, vectorized only (default on)")  # fmt: skip
    parser.add_argument("--full-scale", action="store_true",
                        help="only run 1,000,000 clients x 260 weeks (vectorized)")  # fmt: skip
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    if args.full_scale:
        r = in_subprocess("vectorized", 1_000_000, 260)
        speed, peak = r["client_steps_per_s"], r["peak_mb"]
        print(f"1,000,000 clients x 260 weeks: init {r['init_s']:.1f} s, run {r['run_s']:.1f} s, "
              f"{speed:,.0f} client-steps/s, peak {peak:,.0f} MB")  # fmt: skip
        return
    rows = []
    for n in args.sizes + ([1_000_000] if args.million else []):
        for engine in ("agents", "vectorized"):
            if engine == "agents" and n > AGENTS_MAX:
                continue
            rows.append(in_subprocess(engine, n, args.weeks))
            r = rows[-1]
            print(f"  {engine:>10} {n:>9,}: {r['client_steps_per_s']:>12,.0f} client-steps/s, "
                  f"{r['peak_mb']:,.0f} MB", file=sys.stderr, flush=True)  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
