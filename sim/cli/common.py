"""What every console script shares: the parser, the one-line errors, the common options.

A front end is `main(argv) -> int`: it parses its command line with `Parser`, calls one
library function and prints. `run_command` turns a `UserError` into one line on stderr and
exit code 2, and Ctrl-C into exit code 130, so no user mistake ends in a traceback. Progress
is shown by `sim.progress.Progress` (the library's runs show theirs too).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from sim.errors import UserError

INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


class Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes are a `UserError` (one line), not argparse's usage."""

    def error(self, message: str) -> NoReturn:
        """Raise the mistake as a UserError."""
        raise UserError(message)


def parse_with_overrides(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse options and config overrides (KEY=VALUE), which may also follow the options.

    The overrides found after the options are appended to ``args.overrides``; anything else
    unknown is a `UserError`.
    """
    args, extra = parser.parse_known_args(argv)
    unknown = [e for e in extra if e.startswith("-") or "=" not in e]
    if unknown:
        raise UserError(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [*getattr(args, "overrides", []), *extra]
    return args


def fail(prog: str, message: str, code: int = 2) -> NoReturn:
    """Print `prog: message` on stderr and exit with `code`."""
    print(f"{prog}: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_command(
    prog: str, body: Callable[[list[str]], int | None], argv: list[str] | None = None
) -> int:
    """Run a front end's `body` on `argv` (default: the process's arguments); return its exit code.

    A `UserError` is printed as `prog: message` on stderr (exit code 2), Ctrl-C as
    `prog: interrupted` (130); a `SystemExit` raised inside (Hydra's, a sweep's) gives its code.
    A reader that leaves (`clientsim-experiment list | head`) ends the output quietly.
    """
    try:
        code = body(sys.argv[1:] if argv is None else argv) or 0
        sys.stdout.flush()  # here, where a reader that left is caught, not at the exit
        return code
    except BrokenPipeError:  # nothing more to print; Python must not fail flushing stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UserError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; nothing written", file=sys.stderr)
        return INTERRUPTED
    except SystemExit as stop:  # sys.exit(): 0; sys.exit("message"): 1
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1


def positive(text: str) -> int:
    """An integer >= 1 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: must be an integer >= 1")
    return value


def size_arguments(parser: argparse.ArgumentParser, seeds: int, clients: int, weeks: int) -> None:
    """The options every fact-measuring command shares (clientsim-facts, clientsim-calibrate)."""
    parser.add_argument("--seeds", type=positive, default=seeds, help="seeds 0..N-1 (%(default)s)")
    parser.add_argument("--clients", type=positive, default=clients, help="clients (%(default)s)")
    parser.add_argument("--weeks", type=positive, default=weeks, help="weeks (%(default)s)")
    parser.add_argument("--jobs", type=int, default=-1, help="parallel runs (-1: all cores)")
    parser.add_argument(
        "overrides", nargs="*", help="config overrides, e.g. clients.wom.p_negative=0.15"
    )


def add_plausible_draw(
    parser: argparse.ArgumentParser, vectors: str, seeds: str, folder: str, **vectors_option
) -> None:
    """The options of a draw from the plausible set (`sim.validation.plausible`).

    `vectors`, `seeds`, `folder`: the options' names for how many vectors (N), the seeds of
    each (S) and the set's folder; `vectors_option`: the vectors option's `type` and `help`.
    """
    from sim.validation.plausible import SEEDS, VECTORS

    parser.add_argument(vectors, default=VECTORS, metavar="N", **vectors_option)
    parser.add_argument(seeds, type=positive, default=SEEDS, metavar="S",
                        help="seeds per plausible vector (default %(default)s)")  # fmt: skip
    parser.add_argument(folder, metavar="PATH",
                        help="the plausible set's folder (default: the shipped one)")  # fmt: skip
