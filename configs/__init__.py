"""The configs, shipped inside the package as `sim.configs` (see pyproject.toml).

Hydra reads the YAML files of this directory (and `experiment/`, a link to `experiments/`);
this file only makes the directory a package, so that an installed `clientsim` finds them.
"""
