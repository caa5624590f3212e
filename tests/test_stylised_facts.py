"""The model reproduces the stylised facts: each inside its range in sim/validation/targets.yaml.

Measured at a size that runs in seconds (CI_CLIENTS x CI_WEEKS, CI_SEEDS seeds). The size was
chosen by measuring every fact over 6 seeds at 500-2,000 clients and 156-260 weeks against
full size (5,000 clients x 260 weeks, 10 seeds, what `clientsim-facts` measures for docs/):
at 2,000 x 260 every mean lies within 1.2 full-size seed-s.d. of its full-size value (most
within 0.5) and every fact is inside or outside its range as at full size; 156 weeks leave
the first year's transient in the ratings and stories (1-star +3 points, word of mouth -0.25)
and 1,000 clients put the fit_filter whale peak 3.5 s.d. off. Facts without a range
(reported only) are not asserted. A failure here is the model missing a
target, not a broken test: see docs/VALIDATION.md.
"""

import math

import pytest

from sim.validation.facts import load_targets
from sim.validation.measure import measure, summary

CI_CLIENTS, CI_WEEKS, CI_SEEDS = 2000, 260, 3
TARGETS = load_targets()
ASSERTED = [name for name, target in TARGETS.items() if not target.reported_only]


@pytest.fixture(scope="module")
def facts_table():
    values, _ = measure(
        TARGETS, overrides=[], seeds=range(CI_SEEDS), clients=CI_CLIENTS, weeks=CI_WEEKS, jobs=-1
    )
    return summary(values, TARGETS).set_index("fact")


@pytest.mark.parametrize("fact", ASSERTED)
def test_fact_is_inside_its_target_range(facts_table, fact):
    """Each targeted fact is inside its range; a known miss (`missed`) is still outside it,
    so that the day the model meets it the entry must be removed from the targets file."""
    target, row = TARGETS[fact], facts_table.loc[fact]
    assert not math.isnan(row["mean"]), f"{fact} could not be measured"
    mean, sd = row["mean"], row["sd"]
    if target.missed:
        assert not target.inside(mean), (
            f"{fact} = {mean:.3g} is now inside {target.range_text()}: remove its `missed` "
            "entry from sim/validation/targets.yaml and the known limit from docs/VALIDATION.md"
        )
        return
    if not target.inside(mean):
        pytest.fail(
            f"{fact} = {mean:.3g} ± {sd:.2g} over {CI_SEEDS} seeds, target "
            f"{target.range_text()} ({target.citation}); distance {target.distance(mean):.2f}",
            pytrace=False,
        )
