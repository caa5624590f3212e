"""`make results`: every experiment at full size, its figures, and docs/RESULTS.md.

    python -m sim.cli.report --run              # run (or resume) every experiment, then write
    python -m sim.cli.report                    # write docs/RESULTS.md from the last runs
    python -m sim.cli.report --run --only mix   # one experiment
    python -m sim.cli.report --run --plausible 0  # no runs over the plausible set

The front end of `sim.analysis.report.write_results`: each experiment runs as
`clientsim-experiment run NAME --dir results/NAME/make-results` (resumed by a rerun), then
every claim is judged and docs/RESULTS.md written. The headline experiments also run at
`--plausible` vectors of the plausible set, `--plausible-seeds` seeds each, as
`clientsim-experiment plausible NAME` does (`sim.explore.verdicts`, resumed from
results/NAME/plausible/NxS-draw0/); beside each of their verdicts, the share of plausible
markets where the claim holds. Without `--run`, those already run at that size are shown.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from sim.analysis.report import DOCS, RESULTS_DIR, SWEEP_NAME, by_hypothesis, write_results
from sim.cli import experiment
from sim.cli.common import Parser, add_plausible_draw, positive, run_command
from sim.errors import UserError
from sim.explore import files, verdict_text, verdicts
from sim.runs.owned import record_outputs, refuse_foreign
from sim.sweeps.experiment import names
from sim.validation.docking_figures import plot_sweep
from sim.validation.plausible import PlausibleSet, load_plausible
from sim.validation.sensitivity import STUDY_BASE

PROG = "python -m sim.cli.report"


def parser() -> Parser:
    """The command line of `python -m sim.cli.report`."""
    p = Parser(prog=PROG, description=__doc__.split("\n")[0].replace("`", ""))
    p.add_argument("--run", action="store_true", help="run (or resume) the experiments first")
    p.add_argument("--only", nargs="*", help="run these experiments only")
    p.add_argument("--jobs", type=positive, help="parallel jobs (default: the cores)")
    add_plausible_draw(p, "--plausible", "--plausible-seeds", "--plausible-set", type=int,
                       help="the headline experiments also at N vectors of the plausible set "
                       "(default %(default)s: each of the shipped set's once; 0: not)")  # fmt: skip
    p.add_argument("--map", type=Path, nargs="*", metavar="DIR",
                   help="the clientsim-explore maps set after the findings (default: every "
                   "results/explore*/ folder that holds one, by name)")  # fmt: skip
    p.add_argument("--plausible-size", nargs="*", default=[], metavar="NAME=NxS",
                   help="an experiment at N vectors x S seeds instead, e.g. instruments=8x2 "
                   "(its 64 cells make it the costly one)")  # fmt: skip
    return p


def sizes(args) -> dict[str, tuple[int, int]]:
    """Each headline experiment's (vectors, seeds) over the plausible set (none at 0 vectors).

    --plausible-size's, else --plausible and --plausible-seeds; UserError on a malformed size.
    """
    found = {name: (args.plausible, args.plausible_seeds) for name in verdicts.HEADLINE}
    for text in args.plausible_size:
        name, _, size = text.partition("=")
        vectors, _, seeds = size.partition("x")
        if name not in found or not (vectors.isdigit() and seeds.isdigit() and int(seeds)):
            allowed = ", ".join(verdicts.HEADLINE)
            raise UserError(f"--plausible-size {text}: NAME=NxS with NAME one of {allowed} "
                            "and S >= 1, e.g. instruments=8x2")  # fmt: skip
        found[name] = (int(vectors), int(seeds))
    return {name: size for name, size in found.items() if size[0]}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m sim.cli.report`; returns the exit code."""
    return run_command(PROG, _report, argv)


