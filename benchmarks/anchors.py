"""Speed anchors: the same machine's speed at other agent-based models, to compare against.

Printed beside clientsim's figures by ``benchmarks/engines.py --targets`` (machines differ by
2x in speed: a ratio to an anchor measured in the same run travels, a rate does not):

- **numpy Boltzmann**: the Boltzmann wealth model (every agent with wealth gives one unit to
  a random agent) as bare numpy, one `bincount` a step: about the cheapest agent step there is.
- **Mesa Boltzmann**: the same model as Mesa's tutorial writes it, one `Agent` each,
  ``agents.shuffle_do("step")``.
- **Starsim SIR**: Starsim's SIR on a random network of 6 contacts (numba kernels), only if
  Starsim is installed (``pip install -e '.[anchors]'``).

    python benchmarks/anchors.py            # all three at their default sizes
    python benchmarks/anchors.py --one numpy 100000 200
"""

from __future__ import annotations

import argparse
import json
import time

#: (anchor, agents, steps) measured by default: sizes where each runs a second or two.
DEFAULTS = (("numpy", 100_000, 400), ("mesa", 10_000, 20), ("starsim", 100_000, 100))


def numpy_boltzmann(n: int, steps: int) -> float:
    """Seconds for `steps` steps of the Boltzmann wealth model of `n` agents in bare numpy."""
    import numpy as np

    rng = np.random.default_rng(0)
    wealth = np.ones(n, dtype=np.int64)
    start = time.perf_counter()
    for _ in range(steps):
        givers = np.flatnonzero(wealth > 0)
        wealth[givers] -= 1
        wealth += np.bincount(rng.integers(0, n, len(givers)), minlength=n)
    return time.perf_counter() - start


def mesa_boltzmann(n: int, steps: int) -> float:
    """Seconds for `steps` steps of Mesa's Boltzmann wealth model (its tutorial's agents)."""
    import mesa

    class Money(mesa.Agent):
        def __init__(self, model):
            super().__init__(model)
            self.wealth = 1

        def step(self):
            if self.wealth > 0:
                other = self.random.choice(self.model.money)
                other.wealth += 1
                self.wealth -= 1

    class Boltzmann(mesa.Model):
        def __init__(self, n):
            super().__init__(rng=0)
            Money.create_agents(self, n)
            self.money = list(self.agents)

        def step(self):
            self.agents.shuffle_do("step")

    model = Boltzmann(n)
    start = time.perf_counter()
    for _ in range(steps):
        model.step()
    return time.perf_counter() - start


def starsim_sir(n: int, steps: int) -> float:
    """Seconds of Starsim's SIR on a random network of 6 contacts (`n` agents, `steps` steps)."""
    import starsim as ss

    sim = ss.Sim(
        n_agents=n, diseases=ss.SIR(), networks=ss.RandomNet(n_contacts=6),
        start=0, stop=steps, dt=1, verbose=0, rand_seed=0,
    )  # fmt: skip
    sim.init()
    start = time.perf_counter()
    sim.run()
    return time.perf_counter() - start


RUNNERS = {"numpy": numpy_boltzmann, "mesa": mesa_boltzmann, "starsim": starsim_sir}
NAMES = {
    "numpy": "numpy Boltzmann",
    "mesa": "Mesa Boltzmann",
    "starsim": "Starsim SIR (6 contacts)",
}


def measure(anchor: str, n: int, steps: int) -> dict:
    """One anchor in this process: agent-steps per second (None if not installed)."""
    try:
        seconds = RUNNERS[anchor](n, steps)
    except ImportError:
        return {"anchor": anchor, "agents": n, "steps": steps, "agent_steps_per_s": None}
    return {"anchor": anchor, "agents": n, "steps": steps, "agent_steps_per_s": n * steps / seconds}


def in_subprocess(anchor: str, n: int, steps: int, repeat: int = 3) -> dict:
    """`measure` in fresh processes, the fastest of `repeat`."""
    import subprocess
    import sys

    runs = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, __file__, "--one", anchor, str(n), str(steps)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if runs[-1]["agent_steps_per_s"] is None:
            break
    return max(runs, key=lambda r: r["agent_steps_per_s"] or 0.0)


def line(r: dict) -> str:
    """One anchor as a line of the benchmark's table."""
    rate = r["agent_steps_per_s"]
    text = f"{rate:>15,.0f}" if rate else f"{'not installed':>15}"
    size = f"{r['agents']:>9,} agents x {r['steps']:>3}"
    return f"{NAMES[r['anchor']]:<26} {size}: {text} agent-steps/s"


def main() -> None:
    """Measure the anchors and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per anchor (the fastest)")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    for anchor, n, steps in DEFAULTS:
        print(line(in_subprocess(anchor, n, steps, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
