"""Writing rules' state changes into the vectorized engine's arrays, in one compiled pass.

`VectorizedModel.apply` writes each `sim.model.state.Change` with these: a set stores the
values, an add adds them to what is stored (the clients of one change are distinct, so this
is what ``column[ids] = column[ids] + values`` does, without its temporaries). The values
come cast to the field's dtype, as numpy's assignment would cast them. `add_rows` adds
the businesses' totals of a phase into their counters.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def put(column: np.ndarray, ids: np.ndarray, values: np.ndarray, add: bool) -> None:
    """Set (or add to) ``column[ids[i]]`` the value ``values[i]`` (or ``values[0]`` for all)."""
    one = values.size == 1
    for i in range(ids.size):
        value = values[0] if one else values[i]
        if add:
            column[ids[i]] += value
        else:
            column[ids[i]] = value


@numba.njit(cache=True)
def put_pairs(
    matrix: np.ndarray, ids: np.ndarray, business: np.ndarray, values: np.ndarray, add: bool
) -> None:
    """`put` for a pair field, shape (clients, businesses): the pairs (ids[i], business[i])."""
    one, one_business = values.size == 1, business.size == 1
    for i in range(ids.size):
        value = values[0] if one else values[i]
        b = business[0] if one_business else business[i]
        if add:
            matrix[ids[i], b] += value
        else:
            matrix[ids[i], b] = value


@numba.njit(cache=True)
def add_rows(counters: np.ndarray, rows: np.ndarray, totals: np.ndarray) -> None:
    """Add ``totals[k]`` to the row ``counters[rows[k]]`` for every k, element by element.

    (A whole-row ``+=`` would make numba compile its error message for rows of different
    lengths, about a second of the first run's compile.)
    """
    for k in range(len(rows)):
        for j in range(totals.shape[1]):
            counters[rows[k], j] += totals[k, j]
