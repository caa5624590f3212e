"""The model reproduces the stylised facts: each inside its range in sim/validation/targets.yaml.

Measured at full size (CI_CLIENTS x CI_WEEKS, 5,000 clients x 260 weeks, what `clientsim-facts`
measures for docs/) over CI_SEEDS seeds: 12 runs, about 7 s on 2 cores. With the structural
mechanisms (docs/ODD.md §10a) a smaller market no longer stands for the full one: at 2,000
clients the referred buyers' value premium is 0.07 against 0.27 at full size (seeds 0-2), so
the earlier CI size (2,000 x 260) was given up. Facts without a range (reported only) are not
asserted. A failure here is the model missing a target, not a broken test: see
docs/VALIDATION.md.
"""

import math

import pytest

from sim.validation.facts import load_targets
from sim.validation.measure import measure, summary

CI_CLIENTS, CI_WEEKS, CI_SEEDS = 5000, 260, 3
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
