"""``clientsim-facts``: measure the stylised facts over seeds and compare them with their targets.

Every run is in memory (``sim.runs.run.simulate``), one per (market, seed), in parallel with
joblib; only the facts' values and the whale curves come back. The table says, per fact, its
mean ± s.d. over seeds, its target range, whether the mean is inside, and its source.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf, open_dict

from sim.config.checks import validate
from sim.config.compose import CONFIG_DIR, compose_checked, first_line
from sim.config.schema import ConfigError
from sim.runs.output import unwritable
from sim.runs.record import clients_frame, package_version, write_json, write_parquet
from sim.runs.summary import WHALE_WHO, whale_curve
from sim.validation.facts import FACTS, MARKETS, Frames, Target, derive, load_targets, needed

FULL_SIZE = (5000, 260)  # clients, weeks: the validation plan's size
WHALE_GRID = np.linspace(0.0, 1.0, 101)  # client shares at which whale curves are stored


class UsageError(Exception):
    """A bad command line (exit 2, one line)."""


def market_configs(
    overrides: list[str], *, clients: int, weeks: int, markets: Iterable[str] = MARKETS
) -> dict[str, DictConfig]:
    """The config of each market (``MARKETS``), validated; raise UsageError on a bad one."""
    size = [f"market.n_clients={clients}", f"steps={weeks}", "progress=false"]
    try:
        base = _config([*overrides, *size])
        mix = dict(base.market.policy_mix)
        return {m: configure(base, MARKETS[m](mix)) for m in markets}
    except ConfigError as error:
        raise UsageError(str(error)) from None


def _config(overrides: list[str]) -> DictConfig:
    cfg = compose_checked(overrides, CONFIG_DIR, "config")
    with open_dict(cfg):
        cfg.pop("hydra")
    validate(cfg)
    return cfg


def configure(cfg: DictConfig, variant: dict | None = None, seed: int | None = None) -> DictConfig:
    """A copy of `cfg` with `variant`'s keys (and the seed) set, validated (else ConfigError).

    Cheaper than composing again (a calibration has hundreds of runs); keys, not groups.
    """
    out = copy.deepcopy(cfg)
    changes = {**(variant or {}), **({} if seed is None else {"seed": seed})}
    for key, value in changes.items():
        try:
            OmegaConf.update(out, key, value, merge=False)
        except Exception as error:  # OmegaConf: an unknown key or a wrong type
            raise ConfigError(key, value, first_line(error)) from None
    validate(out)
    return out


def run_market(cfg: DictConfig, names: list[str]) -> tuple[dict, list[dict]]:
    """One run: the facts `names` it gives, and its whale curve (both counts of clients)."""
    from sim.runs.run import simulate  # in the worker: joblib imports it there

    model, recorder = simulate(cfg)
    frames = Frames(recorder.market_frame(), recorder.steps_frame(), clients_frame(model))
    values = {name: FACTS[name].measure(frames) for name in names}
    whale = []
    for who in WHALE_WHO:
        curve = whale_curve(frames.clients, who=who)
        share = np.interp(WHALE_GRID, [0.0, *curve["client_share"]], [0.0, *curve["profit_share"]])
        whale += [{"who": who, "client_share": x, "profit_share": y}
                  for x, y in zip(WHALE_GRID, share, strict=True)]  # fmt: skip
    return values, whale


def measure(
    names: Iterable[str],
    *,
    overrides: list[str],
    seeds: Iterable[int],
    clients: int,
    weeks: int,
    jobs: int = -1,
    variants: list[dict] | None = None,
    progress: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The facts `names` over seeds: (one row per variant, seed and fact; the whale curves).

    Only the markets the facts need are run. Each variant is a dict of config keys set last
    (``clientsim-calibrate``'s samples; default one variant, none). All runs of all variants
    go to one pool. With `progress` (a program name), a line on stderr every few runs.
    """
    names, seeds = list(names), list(seeds)
    variants = [{}] if variants is None else variants
    by_market = needed(names)
    markets = market_configs(overrides, clients=clients, weeks=weeks, markets=by_market)
    tasks = [(v, m, seed) for v in range(len(variants)) for m in by_market for seed in seeds]
    try:
        calls = [
            delayed(_tagged)(v, m, seed, configure(markets[m], variants[v], seed), by_market[m])
            for v, m, seed in tasks
        ]
    except ConfigError as error:
        raise UsageError(str(error)) from None
    measured = {(v, seed): {} for v in range(len(variants)) for seed in seeds}
    whale, started, every = [], time.monotonic(), max(1, len(tasks) // 20)
    results = Parallel(n_jobs=jobs, return_as="generator_unordered")(calls)
    for done, (v, market, seed, values, curve) in enumerate(results, 1):
        measured[v, seed].update(values)
        whale += [{"variant": v, "market": market, "seed": seed, **row} for row in curve]
        if progress and (done % every == 0 or done == len(tasks)):
            elapsed = time.monotonic() - started
            print(f"{progress}: {done}/{len(tasks)} runs, {elapsed:.0f} s", file=sys.stderr,
                  flush=True)  # fmt: skip
    rows = [
        {"variant": v, "seed": seed, "fact": name, "value": value}
        for (v, seed), values in measured.items()
        for name, value in derive(values, names).items()
    ]
    return pd.DataFrame(rows), pd.DataFrame(whale)


def _tagged(variant: int, market: str, seed: int, cfg: DictConfig, names: list[str]):
    values, whale = run_market(cfg, names)
    return variant, market, seed, values, whale


def summary(values: pd.DataFrame, targets: dict[str, Target]) -> pd.DataFrame:
    """One row per fact: mean, s.d., min, max over seeds (NaNs left out), target, inside."""
    rows = []
    for name, group in values.groupby("fact", sort=False):
        x = group["value"].astype(float)
        target, mean = targets[name], x.mean()
        rows.append({
            "fact": name, "mean": mean, "sd": x.std(ddof=1), "min": x.min(), "max": x.max(),
            "seeds": int(x.notna().sum()), "of": len(x), "target": target.range_text(),
            "inside": target.inside(mean), "distance": target.distance(mean),
            "source": target.source, "citation": target.citation,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _number(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{x:.3g}" if abs(x) < 10 else f"{x:.0f}"


def markdown(table: pd.DataFrame, command: str) -> str:
    """The table as markdown, with the command that made it."""
    lines = [
        f"Made by `{command}`.", "",
        "| fact | mean ± s.d. | min–max | seeds | target | inside | distance | source | citation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in table.itertuples():
        inside = "reported" if r.target == "reported" else "yes" if r.inside else "**no**"
        seeds = f"{r.seeds}" if r.seeds == r.of else f"{r.seeds} of {r.of}"
        lines.append(
            f"| {r.fact} | {_number(r.mean)} ± {_number(r.sd)} | {_number(r.min)}–"
            f"{_number(r.max)} | {seeds} | {r.target} | {inside} | {r.distance:.2f} | "
            f"{r.source} | {r.citation} |"
        )
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints the usage too)
        raise UsageError(message)


def positive(text: str) -> int:
    """An integer ≥ 1 (argparse type)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def check_out(out: Path, kind: str) -> None:
    """Raise UsageError unless the file `out` (a `kind` file, e.g. ".md") can be written."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name ({kind})")
    check_writable(out.absolute().parent, out)


def check_writable(folder: Path, out: Path, option: str = "--out") -> None:
    """Raise UsageError unless files can be written in `folder` (made if absent) for `option out`.

    Checked before anything is computed (`sim.runs.output.unwritable`).
    """
    reason = unwritable(folder)
    if reason is not None:
        raise UsageError(f"{option} {out}: {reason}")


# --- files written beside the named one ------------------------------------------------
#
# A file the user names (`--out F`, `--figure F`) may be replaced: naming an output says so.
# A file a command writes beside it or inside a named folder (facts.json, morris.png,
# figures/paired.png) replaces an existing file only if clientsim wrote that file: each folder
# it writes into holds OUTPUTS, the SHA-256 of every file clientsim wrote there. A file that
# is not listed, or was changed since, is the user's: the command refuses before computing.

OUTPUTS = ".clientsim-outputs.json"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listed(folder: Path) -> dict[str, str] | None:
    """The files (name -> SHA-256) clientsim wrote in `folder`; None if OUTPUTS is not ours."""
    try:
        listing = json.loads((folder / OUTPUTS).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None
    files = listing.get("files") if isinstance(listing, dict) else None
    if listing.get("written_by") != "clientsim" or not isinstance(files, dict):
        return None
    return files


def not_ours(paths: Iterable[Path]) -> Path | None:
    """The first of `paths` that exists and that clientsim did not write there, else None.

    Args:
        paths: the files a command is about to write without the user naming them.
    """
    for path in paths:
        listed = _listed(path.parent)
        if listed is None:
            return path.parent / OUTPUTS
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            if path.is_file() and listed.get(path.name) == _digest(path):
                continue
        except OSError:
            pass
        return path
    return None


def refuse_foreign(paths: Iterable[Path], option: str) -> None:
    """Raise UsageError if writing `paths` would replace a file clientsim did not write.

    Args:
        paths: the files a command is about to write without the user naming them.
        option: the option that chose where they go, e.g. ``--out results/facts.md``.
    """
    found = not_ours(paths)
    if found is not None:
        what = "a directory" if found.is_dir() else "a file clientsim did not write"
        raise UsageError(f"{option}: would replace {found}, {what}; move it or choose another "
                         f"{option.split()[0]}")  # fmt: skip


def record_outputs(paths: Iterable[Path]) -> None:
    """Note in each folder's OUTPUTS that clientsim wrote `paths` (as they are now)."""
    by_folder: dict[Path, list[Path]] = {}
    for path in paths:
        by_folder.setdefault(path.parent, []).append(path)
    for folder, written in by_folder.items():
        listed = _listed(folder) or {}
        listed.update({path.name: _digest(path) for path in written})
        write_json(folder / OUTPUTS, {"written_by": "clientsim", "version": package_version(),
                                      "files": listed})  # fmt: skip


def size_arguments(parser: argparse.ArgumentParser, seeds: int, clients: int, weeks: int) -> None:
    """The options every fact-measuring command shares."""
    parser.add_argument("--seeds", type=positive, default=seeds, help="seeds 0..N-1 (%(default)s)")
    parser.add_argument("--clients", type=positive, default=clients, help="clients (%(default)s)")
    parser.add_argument("--weeks", type=positive, default=weeks, help="weeks (%(default)s)")
    parser.add_argument("--jobs", type=int, default=-1, help="parallel runs (-1: all cores)")
    parser.add_argument(
        "overrides", nargs="*", help="config overrides, e.g. clients.wom.p_negative=0.15"
    )


def parser() -> argparse.ArgumentParser:
    """The command line of ``clientsim-facts``."""
    p = _Parser(
        prog="clientsim-facts",
        description="Measure the stylised facts (sim/validation/targets.yaml) over seeds: "
        "the default market, a serve-all and a fit_filter market (whale curves), and the default "
        "market at demand/supply 2.5 (seller's market). Prints mean ± s.d. per fact against its "
        "target.",
        epilog="Example: clientsim-facts --seeds 10 --out docs/facts.md clients.wom.p_negative=.15",
    )
    size_arguments(p, 10, *FULL_SIZE)
    p.add_argument("--out", type=Path, help="write the table as markdown here (replaced if it "
                   "exists), the per-seed values beside it (.json) and the whale curves "
                   f"(.whale.parquet); those two replace only files clientsim wrote (listed in "
                   f"{OUTPUTS} in their folder), else the command refuses")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``clientsim-facts``."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_intermixed_args(argv)
        if args.jobs == 0:
            raise UsageError("--jobs must not be 0 (-1: all cores)")
        if args.out is not None:
            check_out(args.out, ".md")
            if args.out in beside(args.out):
                raise UsageError(f"--out {args.out}: the per-seed values go to the .json beside "
                                 "the table; give the table another suffix (.md)")  # fmt: skip
            refuse_foreign(beside(args.out), f"--out {args.out}")
        targets = load_targets()
        values, whale = measure(
            targets, overrides=args.overrides, seeds=range(args.seeds), clients=args.clients,
            weeks=args.weeks, jobs=args.jobs, progress="clientsim-facts",
        )  # fmt: skip
    except UsageError as error:
        print(f"clientsim-facts: error: {error}", file=sys.stderr)
        return 2
    table = summary(values, targets)
    command = " ".join(["clientsim-facts", *argv])
    text = markdown(table, command)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        per_seed = {"command": command, "values": values.to_dict("records"),
                    "summary": table.drop(columns="citation").to_dict("records")}  # fmt: skip
        values_file, whale_file = beside(args.out)
        write_json(values_file, _finite(per_seed))
        write_parquet(whale_file, whale)
        record_outputs([args.out, values_file, whale_file])
    return 0


def beside(out: Path) -> list[Path]:
    """The files ``--out out`` writes beside the table: per-seed values, whale curves."""
    return [out.with_suffix(".json"), out.with_suffix(".whale.parquet")]


def _finite(data):
    """NaN as None, numpy scalars as Python numbers (JSON has neither)."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    if isinstance(data, np.generic):
        data = data.item()
    return None if isinstance(data, float) and math.isnan(data) else data


if __name__ == "__main__":
    raise SystemExit(main())
