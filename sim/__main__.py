"""`python -m sim`: the same as the `clientsim` command."""

from sim.cli.clientsim import main

raise SystemExit(main())
