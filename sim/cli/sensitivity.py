"""`clientsim-sensitivity`: Morris screening and Sobol indices of the paired profit gap.

    clientsim-sensitivity morris [--trajectories R] [--levels L] [--seeds S] [overrides...]
    clientsim-sensitivity sobol [--samples N] [--params a,b,c] [overrides...]

`morris` writes morris.parquet and morris.md (mu, mu*, sigma, mu*_conf, rank per parameter and
output), morris.png (mu* against sigma), morris_samples.parquet and morris_positive.parquet
(P(gap > 0) with its 95% interval, over all points and with each switch off and on) into
`--out`; `sobol` takes the top three parameters by mu* from `--out`/morris.parquet (or
`--params`) and writes sobol.parquet, sobol.md, sobol_samples.parquet and
sobol_positive.parquet. Both print P(gap > 0). The structural switches and the market's
composition are binary factors: on above 0.5 of their [0, 1] sample. Overrides (Hydra
syntax) change the base market, e.g. `engine=agents market.price=120`. A bad value exits with
code 2 and one line.

Files in `--out` replace only files clientsim wrote there (listed with their SHA-256 in
`--out`/.clientsim-outputs.json); a file of the same name that it did not write (or that was
changed since) makes the command refuse before any run. `--figure F` names its file: F is
replaced.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

import pandas as pd

from sim.cli.common import Parser, parse_with_overrides, run_command
from sim.errors import UserError
from sim.progress import Progress
from sim.runs.owned import check_writable, refuse_foreign
from sim.runs.summary import SHORT_RUN_WEEK
from sim.validation import sensitivity as sa
from sim.validation import sensitivity_files as files

PROG = "clientsim-sensitivity"
MORRIS = "Morris screening: mu, mu*, sigma of the paired profit gap per parameter"
SOBOL = "Sobol indices S1, ST (Saltelli sample) of the paired profit gap"


def check_outputs(args: argparse.Namespace) -> None:
    """Raise UserError unless every file of the method can be written (before any run).

    `--out` must be a folder that can be made and written, `--figure` a file in a writable
    folder; the files in `--out` must be new or clientsim's own (`sim.runs.owned`).
    """
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: is a file, not a folder")
    check_writable(args.out.absolute(), args.out)
    figure = getattr(args, "figure", None)
    if figure is not None:
        if figure.is_dir():
            raise UserError(f"--figure {figure}: is a directory; give a file name (.png)")
        check_writable(figure.absolute().parent, figure, "--figure")
    written = files.outputs(args.method, args.out, figure=figure is None)
    refuse_foreign(written, f"--out {args.out}")


def _integer(low: int, *, power_of_two: bool = False, even: bool = False):
    def parse(text: str) -> int:
        allowed = f"must be an integer >= {low}"
        allowed += ", a power of 2" if power_of_two else ", even" if even else ""
        try:
            value = int(text)
        except ValueError:
            value = None
        ok = value is not None and value >= low
        ok = ok and (not power_of_two or value & (value - 1) == 0) and (not even or value % 2 == 0)
        if not ok:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")
        return value

    return parse


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    declared = [p.name for p in sa.PARAMETERS]
    unknown = [n for n in names if n not in declared]
    if unknown or not names:
        allowed = f"a comma-separated list of {', '.join(declared)}"
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")
    return list(dict.fromkeys(names))


def parser() -> Parser:
    """The command line of `clientsim-sensitivity`."""
    table = "\n".join(
        f"  {p.name:<25} {p.key}" + (" " if p.binary else " in ") + files.bounds_text(p)
        + ("" if p.enabled else "  (disabled)")
        for p in sa.PARAMETERS
    )  # fmt: skip
    p = Parser(prog=PROG, description=__doc__.split("\n")[0].replace("`", ""),
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=f"Parameters (sim/validation/sensitivity.yaml):\n{table}")  # fmt: skip
    common = Parser(add_help=False)
    common.add_argument(
        "--seeds",
        type=_integer(1),
        default=5,
        help="seeds per sample, the same for every sample; the gap of a sample is their "
        "mean (default 5)",
    )
    common.add_argument(
        "--clients", type=_integer(2), help="market.n_clients (default: the config's)"
    )
    common.add_argument(
        "--weeks", type=_integer(SHORT_RUN_WEEK), help="steps, at least 13 (default: the config's)"
    )
    common.add_argument(
        "--jobs",
        type=_integer(1),
        default=os.cpu_count() or 1,
        help="runs in parallel (default: the cores)",
    )
    common.add_argument(
        "--params",
        type=_names,
        help="parameters to vary, e.g. threshold,ad_reach (default: morris every "
        "enabled one, sobol the top three by mu* of --out/morris.parquet)",
    )
    common.add_argument(
        "--out",
        type=Path,
        default=Path("results/sensitivity"),
        help="directory of the results (default results/sensitivity); files there are "
        "replaced only if clientsim wrote them",
    )
    common.add_argument("overrides", nargs="*", help="Hydra overrides of the base market")
    sub = p.add_subparsers(dest="method", required=True)
    m = sub.add_parser("morris", parents=[common], help=MORRIS, description=MORRIS)
    m.add_argument(
        "--trajectories",
        "-r",
        type=_integer(2),
        default=10,
        help="trajectories (default 10): (parameters + 1) samples each",
    )
    m.add_argument(
        "--levels", type=_integer(2, even=True), default=4, help="grid levels, even (default 4)"
    )
    m.add_argument(
        "--figure",
        type=Path,
        help="the figure's path, replaced if it exists (default --out/morris.png)",
    )
    s = sub.add_parser("sobol", parents=[common], help=SOBOL, description=SOBOL)
    s.add_argument(
        "--samples",
        "-N",
        type=_integer(2, power_of_two=True),
        default=64,
        help="base samples N, a power of 2 (default 64): N (parameters + 2) runs",
    )
    s.add_argument(
        "--top",
        type=_integer(1),
        default=3,
        help="without --params: how many of Morris's top parameters (default 3)",
    )
    s.add_argument("--rank-by", choices=list(sa.OUTPUTS), default="horizon",
                   help="the output whose mu* ranks them (default horizon)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `clientsim-sensitivity`; returns the exit code."""
    return run_command(PROG, _sensitivity, argv)


