"""``clientsim-facts``: measure the stylised facts over seeds and compare them with their targets.

The front end of `sim.validation.measure`: parse, measure, print the table (and write it with
``--out``).
"""

from __future__ import annotations

from pathlib import Path

from sim.cli.common import Parser, run_command, size_arguments
from sim.errors import UserError
from sim.progress import Progress
from sim.runs.owned import OUTPUTS, check_out, refuse_foreign
from sim.validation.facts import load_targets
from sim.validation.measure import beside, markdown, measure, summary, write_facts

PROG = "clientsim-facts"
FULL_SIZE = (5000, 260)  # clients, weeks: the validation plan's size


def parser() -> Parser:
    """The command line of ``clientsim-facts``."""
    p = Parser(
        prog=PROG,
        description="Measure the stylised facts (sim/validation/targets.yaml) over seeds: the "
        "default market, a serve-all and a fit_filter market (whale curves), and the default "
        "market at demand/supply 2.5 (seller's market). Prints mean ± s.d. per fact against "
        "its target.",
        epilog="Example: clientsim-facts --seeds 10 --out docs/facts.md clients.wom.p_negative=.15",
    )
    size_arguments(p, 10, *FULL_SIZE)
    p.add_argument("--out", type=Path, help="write the table as markdown here (replaced if it "
                   "exists), the per-seed values beside it (.json) and the whale curves "
                   f"(.whale.parquet); those two replace only files clientsim wrote (listed in "
                   f"{OUTPUTS} in their folder), else the command refuses")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``clientsim-facts``; returns the exit code."""
    return run_command(PROG, _facts, argv)


def _facts(argv: list[str]) -> None:
    args = parser().parse_intermixed_args(argv)
    if args.jobs == 0:
        raise UserError("--jobs must not be 0 (-1: all cores)")
    if args.out is not None:
        check_out(args.out, ".md")
        if args.out in beside(args.out):
            raise UserError(f"--out {args.out}: the per-seed values go to the .json beside "
                            "the table; give the table another suffix (.md)")  # fmt: skip
        refuse_foreign(beside(args.out), f"--out {args.out}")
    targets = load_targets()
    values, whale = measure(
        targets, overrides=args.overrides, seeds=range(args.seeds), clients=args.clients,
        weeks=args.weeks, jobs=args.jobs, progress=Progress(PROG),
    )  # fmt: skip
    table = summary(values, targets)
    command = " ".join([PROG, *argv])
    text = markdown(table, command)
    print(text)
    if args.out is not None:
        write_facts(args.out, text, values, table, whale, command)


if __name__ == "__main__":
    raise SystemExit(main())
