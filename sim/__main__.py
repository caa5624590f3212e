"""`python -m sim`: the same as the `clientsim` command."""

from sim.cli import main

main()
