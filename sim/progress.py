"""The one progress printer: a tqdm bar on a terminal, else plain lines (a log can hold them).

Used by the console scripts (runs of a study, of a calibration) and by a single run's weeks
(`sim.runs.run.simulate`); it lives at the package's root so that every layer can use it.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

#: Without a terminal, a progress line at most this often (seconds).
PROGRESS_EVERY = 10.0


class Progress:
    """Progress of a command's units (runs, weeks): a tqdm bar on a terminal, else plain lines.

    Call it with the units done and their total. Without a terminal (a log file, a pipe) a
    line `prog: done/total units, elapsed, left` is written at most every `every` seconds and
    at the end, never a carriage return. Times are tqdm's (`tqdm.format_interval`). Nothing
    is shown before `delay` seconds (a short run stays quiet).
    """

    def __init__(
        self,
        prog: str,
        *,
        unit: str = "run",
        every: float = PROGRESS_EVERY,
        delay: float = 0.0,
        file=None,
    ) -> None:
        self.prog, self.unit, self.every, self.delay = prog, unit, every, delay
        self.file = sys.stderr if file is None else file
        self.started = self.shown = time.monotonic()
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        """Show that `done` of `total` units are done."""
        if self.file.isatty():
            if self.bar is None:
                self.bar = tqdm(total=total, unit=self.unit, desc=self.prog, delay=self.delay,
                                file=self.file)  # fmt: skip
            self.bar.update(done - self.bar.n)
            if done >= total:
                self.bar.close()
            return
        now = time.monotonic()
        if now - self.started < self.delay or (now - self.shown < self.every and done < total):
            return
        self.shown = now
        print(self.line(done, total, now - self.started), file=self.file, flush=True)

    def line(self, done: int, total: int, elapsed: float) -> str:
        """The progress line after `done` of `total` units in `elapsed` seconds."""
        left = elapsed / done * (total - done) if done else 0.0
        clock = tqdm.format_interval
        return (f"{self.prog}: {done}/{total} {self.unit}s, {clock(elapsed)} elapsed, "
                f"about {clock(left)} left")  # fmt: skip