def _report(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.plausible < 0:
        raise UserError(f"--plausible {args.plausible}: a number of vectors >= 0 (0: none)")
    chosen = args.only or names()
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    found = plausible_set(args.plausible_set) if args.run and sizes(args) else None
    for name in chosen if args.run else []:
        sweep_dir = RESULTS_DIR / name / SWEEP_NAME
        code = experiment.main(["run", name, "--dir", str(sweep_dir), *jobs])
        if code:
            return code
    size = sizes(args)
    if found is not None:
        run_plausible(found, size, [n for n in chosen if n in size], jobs)
    tables = plausible_tables(size)
    chosen_set = f" --plausible-set {args.plausible_set}" if args.plausible_set else ""
    if args.plausible_size:
        chosen_set += " --plausible-size " + " ".join(args.plausible_size)
    command = (f"python -m sim.cli.report --run --plausible {args.plausible} "
               f"--plausible-seeds {args.plausible_seeds}{chosen_set}")  # fmt: skip
    plausible = verdict_text.findings_column(tables) if tables else None
    section = verdict_text.results_section(tables, command) if tables else ""
    every = by_hypothesis(names())  # every experiment, whichever ran now
    print(write_results(every, draw=plot_sweep, plausible=plausible, plausible_section=section,
                        map_section=maps_section(args.map)))  # fmt: skip
    print(json.dumps({"experiments": chosen, "plausible": sorted(tables)}))
    return 0


def maps_section(folders: list[Path] | None, figures: Path = DOCS / "figures") -> str:
    """RESULTS.md's maps: of `folders`, or of every results/explore*/ holding one."""
    if folders is None:
        folders = sorted(RESULTS_DIR.glob("explore*"))
    found = [text for folder in folders if (text := map_section(folder, figures))]
    return "\n\n".join(found)


def map_section(folder: Path, figures: Path = DOCS / "figures") -> str:
    """RESULTS.md's section on where filtering pays, from a clientsim-explore folder ("" if none).

    The map's figure is copied to `figures`/<folder's name>.png (replaced only if clientsim
    wrote it).
    """
    if not (folder / "points.parquet").is_file():
        return ""
    found = files.read(folder)
    figure = figures / f"{folder.name}.png"
    refuse_foreign([figure], str(figure))
    figure.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "map.png", figure)
    record_outputs([figure])
    space = ", ".join(found.conditions)
    base = [o for o in found.settings.get("overrides", []) if o not in STUDY_BASE]
    given = f" (with {', '.join(base)})" if base else ""
    return "\n".join([
        f"## Where does filtering pay? A map over {space}{given}", "",
        "`clientsim-explore` samples market conditions (a Latin hypercube)"
        + (", with each a parameter vector of the plausible set," if found.parameters else ",")
        + " runs fit_filter against serve_all in the same market over common seeds, and finds "
        "with PRIM (ema_workbench) the boxes of conditions where filtering pays, and where it "
        "loses (docs/EXPLORE.md).", "",
        files.markdown(found).rstrip("\n"), "",
        f"![Where filtering pays](figures/{figure.name})",
    ])  # fmt: skip


def plausible_set(path: str | None) -> PlausibleSet:
    """The plausible set at `path` (None: the shipped one); a UserError says how to skip it."""
    try:
        return load_plausible(path)
    except UserError as error:
        raise UserError(f"{error} (--plausible 0: no runs over the plausible set)") from None


def plausible_dir(name: str, vectors: int, seeds: int) -> Path:
    """Where `make results` keeps an experiment's runs over the plausible set."""
    return verdicts.default_dir(RESULTS_DIR, name, vectors, seeds, 0)


def run_plausible(
    found: PlausibleSet, size: dict[str, tuple[int, int]], chosen: list[str], jobs: list[str]
) -> None:
    """Run (or resume) each of `chosen` at its `size` (vectors, seeds) of the set `found`."""
    for name in chosen:
        vectors, seeds = size[name]

        def run_sweep(where: Path, overrides: list[str], name: str = name) -> int:
            code = experiment.main(["run", name, "--dir", str(where), *jobs, *overrides])
            if code:  # the sweep said why
                raise SystemExit(code)
            return code

        verdicts.run_vectors(name, found, vectors=vectors, seeds=seeds, seed=0,
                             out=plausible_dir(name, vectors, seeds), overrides=[],
                             run_sweep=run_sweep)  # fmt: skip


def plausible_tables(size: dict[str, tuple[int, int]]) -> dict[str, pd.DataFrame]:
    """The per-vector gaps of each headline experiment run over the plausible set at its size."""
    files = {name: plausible_dir(name, *size[name]) / verdicts.GAPS for name in size}
    return {name: pd.read_parquet(file) for name, file in files.items() if file.is_file()}


if __name__ == "__main__":
    raise SystemExit(main())
