"""`python -m sim`: the same as the `clientsim` command."""

from sim.cli.clientsim import main

code = main()
# Under `python -m`, CPython (3.12, 3.13) exits by SIGINT (status -2) instead of with `code`
# when a string exec (one that makes a dataclass, say) ended in the KeyboardInterrupt that
# `main` caught and reported: the flag that exec set is reset by the next string exec
# (Python/pythonrun.c, Modules/main.c). So Ctrl-C exits 130 here, as it does from `clientsim`.
exec("")
raise SystemExit(code)
