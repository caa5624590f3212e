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
from llvmlite import ir
from numba.core import cgutils
from numba.core import types as numba_types
from numba.extending import intrinsic, overload_method

from sim.model import mechanics


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


@intrinsic
def _fma(typingctx, a, b, c):
    """`mechanics.fma` of one element: ``a * b + c`` rounded once.

    LLVM's ``llvm.fma``: the CPU's instruction, else the C library's `fma` (rounded once too).
    """

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        kind = ir.FunctionType(double, [double, double, double])
        function = cgutils.get_or_insert_function(builder.module, kind, "llvm.fma.f64")
        return builder.call(function, args)

    return numba_types.float64(numba_types.float64, numba_types.float64,
                               numba_types.float64), codegen  # fmt: skip


def scalar(formula):
    """A formula of `sim.model.mechanics` compiled for scalars, inlined where it is called.

    The very function (its code), reading numpy's ``where``, ``clip`` and ``asarray`` as
    functions of one element: on arrays numpy applies them element by element, so the
    compiled formula gives each element's value bit for bit. (Not cached on its own: it is
    compiled into the kernels that call it, which are.)
    """
    code = types.FunctionType(
        formula.__code__, {**formula.__globals__, "np": _ELEMENTS, "fma": _fma},
        formula.__name__, formula.__defaults__, formula.__closure__,
    )  # fmt: skip
    return numba.njit(inline="always")(code)


_alignment = scalar(mechanics.alignment)


@numba.njit(inline="always")
def aligned(values, cultures, client, business, market):
    """`mechanics.alignment` of a client's values and a business's culture.

    Client `client`'s `values` (clients, 2) and the culture of business `business` of market
    `market` (`cultures`, shape (businesses, markets, 2)).
    """
    return _alignment(values[client, 0], values[client, 1], cultures[business, market, 0],
                      cultures[business, market, 1])  # fmt: skip


@numba.njit(cache=True)
def alignments(values, cultures, ids, n):
    """`mechanics.alignment` of each client of `ids` with each business of its market.

    Args:
        values: the clients' values, unit vectors by id (clients, 2).
        cultures: each business's culture in each market (businesses, markets, 2).
        ids: the clients (int64).
        n: clients per market.

    Returns:
        shape (len(ids), businesses).
    """
    out = np.empty((len(ids), cultures.shape[0]))
    for i in range(len(ids)):
        client = ids[i]
        for b in range(cultures.shape[0]):
            out[i, b] = aligned(values, cultures, client, b, client // n)
    return out
