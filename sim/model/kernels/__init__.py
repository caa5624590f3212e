"""Compiled kernels (numba) shared by the phases of both engines, and their primitives.

A kernel does in one pass over the acting clients what would otherwise take many numpy
passes and temporaries. Kernels must not move a result by one bit (`tests/baseline.json`),
so they keep to what is exact in IEEE arithmetic: integer hashing, comparisons, gathers
and +, -, *, /, sqrt, min and max written in the same order as the numpy rule they replace.
Transcendental functions (log, exp, pow) stay in numpy, outside the kernels: numba calls
the C library's, which differ from numpy's vectorised ones in the last bit. No kernel uses
``fastmath`` or ``parallel``; every one is cached on disk (``cache=True``), so only the first
run after an install compiles it.

One module per phase holds its kernels; `draws` holds the primitives they share: the
counter-based draws of `sim.model.rng.Streams`, draw for draw.
"""
