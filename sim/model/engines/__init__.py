"""Engines: how clients are stored. Both run the same phases with the same mechanics."""

from __future__ import annotations


def engine_class(name: str):
    """The model class of engine `name` (``agents`` or ``vectorized``)."""
    if name == "agents":
        from sim.model.engines.agents import AgentsModel

        return AgentsModel
    from sim.model.engines.vectorized import VectorizedModel

    return VectorizedModel
