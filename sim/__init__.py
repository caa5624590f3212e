"""clientsim: serve every client who brings money, or choose clients for fit?

An agent-based market simulation (Mesa) of businesses with client-selection policies and
heterogeneous clients on a social network. See README.md and docs/ODD.md.
"""

__version__ = "0.1.0"
