"""The regression baseline: fixed-seed runs give the summaries stored in tests/baseline.json.

A failure here means the model's results moved. If that was intended, refresh the baseline
with `python -m tests.make_baseline` and say why in the commit message.
"""

from __future__ import annotations

import json

import pytest
from make_baseline import ENGINES, PATH, baseline_summary, differences

BASELINE = json.loads(PATH.read_text())["runs"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(BASELINE))
def test_fixed_seed_run_reproduces_the_baseline_summary(name, engine):
    expected = BASELINE[name]
    actual = json.loads(json.dumps(baseline_summary(expected["overrides"], engine)))
    problems = differences(expected["summary"], actual)
    assert not problems, "results moved; if intended: python -m tests.make_baseline\n" + (
        "\n".join(problems)
    )


def test_differences_tolerate_the_last_bits_of_floats_only():
    assert differences({"a": [1.0]}, {"a": [1.0]}) == []
    assert differences({"a": 1.0}, {"a": 1.0 + 1e-12}) == []
    assert differences({"a": 1.0}, {"a": 1.0 + 1e-6}) != []
    assert differences({"a": 1}, {"a": 2}) != []
    assert differences({"a": None}, {"a": 0.0}) != []
    assert differences({"a": 1.0}, {"b": 1.0}) != []
