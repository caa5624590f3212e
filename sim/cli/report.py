"""`make results`: every experiment at full size, its figures, and docs/RESULTS.md.

    python -m sim.cli.report --run              # run (or resume) every experiment, then write
    python -m sim.cli.report                    # write docs/RESULTS.md from the last runs
    python -m sim.cli.report --run --only mix   # one experiment

The front end of `sim.analysis.report.write_results`: each experiment runs as
`clientsim-experiment run NAME --dir results/NAME/make-results` (resumed by a rerun), then
every claim is judged and docs/RESULTS.md written.
"""

from __future__ import annotations

import json

from sim.analysis.report import RESULTS_DIR, SWEEP_NAME, by_hypothesis, write_results
from sim.cli import experiment
from sim.cli.common import Parser, positive, run_command
from sim.sweeps.experiment import names
from sim.validation.docking_figures import plot_sweep

PROG = "python -m sim.cli.report"


def parser() -> Parser:
    """The command line of `python -m sim.cli.report`."""
    p = Parser(prog=PROG, description=__doc__.split("\n")[0].replace("`", ""))
    p.add_argument("--run", action="store_true", help="run (or resume) the experiments first")
    p.add_argument("--only", nargs="*", help="run these experiments only")
    p.add_argument("--jobs", type=positive, help="parallel jobs (default: the cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m sim.cli.report`; returns the exit code."""
    return run_command(PROG, _report, argv)


def _report(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    chosen = args.only or names()
    for name in chosen if args.run else []:
        sweep_dir = RESULTS_DIR / name / SWEEP_NAME
        jobs = ["--jobs", str(args.jobs)] if args.jobs else []
        code = experiment.main(["run", name, "--dir", str(sweep_dir), *jobs])
        if code:
            return code
    # every experiment, whichever ran now
    print(write_results(by_hypothesis(names()), draw=plot_sweep))
    print(json.dumps({"experiments": chosen}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
