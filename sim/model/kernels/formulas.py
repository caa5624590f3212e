"""The formulas of `sim.model.mechanics`, compiled for the kernels: each written once.

`scalar(f)` compiles a formula's own code for scalars, reading numpy's ``where``, ``clip``
and ``asarray`` as functions of one element: on arrays numpy applies them element by element,
so the compiled formula gives each element's value bit for bit (`tests/test_kernels.py`).
A kernel calls ``scalar(mechanics.f)``; it never copies a formula.
"""

from __future__ import annotations

import types

import numba
import numpy as np
from numba.core import types as numba_types
from numba.extending import overload_method


@numba.njit(inline="always")
def _where(condition, if_true, if_false):
    """``np.where`` of one element."""
    return if_true if condition else if_false


@numba.njit(inline="always")
def _clip(x, low, high):
    """``np.clip`` of one element, as numpy's: NaN stays NaN, -0.0 stays -0.0 within bounds."""
    x = low if x < low else x
    return high if x > high else x


@numba.njit(inline="always")
def _asarray(x):
    """``np.asarray`` of one element: the element."""
    return x


@overload_method(numba_types.Float, "astype")
def _astype(x, dtype):
    """``x.astype(kind)`` of a float scalar (numpy's scalars have it; numba's do not)."""
    kind = dtype.instance_type

    def impl(x, dtype):
        return kind(x)

    return impl


#: numpy as a compiled formula of `scalar` reads it: its functions of one element.
_ELEMENTS = types.ModuleType("numpy_of_one_element")
vars(_ELEMENTS).update(
    {name: getattr(np, name)
     for name in ("maximum", "minimum", "ceil", "abs", "int64", "logical_not")},
    where=_where, clip=_clip, asarray=_asarray,
)  # fmt: skip


def scalar(formula):
    """A formula of `sim.model.mechanics` compiled for scalars, inlined where it is called.

    The very function (its code), reading numpy's ``where``, ``clip`` and ``asarray`` as
    functions of one element: on arrays numpy applies them element by element, so the
    compiled formula gives each element's value bit for bit. (Not cached on its own: it is
    compiled into the kernels that call it, which are.)
    """
    code = types.FunctionType(
        formula.__code__, {**formula.__globals__, "np": _ELEMENTS}, formula.__name__,
        formula.__defaults__, formula.__closure__,
    )  # fmt: skip
    return numba.njit(inline="always")(code)
