"""The one error type of a user's mistake: what every front end prints as one line (exit 2)."""


class UserError(Exception):
    """A value, a path or an option a user gave is not allowed; the message is one line.

    The config's `ConfigError` and the sweeps' `SweepError` are kinds of it; the console
    scripts (`sim.cli`) catch it, print `<command>: <message>` on stderr and exit with code 2.
    """
