"""``clientsim-plot DIR``: the figures of a sweep or of one run, into ``DIR/figures/``.

The front end of `sim.validation.docking_figures.plot_sweep` (a docking's figure, else
`sim.analysis.figures`) and, for what `clientsim` wrote, of `sim.analysis.run_figures`:
parse, draw, print a line per file written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim.analysis.run_figures import is_run_dir, plot_run
from sim.cli.common import Parser, run_command
from sim.errors import UserError
from sim.validation.docking_figures import plot_sweep

PROG = "clientsim-plot"


def parser() -> Parser:
    """The command line of ``clientsim-plot``."""
    p = Parser(
        prog=PROG,
        description="The figures that answer an experiment's question (a sweep directory), "
        "or those of one run (what clientsim wrote: profit and reputation per policy, refusals "
        "by reason, clients by segment, whale curves), into DIR/figures/.",
        epilog="Files in DIR/figures/ are replaced only if clientsim wrote them (listed in "
        "DIR/figures/.clientsim-outputs.json); else the command refuses.",
    )
    p.add_argument("dir", type=Path, help="a sweep directory (results/<experiment>/<time>/) "
                   "or a run's (results/runs/<time>/)")  # fmt: skip
    p.add_argument("--format", nargs="+", default=["png", "svg"], choices=["png", "svg", "pdf"])
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``clientsim-plot``; returns the exit code.

    2 with one line on a bad DIR (or a file in figures/ that clientsim did not write), 1 with
    one line if the figures cannot be written.
    """
    return run_command(PROG, _plot, argv)


def _plot(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.dir.is_dir() and not (args.dir / "manifest.json").exists() and not is_run_dir(args.dir):
        raise UserError(f"{args.dir} holds neither a sweep (manifest.json) nor a run "
                        "(summary.json, steps.parquet): give what clientsim-experiment or "
                        "clientsim wrote")  # fmt: skip
    try:
        draw = plot_run if is_run_dir(args.dir) else plot_sweep
        written = draw(args.dir, formats=args.format)
    except (FileNotFoundError, ValueError) as error:  # not a sweep directory
        raise UserError(str(error)) from None
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"{PROG}: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
