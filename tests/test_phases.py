"""The shared client-side helpers of sim.phases and the batched intake of sim.business."""

import numpy as np
import pytest

from sim import phases
from sim.business import Applicants, Intake


@pytest.mark.parametrize(
    ("groups", "values", "expected"),
    [
        ([0, 0, 0], [1.0, 3.0, 2.0], [1]),
        ([4, 4, 9, 9, 9], [5.0, 5.0, -1.0, 0.0, 0.0], [0, 3]),  # ties: the first
        ([2], [-np.inf], [0]),
        ([1, 2, 3], [0.5, 0.1, 0.2], [0, 1, 2]),
        ([], [], []),
    ],
)
def test_first_max_is_the_first_best_of_each_group(groups, values, expected):
    got = phases.first_max(np.array(groups, dtype=np.int64), np.array(values, dtype=float))
    np.testing.assert_array_equal(got, expected)


def test_first_max_matches_argmax_of_each_row():
    rng = np.random.default_rng(0)
    table = rng.integers(0, 4, size=(300, 7)).astype(float)  # many ties
    keep = rng.random((300, 7)) < 0.6
    keep[:, 0] |= ~keep.any(axis=1)
    row, col = np.nonzero(keep)
    best = phases.first_max(row, table[row, col])
    expected = np.where(keep, table, -np.inf).argmax(axis=1)
    np.testing.assert_array_equal(col[best], expected)


def test_pairs_reads_the_same_cells_as_fancy_indexing():
    matrix = np.arange(60.0).reshape(12, 5)
    ids, business = np.array([0, 3, 3, 11]), np.array([4, 0, 2, 1])
    np.testing.assert_array_equal(phases.pairs(matrix, ids, business), matrix[ids, business])
    np.testing.assert_array_equal(phases.pairs(matrix, ids, 2), matrix[ids, 2])


def _applicants(n: int) -> Applicants:
    columns = {f: np.arange(n) * (i + 1) for i, f in enumerate(Applicants.__slots__)}
    columns["signals"] = np.arange(n * 4.0).reshape(n, 4)
    columns["screening_noise"] = -columns["signals"]
    return Applicants(**columns)


def test_a_slice_of_applicants_slices_every_field():
    everyone = _applicants(10)
    part = everyone[3:7]
    for field in Applicants.__slots__:
        np.testing.assert_array_equal(getattr(part, field), getattr(everyone, field)[3:7])
    assert part.signals.shape == (4, 4)


def test_intakes_concatenate_in_order_field_by_field():
    def intake(start: int, n: int) -> Intake:
        return Intake(*(np.arange(start, start + n) + k for k in range(len(Intake.__slots__))))

    joined = Intake.concatenate([intake(0, 3), intake(10, 0), intake(20, 2)])
    np.testing.assert_array_equal(joined.accepted, [0, 1, 2, 20, 21])
    np.testing.assert_array_equal(joined.prepaid, np.array([0, 1, 2, 20, 21]) + 7)
