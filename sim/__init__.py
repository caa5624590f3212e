"""clientsim: serve every client who brings money, or choose clients for fit?

An agent-based market simulation (Mesa) of businesses with client-selection policies and
heterogeneous clients on a social network. See README.md and docs/ODD.md.

The Python API (`sim.api`) is imported on first use, so that ``import sim`` stays cheap:
``sim.run(overrides)``, ``sim.run_batch(overrides, seeds)``, ``sim.build_model(overrides)``,
``sim.make_config(overrides)`` and ``sim.load_sweep(directory)``.
"""

import importlib

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "RunResult",
    "Sweep",
    "build_model",
    "load_sweep",
    "make_config",
    "run",
    "run_batch",
]


def __getattr__(name: str):
    """The API's names, imported from `sim.api` when first used (PEP 562)."""
    if name in __all__:
        return getattr(importlib.import_module("sim.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
