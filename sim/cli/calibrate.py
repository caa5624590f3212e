"""``clientsim-calibrate``: search parameters to bring the stylised facts inside their targets.

The front end of `sim.validation.calibrate`: parse, calibrate, print the before/after table
and write the proposal. With ``--plausible DIR``, the front end of `sim.validation.history`:
history matching in waves, each wave's line, and the plausible set written to DIR
(`sim.validation.plausible`) with its table printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim.cli.common import Parser, run_command, size_arguments
from sim.errors import UserError
from sim.progress import Progress
from sim.runs.owned import check_out, check_writable, refuse_foreign
from sim.validation import history
from sim.validation.calibrate import calibrate, parse_parameter, report, write_proposal
from sim.validation.plausible import META, TABLE, load_plausible, write_plausible

PROG = "clientsim-calibrate"
DEFAULT_OUT = Path("calibration.yaml")


def parser() -> Parser:
    """The command line of ``clientsim-calibrate``."""
    p = Parser(
        prog=PROG,
        description="Search parameters (KEY=LOW:HIGH; default: the set in "
        "sim/validation/targets.yaml) with a Latin hypercube to bring the calibrated stylised "
        "facts inside their targets. Prints each target's distance before (the defaults) and "
        "after (the best sample) and writes the proposal as YAML. With --plausible DIR: "
        "history matching with Gaussian-process emulators, in waves of --samples runs (one "
        "seed each), writes the set of parameter vectors consistent with the targets to DIR. "
        "Other overrides (KEY=VALUE) hold for every run.",
        epilog="Examples: clientsim-calibrate --samples 40 --clients 2000 --weeks 156 "
        "clients.wom.p_negative=0.05:0.25 clients.reviews.floor=0:0.15; "
        "clientsim-calibrate --plausible results/plausible --waves 3 --samples 150 "
        "--clients 5000 --weeks 260",
    )
    size_arguments(p, 2, 2000, 156)
    p.add_argument(
        "--samples",
        type=int,
        default=20,
        help="Latin hypercube points; with --plausible, runs per wave (%(default)s)",
    )
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the hypercube")
    p.add_argument("--out", type=Path, help="the proposal file, replaced if it exists (default: "
                   f"{DEFAULT_OUT}, which replaces only a file clientsim wrote)")  # fmt: skip
    p.add_argument(
        "--plausible",
        type=Path,
        metavar="DIR",
        help=f"history matching: write the plausible set ({TABLE}, {META}) to DIR "
        "(replacing only files clientsim wrote); --seeds does not apply: each run "
        "has its own seed",
    )
    p.add_argument("--waves", type=int, help="with --plausible: waves of runs (3)")
    p.add_argument(
        "--candidates",
        type=int,
        default=history.CANDIDATES,
        help="with --plausible: candidates the emulators screen per wave (%(default)s)",
    )
    p.add_argument("--facts", help="with --plausible: the calibrated facts to match, "
                   "comma-separated (default: every one)")  # fmt: skip
    p.add_argument(
        "--confirm",
        type=int,
        default=3,
        metavar="N",
        help="with --plausible: rerun the set's vectors at N new seeds and keep those "
        "whose mean facts meet the targets (%(default)s; 0: not confirmed)",
    )
    p.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="SET",
        help="with --plausible: run no waves; confirm the plausible set in the "
        "folder SET (at its size and overrides) and write the confirmed set to DIR",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``clientsim-calibrate``; returns the exit code."""
    return run_command(PROG, _calibrate, argv)


def _calibrate(argv: list[str]) -> None:
    args = parser().parse_intermixed_args(argv)
    if args.samples < 1 or args.jobs == 0:
        raise UserError("--samples must be at least 1 and --jobs not 0")
    if args.plausible is not None:
        return _plausible(args, argv)
    if args.waves is not None or args.facts is not None or args.source is not None:
        raise UserError("--waves, --facts and --from go with --plausible")
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


def _plausible(args, argv: list[str]) -> None:
    """History matching: the waves' lines, the set's table, both files in args.plausible."""
    waves = 3 if args.waves is None else args.waves
    if waves < 1 or args.candidates < 1 or args.confirm < 0:
        raise UserError("--waves and --candidates must be at least 1, --confirm at least 0")
    if args.out is not None or any(a == "--seeds" or a.startswith("--seeds=") for a in argv):
        raise UserError("--out and --seeds do not go with --plausible (each run has its own seed)")
    folder = args.plausible
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--plausible {folder}: not a directory")
    check_writable(folder, folder, "--plausible")
    refuse_foreign([folder / TABLE, folder / META], f"--plausible {folder}")
    command = " ".join([PROG, *argv])
    if args.source is not None:
        table, meta = _confirm_set(args, command)
    else:
        table, meta = _history_match(args, waves, command)
    print(history.report(table, meta))
    write_plausible(table, meta, folder)
    print(f"{PROG}: plausible set ({meta['size']} vectors) written to {folder}", file=sys.stderr)


def _history_match(args, waves: int, command: str):
    facts = None if args.facts is None else [f.strip() for f in args.facts.split(",") if f.strip()]
    table, meta = history.history_match(
        args.overrides, waves=waves, samples=args.samples, clients=args.clients,
        weeks=args.weeks, jobs=args.jobs, sample_seed=args.sample_seed,
        candidates=args.candidates, facts=facts, confirm_seeds=args.confirm,
        progress=lambda stage: Progress(f"{PROG}: {stage}"),
        on_wave=lambda summary: print(history.wave_line(summary), flush=True),
    )  # fmt: skip
    meta["settings"] = {
        "waves": waves, "samples_per_wave": args.samples, "clients": args.clients,
        "weeks": args.weeks, "seeds": "one per run: the n-th run overall has seed n",
        "sample_seed": args.sample_seed, "candidates": args.candidates,
        "confirm": args.confirm,
        "overrides": [o for o in args.overrides if parse_parameter(o) is None],
    }  # fmt: skip
    meta["command"] = command
    return table, meta


def _confirm_set(args, command: str):
    """Confirm the set in --from at new seeds, at the size and overrides it was made with."""
    if args.confirm < 1:
        raise UserError("--from needs --confirm of at least 1")
    found = load_plausible(args.source)
    settings, first = found.meta.get("settings", {}), int(found.meta.get("runs", 0))
    earlier = found.meta.get("confirmation", {}).get("seeds", [])
    first = max([first, *(s + 1 for s in earlier)])  # new seeds: no run so far shares one
    table, meta = history.confirm(
        found.table, found.meta, seeds=list(range(first, first + args.confirm)),
        clients=settings.get("clients", args.clients), weeks=settings.get("weeks", args.weeks),
        overrides=settings.get("overrides", []), jobs=args.jobs,
        progress=Progress(f"{PROG}: confirmation"),
    )  # fmt: skip
    meta["confirmation"]["command"] = command
    return table, meta


if __name__ == "__main__":
    raise SystemExit(main())
