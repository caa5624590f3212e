# Commands for a fresh machine: `make run`, `make test` and `make app` (the browser view).
# All find a Python >= 3.12 (scripts/find-python), create .venv and install into it.
VENV := .venv
STAMP := $(VENV)/.installed
VIZ_STAMP := $(VENV)/.installed-viz

PORT ?= 8765
XDIST := -n auto --dist loadfile
FAST := not slow and not browser and not slurm and not subprocess

.PHONY: run test test-fast lint app bench bench-sweep results clean

run: $(STAMP)
	$(VENV)/bin/clientsim $(ARGS)

# Every test, on every core and one worker more (pytest-xdist: a module per worker, the slow
# modules of tests/conftest.py APART test by test; markers: tests/conftest.py). The tests
# marked slurm need a Slurm (`.ci/slurm.sh up`); without one they are skipped.
test: $(STAMP) $(VIZ_STAMP)
	$(VENV)/bin/python -m pytest $(XDIST) $(ARGS)

# The fast set, for while you edit (under a minute): no slow, browser, Slurm or subprocess test.
test-fast: $(STAMP) $(VIZ_STAMP)
	$(VENV)/bin/python -m pytest $(XDIST) -m "$(FAST)" $(ARGS)

# The students' view in the browser: http://localhost:8765 (Ctrl-C stops it).
app: $(VIZ_STAMP)
	$(VENV)/bin/clientsim-app --port $(PORT) $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/engines.py $(ARGS)

bench-sweep: $(STAMP)
	$(VENV)/bin/python benchmarks/sweep.py $(ARGS)

# Every experiment at full size (resumed from results/<name>/make-results/), its figures,
# and docs/RESULTS.md with docs/figures/; the headline experiments also at PLAUSIBLE vectors
# of the plausible set (the shipped one has 15: each once), PLAUSIBLE_SEEDS seeds each, and
# instruments' 64 cells at PLAUSIBLE_INSTRUMENTS (results/<name>/plausible/; 0: none); the map
# of results/explore (clientsim-explore) if there is one. About 30 minutes on 2 cores.
PLAUSIBLE ?= 15
PLAUSIBLE_SEEDS ?= 4
PLAUSIBLE_INSTRUMENTS ?= 15x2
results: $(STAMP)
	$(VENV)/bin/python -m sim.cli.report --run --plausible $(PLAUSIBLE) \
		--plausible-seeds $(PLAUSIBLE_SEEDS) \
		--plausible-size instruments=$(PLAUSIBLE_INSTRUMENTS) $(ARGS)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || "$$(sh scripts/find-python)" -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test,bench,explore]'
	@touch $(STAMP)

# The browser view's extra (Solara and its bundled JavaScript), kept out of the core install.
$(VIZ_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -e '.[test,bench,explore,viz]'
	@touch $(VIZ_STAMP)

clean:
	rm -rf $(VENV) results/runs results/sweeps

# Refresh tests/baseline.json after a deliberate change of results (say why in the commit).
.PHONY: baseline
baseline: $(STAMP)
	$(VENV)/bin/python -m tests.make_baseline
