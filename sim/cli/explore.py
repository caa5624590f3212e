"""`clientsim-explore`: where does filtering pay? A map of market conditions, with PRIM's boxes.

    clientsim-explore --out results/explore             # the default space, 500 x 4 runs
    clientsim-explore --smoke --out /tmp/explore        # seconds: a tiny market
    clientsim-explore --samples 200 --seeds 3 --plausible shipped --space
        market.demand_supply_ratio=0.5:2 market.policy_mix.fit_filter=1:9 --out results/mix

Samples a Latin hypercube over the space (KEY=LOW:HIGH config keys; default: demand/supply,
the difficult clients' share, word of mouth, the number of fit_filter among ten businesses),
runs each sample's market for --seeds seeds (the same for all), and compares fit_filter with
serve_all by their mean cumulative profit per business at the horizon. PRIM finds the boxes
where filtering pays. Writes samples.parquet, points.parquet, boxes.csv, map.png (or .svg),
manifest.json and summary.md into --out, replacing only files clientsim wrote there.
Overrides (Hydra syntax) change the base market. A bad value exits with code 2 and one line.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from sim.cli.common import Parser, parse_with_overrides, positive, run_command
from sim.errors import UserError
from sim.explore import files
from sim.explore.boxes import MAX_BOXES, OUTCOMES, THRESHOLD
from sim.explore.figure import DEFAULT_AXES
from sim.explore.map import explore
from sim.explore.space import DEFAULT_SPACE
from sim.progress import Progress
from sim.runs.owned import check_writable, refuse_foreign
from sim.validation.plausible import PlausibleSet, load_plausible

PROG = "clientsim-explore"
#: --smoke: a market small enough for a test (seconds); options given explicitly win.
SMOKE = {"samples": 12, "seeds": 2, "clients": 300, "weeks": 20}
DEFAULTS = {"samples": 500, "seeds": 4, "clients": None, "weeks": None}


def parser() -> Parser:
    """The command line of `clientsim-explore`."""
    p = Parser(prog=PROG, description=__doc__.split("\n")[0].replace("`", ""),
               epilog=__doc__.split("\n", 2)[2],
               formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--space", nargs="+", metavar="KEY=LOW:HIGH",
                   help=f"the conditions sampled (default: {' '.join(DEFAULT_SPACE)}); "
                   "it takes the words after it: give overrides before it or after --")  # fmt: skip
    p.add_argument("--samples", type=positive, help=f"markets sampled (default "
                   f"{DEFAULTS['samples']})")  # fmt: skip
    p.add_argument("--seeds", type=positive, help=f"seeds per market (default {DEFAULTS['seeds']})")
    p.add_argument("--clients", type=positive, help="market.n_clients (default: the config's)")
    p.add_argument("--weeks", type=positive, help="steps, the horizon (default: the config's)")
    p.add_argument("--plausible", default="none", metavar="PATH|shipped|none",
                   help="draw a parameter vector per market from a plausible set: its folder, "
                   "the one shipped, or none (default none: the model's defaults)")  # fmt: skip
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--jobs", type=positive, default=os.cpu_count() or 1,
                   help="markets run in parallel (default: the cores)")  # fmt: skip
    p.add_argument("--axes", nargs=2, metavar=("X", "Y"),
                   help="the figure's two axes, keys of the space or of the plausible set "
                   "(default: demand/supply and the fit_filter count if sampled, else the "
                   "space's first two keys)")  # fmt: skip
    p.add_argument("--threshold", type=float, default=THRESHOLD,
                   help=f"least density of a box (default {THRESHOLD})")  # fmt: skip
    p.add_argument("--boxes", type=positive, default=MAX_BOXES,
                   help=f"at most this many boxes (default {MAX_BOXES})")  # fmt: skip
    p.add_argument("--format", choices=["png", "svg"], default="png", help="the figure's format")
    p.add_argument("--out", type=Path, default=Path("results/explore"),
                   help="folder of the results (default results/explore)")  # fmt: skip
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny map in seconds: " + ", ".join(f"{k} {v}" for k, v in SMOKE.items()),
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the base market")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `clientsim-explore`; returns the exit code."""
    return run_command(PROG, _explore, argv)


def plausible_set(text: str) -> PlausibleSet | None:
    """The plausible set `--plausible` names: a folder or file, ``shipped``, or ``none``."""
    if text == "none":
        return None
    return load_plausible(None if text == "shipped" else text)


def figure_axes(given, space: list[str], plausible: PlausibleSet | None) -> tuple[str, str]:
    """The figure's axes: `given` (checked), else the default ones if sampled, else the first two.

    Raises:
        UserError: an axis that is not a key of the space or the plausible set, or fewer than
            two keys to choose from.
    """
    keys = [t.partition("=")[0] for t in space] + (plausible.parameters if plausible else [])
    keys = list(dict.fromkeys(keys))
    for axis in given or ():
        if axis not in keys:
            raise UserError(f"--axes {axis}: not a key of the space ({', '.join(keys)})")
    if given:
        return tuple(given)
    if set(DEFAULT_AXES) <= set(keys):
        return DEFAULT_AXES
    if len(keys) < 2:
        raise UserError(f"--space {' '.join(space)}: the figure needs two keys; give another")
    return tuple(keys[:2])


def _explore(argv: list[str]) -> None:
    args = parse_with_overrides(parser(), argv)
    sizes = {k: getattr(args, k) for k in DEFAULTS}
    sizes = {k: v if v is not None else (SMOKE if args.smoke else DEFAULTS)[k]
             for k, v in sizes.items()}  # fmt: skip
    if not 0 < args.threshold <= 1:
        raise UserError(f"--threshold {args.threshold}: must be in (0, 1]")
    plausible = plausible_set(args.plausible)
    space = args.space or list(DEFAULT_SPACE)
    axes = figure_axes(args.axes, space, plausible)
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out}: is a file, not a folder")
    check_writable(args.out.absolute(), args.out)
    refuse_foreign(files.outputs(args.out, args.format), f"--out {args.out}")
    runs = sizes["samples"] * sizes["seeds"]
    print(f"{PROG}: {sizes['samples']} markets x {sizes['seeds']} seeds = {runs} runs, "
          f"{args.jobs} at a time -> {args.out}", flush=True)  # fmt: skip
    found = explore(space, **sizes, plausible=plausible, sample_seed=args.sample_seed,
                    jobs=args.jobs, progress=Progress(PROG), overrides=args.overrides,
                    threshold=args.threshold, max_boxes=args.boxes)  # fmt: skip
    command = " ".join([PROG, *map(shlex.quote, argv)])
    paths = files.write(found, args.out, axes=axes, command=command,
                        figure_format=args.format)  # fmt: skip
    boxes = found.boxes.groupby("outcome")["box"].nunique().reindex(OUTCOMES, fill_value=0)
    print(f"{PROG}: filtering pays in {found.share_pays:.0%} of the markets; boxes where it "
          f"pays: {boxes['pays']}, where it loses: {boxes['loses']}")  # fmt: skip
    print(f"{PROG}: wrote {', '.join(p.name for p in paths)} in {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