def _sensitivity(argv: list[str]) -> None:
    args = parse_with_overrides(parser(), argv)
    check_outputs(args)
    base = sa.base_config(args.overrides, clients=args.clients, weeks=args.weeks)
    names = _sobol_params(args) if args.method == "sobol" else args.params
    params, skipped = sa.select(names, base)
    for line in skipped:
        print(f"{PROG}: skipped {line}")
    if not params:
        raise UserError(f"--params={','.join(names or [])}: no parameter left to vary")
    command = " ".join([PROG, *map(shlex.quote, argv)])
    study = files.Study(base, params, args.seeds, args.jobs, args.out, command, Progress(PROG))
    if args.method == "morris":
        samples = args.trajectories * (len(params) + 1)
        print(f"{PROG}: morris: {len(params)} parameters, {study.runs(samples)}, {args.jobs} at "
              f"a time -> {args.out}", flush=True)  # fmt: skip
        table, chance = files.morris(study, trajectories=args.trajectories,
                                     levels=args.levels, figure=args.figure)  # fmt: skip
        for output in sa.OUTPUTS:
            print(f"{PROG}: top three by mu* ({output}): {', '.join(sa.top(table, 3, by=output))}")
        _print_positive(chance)
        print(f"{PROG}: wrote morris.parquet, morris.md, morris_samples.parquet, "
              f"morris_positive.parquet in {args.out}; "
              f"figure {args.figure or args.out / 'morris.png'}")  # fmt: skip
    else:
        samples = args.samples * (len(params) + 2)
        print(f"{PROG}: sobol: {len(params)} parameters, {study.runs(samples)}, {args.jobs} at "
              f"a time -> {args.out}", flush=True)  # fmt: skip
        _, chance = files.sobol(study, samples=args.samples, source=args.source)
        _print_positive(chance)
        print(f"{PROG}: wrote sobol.parquet, sobol.md, sobol_samples.parquet, "
              f"sobol_positive.parquet in {args.out}")  # fmt: skip


def _print_positive(chance: pd.DataFrame) -> None:
    """P(gap > 0) over every point per output, then at the horizon per binary factor."""
    for output in sa.OUTPUTS:
        print(f"{PROG}: {files.positive_line(chance, output)}")
    rows = chance[(chance["output"] == "horizon") & (chance["factor"] != "all")]
    for factor, levels in rows.groupby("factor", sort=False):
        shown = ", ".join(f"{r.level} {r.share:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] "
                          f"({r.points} points)" for r in levels.itertuples())  # fmt: skip
        print(f"{PROG}: P(gap > 0) horizon, {factor}: {shown}")


def _sobol_params(args: argparse.Namespace) -> list[str]:
    """--params, else the top `--top` of `--out`/morris.parquet by mu* (`args.source` says)."""
    if args.params:
        args.source = "parameters from --params"
        return args.params
    table = args.out / "morris.parquet"
    if not table.is_file():
        raise UserError(f"--params not given, and no Morris table {table} to take the top "
                        f"{args.top} from: run morris first, or give --params")  # fmt: skip
    names = sa.top(pd.read_parquet(table), args.top, by=args.rank_by)
    args.source = f"the top {args.top} by mu* ({args.rank_by}) of {table}"
    print(f"{PROG}: {args.source}: {', '.join(names)}")
    return names


if __name__ == "__main__":
    raise SystemExit(main())
