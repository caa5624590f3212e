"""``clientsim-calibrate``: search parameters to bring the stylised facts inside their targets.

A Latin hypercube sample (``scipy.stats.qmc.LatinHypercube``) over the parameters' ranges,
each point run over the same seeds (common random numbers, so points differ by their
parameters, not their luck), and selection: the point of least distance, the sum over the
calibrated facts of how far each fact's mean over seeds lies outside its range, in units of
the bound it misses (``sim.validation.facts.Target.distance``). The current defaults are
measured the same way first. Nothing in ``configs/`` changes: the proposal is a YAML of overrides
with each target's value and distance before and after, for a person to judge.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf
from scipy.stats import qmc

from sim.cli.facts import (
    UsageError,
    _config,
    _Parser,
    check_out,
    configure,
    measure,
    record_outputs,
    refuse_foreign,
    size_arguments,
)
from sim.config.schema import ConfigError
from sim.validation.facts import Target, calibration_parameters, load_targets

DEFAULT_OUT = Path("calibration.yaml")


def parse_parameter(text: str) -> tuple[str, float, float] | None:
    """``key=low:high`` as (key, low, high); None if `text` is not of that form."""
    key, sep, span = text.partition("=")
    low, colon, high = span.partition(":")
    if not sep or not colon:
        return None
    try:
        low_value, high_value = float(low), float(high)
    except ValueError:
        return None
    if not low_value < high_value:
        raise UsageError(f"{text}: the low end must be below the high end")
    return key, low_value, high_value


def latin_hypercube(space: dict[str, tuple[float, float]], n: int, seed: int) -> pd.DataFrame:
    """`n` points of a Latin hypercube over `space` (key -> (low, high)), one row each."""
    unit = qmc.LatinHypercube(d=len(space), seed=seed).random(n)
    lows, highs = zip(*space.values(), strict=True)
    return pd.DataFrame(qmc.scale(unit, lows, highs), columns=list(space))


def distances(values: pd.DataFrame, targets: dict[str, Target]) -> pd.DataFrame:
    """Per variant and fact: the mean over seeds and its distance to the target."""
    means = values.groupby(["variant", "fact"], sort=False)["value"].mean().reset_index()
    pairs = zip(means["fact"], means["value"], strict=True)
    means["distance"] = [targets[fact].distance(value) for fact, value in pairs]
    return means


def _variant(point: pd.Series, integer: set[str]) -> dict:
    return {k: int(round(v)) if k in integer else float(v) for k, v in point.items()}


def _space(args, defaults) -> dict[str, tuple[float, float]]:
    """The search space from the command line (else the targets file's), its ends checked."""
    given = {p[0]: p[1:] for p in map(parse_parameter, args.overrides) if p is not None}
    space = given or {k: (lo, hi) for k, (lo, hi, _) in calibration_parameters().items()}
    for end in (0, 1):
        configure(defaults, {k: span[end] for k, span in space.items()})
    return space


def calibrate(args) -> dict:
    """Measure the defaults and every sample; return the proposal (a plain dict)."""
    targets = {k: t for k, t in load_targets().items() if t.calibrate}
    base = [o for o in args.overrides if parse_parameter(o) is None]
    size = [f"market.n_clients={args.clients}", f"steps={args.weeks}"]
    defaults = _config([*base, *size])
    space = _space(args, defaults)
    integer = {k for k in space if isinstance(OmegaConf.select(defaults, k), int)}
    points = latin_hypercube(space, args.samples, args.sample_seed)
    points[list(integer)] = points[list(integer)].round()
    variants = [{}, *(_variant(row, integer) for _, row in points.iterrows())]
    values, _ = measure(
        targets, overrides=base, seeds=range(args.seeds), clients=args.clients,
        weeks=args.weeks, jobs=args.jobs, variants=variants, progress="clientsim-calibrate",
    )  # fmt: skip
    table = distances(values, targets)
    total = table.groupby("variant")["distance"].sum()
    best = int(total.idxmin())  # 0: no sample beats the defaults
    chosen = points.loc[best - 1] if best else {k: OmegaConf.select(defaults, k) for k in space}
    before, after = (table[table["variant"] == v].set_index("fact") for v in (0, best))
    return {
        "reason": f"least total distance to the calibrated targets of {args.samples} Latin "
        f"hypercube samples, {args.clients} clients x {args.weeks} weeks, seeds 0-"
        f"{args.seeds - 1}; check it at full size (clientsim-facts) before adopting it"
        + ("" if best else "; no sample beat the defaults, which are kept"),
        "proposal": {k: _plain(chosen[k]) for k in space},
        "defaults": {k: _plain(OmegaConf.select(defaults, k)) for k in space},
        "distance": {"before": float(total[0]), "after": float(total[best])},
        "targets": {
            name: {
                "range": t.range_text(), "before": _plain(before.loc[name, "value"]),
                "after": _plain(after.loc[name, "value"]),
                "distance_before": float(before.loc[name, "distance"]),
                "distance_after": float(after.loc[name, "distance"]),
            }
            for name, t in targets.items()
        },  # fmt: skip
        "search": {k: list(span) for k, span in space.items()},
        "settings": {"samples": args.samples, "seeds": args.seeds, "clients": args.clients,
                     "weeks": args.weeks, "sample_seed": args.sample_seed, "overrides": base},
        "samples": [{**{k: _plain(v) for k, v in row.items()}, "distance": float(total[i + 1])}
                    for i, row in points.iterrows()],
    }  # fmt: skip


def _plain(x):
    x = x.item() if isinstance(x, np.generic) else x
    return None if isinstance(x, float) and np.isnan(x) else x


def report(proposal: dict) -> str:
    """The before/after table of a proposal, and its overrides."""
    lines = [f"{'target':<26} {'range':>10} {'before':>9} {'dist':>6} {'after':>9} {'dist':>6}"]
    for name, t in proposal["targets"].items():
        b, a = (f"{v:.3g}" if v is not None else "nan" for v in (t["before"], t["after"]))
        lines.append(f"{name:<26} {t['range']:>10} {b:>9} {t['distance_before']:>6.2f} "
                     f"{a:>9} {t['distance_after']:>6.2f}")  # fmt: skip
    d = proposal["distance"]
    lines.append(f"{'total':<26} {'':>10} {'':>9} {d['before']:>6.2f} {'':>9} {d['after']:>6.2f}")
    lines.append("proposal: " + " ".join(f"{k}={v:.4g}" for k, v in proposal["proposal"].items()))
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line of ``clientsim-calibrate``."""
    p = _Parser(
        prog="clientsim-calibrate",
        description="Search parameters (KEY=LOW:HIGH; default: the set in "
        "sim/validation/targets.yaml) with a Latin hypercube to bring the calibrated stylised "
        "facts inside their targets. "
        "Prints each target's distance before (the defaults) and after (the best sample) and "
        "writes the proposal as YAML. Other overrides (KEY=VALUE) hold for every run.",
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
    """Entry point of ``clientsim-calibrate``."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_intermixed_args(argv)
        if args.samples < 1 or args.jobs == 0:
            raise UsageError("--samples must be at least 1 and --jobs not 0")
        if args.out is None:  # not named: it must not replace a user's file
            args.out = DEFAULT_OUT
            refuse_foreign([args.out], f"--out {args.out} (the default)")
        check_out(args.out, ".yaml")
        proposal = calibrate(args)
    except (UsageError, ConfigError) as error:
        print(f"clientsim-calibrate: error: {error}", file=sys.stderr)
        return 2
    print(report(proposal))
    proposal["command"] = " ".join(["clientsim-calibrate", *argv])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump(proposal, sort_keys=False, allow_unicode=True))
    record_outputs([args.out])
    print(f"clientsim-calibrate: proposal written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
