"""``clientsim-calibrate``: search parameters to bring the stylised facts inside their targets.

The front end of `sim.validation.calibrate`: parse, calibrate, print the before/after table
and write the proposal.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim.cli.common import Parser, run_command, size_arguments
from sim.errors import UserError
from sim.progress import Progress
from sim.runs.owned import check_out, refuse_foreign
from sim.validation.calibrate import calibrate, report, write_proposal

PROG = "clientsim-calibrate"
DEFAULT_OUT = Path("calibration.yaml")


def parser() -> Parser:
    """The command line of ``clientsim-calibrate``."""
    p = Parser(
        prog=PROG,
        description="Search parameters (KEY=LOW:HIGH; default: the set in "
        "sim/validation/targets.yaml) with a Latin hypercube to bring the calibrated stylised "
        "facts inside their targets. Prints each target's distance before (the defaults) and "
        "after (the best sample) and writes the proposal as YAML. Other overrides (KEY=VALUE) "
        "hold for every run.",
        epilog="Example: clientsim-calibrate --samples 40 --clients 2000 --weeks 156 "
        "clients.wom.p_negative=0.05:0.25 clients.reviews.floor=0:0.15",
    )
    size_arguments(p, 2, 2000, 156)
    p.add_argument("--samples", type=int, default=20, help="Latin hypercube points (%(default)s)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the hypercube")
    p.add_argument("--out", type=Path, help="the proposal file, replaced if it exists (default: "
                   f"{DEFAULT_OUT}, which replaces only a file clientsim wrote)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``clientsim-calibrate``; returns the exit code."""
    return run_command(PROG, _calibrate, argv)


def _calibrate(argv: list[str]) -> None:
    args = parser().parse_intermixed_args(argv)
    if args.samples < 1 or args.jobs == 0:
        raise UserError("--samples must be at least 1 and --jobs not 0")
    if args.out is None:  # not named: it must not replace a user's file
        args.out = DEFAULT_OUT
        refuse_foreign([args.out], f"--out {args.out} (the default)")
    check_out(args.out, ".yaml")
    proposal = calibrate(
        args.overrides, samples=args.samples, seeds=args.seeds, clients=args.clients,
        weeks=args.weeks, jobs=args.jobs, sample_seed=args.sample_seed, progress=Progress(PROG),
    )  # fmt: skip
    print(report(proposal))
    proposal["command"] = " ".join([PROG, *argv])
    write_proposal(proposal, args.out)
    print(f"{PROG}: proposal written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
