"""Signals that stop a run even where Python would drop the exception their handler raised.

A signal's handler runs in whatever Python code comes next. When that is a ctypes callback
(llvmlite's, called while numba loads a kernel from its disk cache) or a finalizer, Python
prints "Exception ignored ..." and drops the handler's exception: the run would go on and
finish as if the signal had never come (a Ctrl-C in its first second, about 1 time in 100).
So a handler installed by `raising` also remembers its exception, and the run's loops call
`check` after every week, which raises it again if it was dropped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The exception a `raising` handler raised last and that no run has raised again since.
_pending: list[BaseException] = []


@contextmanager
def raising(handlers: dict[int, Callable[[int], BaseException]]) -> Iterator[None]:
    """While in the block, signal s raises ``handlers[s](s)``, remembered for `check`.

    Only a signal with its default handler is taken over, and only in the main thread: a
    caller's own handler stays, and so does a SIGINT that the shell set to be ignored. The
    handlers it replaced are put back on leaving, and what it remembered is forgotten.
    """

    def handler(signum: int, frame) -> None:
        error = handlers[signum](signum)
        _pending[:] = [error]
        raise error

    defaults = (signal.SIG_DFL, signal.default_int_handler)
    ours = [s for s in handlers if signal.getsignal(s) in defaults]
    if threading.current_thread() is not threading.main_thread():
        ours = []
    previous = {signum: signal.signal(signum, handler) for signum in ours}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)
        if previous:
            _pending.clear()


def check() -> None:
    """Raise the exception of a signal whose handler's raise Python dropped, if there was one."""
    if _pending:
        raise _pending.pop()
