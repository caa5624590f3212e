"""The model: from formulas and random streams to the market and its two engines.

Formulas, random streams, population, network, state, policies, businesses, the weekly phases, the
market (`MarketModel`) and its two engines (`engines/`).

The model imports nothing from runs, sweeps, analysis, validation, the command line or the app.
"""
