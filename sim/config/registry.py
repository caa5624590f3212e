"""The names the model registers against, declared here so that the config does not import it.

The config schema and its checks read these; the model imports them (`sim.model.network`
builds the kinds declared here, `sim.model.policies` registers one class per policy kind and
checks that the kinds match).
"""

from __future__ import annotations

from collections.abc import Mapping

WEEKS_PER_YEAR = 52.0
"""Weeks per year: rates in the config are per year, the model steps weekly."""

CRITERIA: tuple[str, ...] = ("respect", "payment", "alignment", "realism")
"""The signals a policy's screen weighs, in this order (docs/ODD.md §7.4)."""

SERVES: tuple[str, ...] = ("decider", "user", "all")
"""Whose interests a policy satisfies when the buying centre is on (docs/ODD.md §7.10)."""

POLICY_KINDS: tuple[str, ...] = ("threshold", "must_have")
"""The kinds of screen; `sim.model.policies` has one class per kind."""

NETWORK_KINDS: tuple[str, ...] = ("watts_strogatz", "barabasi_albert", "erdos_renyi", "complete")
"""The network kinds that :func:`build_network` accepts (`sim.model.network.build_network`)."""

NETWORK_PARAMS: dict[str, tuple[str, ...]] = {
    "watts_strogatz": ("k", "p"),
    "barabasi_albert": ("m",),
    "erdos_renyi": ("mean_degree",),
    "complete": (),
}
"""For each kind, the parameters it takes (their defaults: configs/market/network/KIND.yaml)."""

MAX_COMPLETE_N = 5000
"""Largest market for the complete graph: its n(n - 1) entries grow fast."""


def _resolve_params(kind: str, params: Mapping[str, float]) -> dict[str, float]:
    """``params`` as a dict, rejecting unknown kinds, unknown names and missing names."""
    if kind not in NETWORK_KINDS:
        raise ValueError(f"unknown network kind {kind!r}; allowed: {', '.join(NETWORK_KINDS)}")
    unknown = sorted(set(params) - set(NETWORK_PARAMS[kind]))
    allowed = ", ".join(NETWORK_PARAMS[kind]) or "none"
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} of {kind}; allowed: {allowed}")
    missing = [name for name in NETWORK_PARAMS[kind] if name not in params]
    if missing:
        raise ValueError(f"missing parameter(s) {missing} of {kind}; it takes: {allowed}")
    return dict(params)


def check_params(n: int, kind: str, params: Mapping[str, float]) -> dict[str, float]:
    """The kind's parameters, every one of `NETWORK_PARAMS[kind]` and no other.

    Raises:
        ValueError: if they cannot build a network of n clients (config validation
            reports it as a config error).
    """
    resolved = _resolve_params(kind, params)
    if kind == "watts_strogatz":
        k, p = _int_param(resolved, "k", 2, n - 1), resolved["p"]
        if k % 2 or not 0.0 <= p <= 1.0:
            raise ValueError(
                f"watts_strogatz needs an even k in [2, n - 1] and p in [0, 1], got k={k}, p={p}"
            )
    elif kind == "erdos_renyi" and not 0.0 <= resolved["mean_degree"] <= n - 1:
        raise ValueError(f"erdos_renyi mean_degree must be in [0, n - 1 = {n - 1}]")
    elif kind == "barabasi_albert":
        _int_param(resolved, "m", 1, n - 1)
    elif kind == "complete" and n > MAX_COMPLETE_N:
        raise ValueError(f"complete network is for small markets (n <= {MAX_COMPLETE_N})")
    return resolved


def _int_param(params: Mapping[str, float], name: str, low: int, high: int) -> int:
    """Return an integer-valued parameter, checking that it lies in [low, high]."""
    value = params[name]
    if not (float(value).is_integer() and low <= value <= high):
        raise ValueError(f"network parameter {name} must be an integer in [{low}, {high}]")
    return int(value)
