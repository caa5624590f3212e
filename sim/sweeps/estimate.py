"""How long a sweep will take, from per-run costs measured by `benchmarks/engines.py`.

A run of `n` clients over `w` weeks costs about ``w × (WEEK + CLIENT_WEEK × n)`` seconds of
stepping in a batch of ten seeds (the vectorized engine's default), plus ``RUN`` seconds to
record and write it; each job adds ``JOB`` seconds (composing its config, reading and
writing its point), and the sweep ``START`` seconds (starting the workers, importing). The
sum is divided among the jobs that run at once. The constants were measured on a 2-core
machine on 2026-12-06 (the default run: 0.33 s of stepping a run in a batch of ten, and
1.37 ms + 0.21 µs × clients a week alone; instruments' 64 design points × 2 seeds at the
default size in 47 s with joblib on both cores); a faster or busier machine differs, so the
figure is printed as "about".
"""

from __future__ import annotations

#: seconds a week of one run costs in a batch of ten, besides its clients (a share of the
#: business side's fixed cost per week)
WEEK = 0.23e-3
#: seconds a client-week costs (the marginal cost at 100,000 clients, benchmarks/engines.py)
CLIENT_WEEK = 0.21e-6
#: seconds to record a run and write its files
RUN = 0.15
#: seconds a job costs besides its runs (composing its config, reading and writing its point)
JOB = 0.5
#: seconds a sweep spends starting (the workers' processes, importing clientsim and Hydra)
START = 3.0
#: the agents engine (a Mesa agent per client) is this many times slower a client-week
AGENTS_FACTOR = 8.0
#: seconds a joblib worker takes to start: importing clientsim and Hydra, loading the kernels
#: from numba's cache and composing its first job (2 to 2.7 CPU-s measured, 2026-12-07)
WORKER = 2.5


def run_seconds(clients: int, weeks: int, engine: str = "vectorized") -> float:
    """Seconds one run of `clients` × `weeks` costs in a sweep (stepping, recording)."""
    factor = AGENTS_FACTOR if engine == "agents" else 1.0
    return weeks * (WEEK + CLIENT_WEEK * clients * factor) + RUN


def work_seconds(runs: int, jobs: int, *, clients: int, weeks: int,
                 engine: str = "vectorized") -> float:  # fmt: skip
    """Seconds of work of `runs` runs in `jobs` jobs, one after another (no start-up)."""
    return max(0, runs) * run_seconds(clients, weeks, engine) + jobs * JOB


def sweep_seconds(runs: int, jobs: int, parallel: int, *, clients: int, weeks: int,
                  engine: str = "vectorized") -> float:  # fmt: skip
    """Wall seconds of `runs` runs in `jobs` jobs, `parallel` of them at once."""
    if runs <= 0:
        return 0.0
    work = work_seconds(runs, jobs, clients=clients, weeks=weeks, engine=engine)
    return START + work / max(1, min(parallel, jobs))


def workers(work: float, most: int) -> int:
    """How many joblib workers finish `work` seconds of jobs soonest, at most `most`.

    One runs the jobs in this process, one after another (joblib's ``n_jobs=1``: no worker
    starts); k > 1 start k processes at once (`WORKER` seconds) and share the work. So a
    sweep of less than about 2 × `WORKER` seconds of work (a smoke run) runs here.
    """
    return min(range(1, max(1, most) + 1), key=lambda k: work if k == 1 else WORKER + work / k)


def duration(seconds: float) -> str:
    """``about 40 s``, ``about 12 min``, ``about 2.5 h``: the size of a wait, not a promise."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"
