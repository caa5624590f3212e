"""Validation of a composed config: one walker along the schema, cross-field rules, memory.

`validate` walks the config along `sim.config.schema`'s schema, refuses keys the schema does not
have, checks each leaf against its declared range or choices, then applies the cross-field
rules (`RULES`). A market that cannot fit in this machine's memory is refused first, with
its estimate. Every error is a `ConfigError`: one line naming the full key, the value and
what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import typing
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.config.registry import MAX_COMPLETE_N, NETWORK_PARAMS, check_params
from sim.config.schema import MAX_BUSINESSES, Config, ConfigError, Range

# ---- the walker: unknown keys, missing values, declared ranges and choices --------------------


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def leaves(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, dict]]:
    """Every field of the schema below `cls`: (key, type, metadata), depth first.

    A dict of dataclasses (`policies`, `clients.segments`) appears as `<prefix>.*`.
    """
    out = []
    for f in fields(cls):
        key, kind = f"{prefix}{f.name}", _hints(cls)[f.name]
        args = typing.get_args(kind)
        kind = _optional_dataclass(kind) or kind
        if is_dataclass(kind):
            out += leaves(kind, f"{key}.")
        elif typing.get_origin(kind) is dict and is_dataclass(args[1]):
            out += leaves(args[1], f"{key}.*.")
        else:
            out.append((key, kind, dict(f.metadata)))
    return out


def _optional_dataclass(kind: Any) -> type | None:
    """The dataclass of an `X | None` field (the optional `experiment`), else None."""
    args = typing.get_args(kind)
    if type(None) in args and len(args) == 2:
        inner = next(a for a in args if a is not type(None))
        return inner if is_dataclass(inner) else None
    return None


def _unknown(key: str, value: Any, allowed: list[str]) -> ConfigError:
    near = difflib.get_close_matches(key.rpartition(".")[2], allowed, n=1)
    hint = f"did you mean {near[0]}? " if near else ""
    return ConfigError(key, value, f"unknown key; {hint}allowed: {', '.join(allowed)}")


def _walk(node: Any, cls: type, prefix: str) -> None:
    """Check a plain-dict config node against dataclass `cls`."""
    if not isinstance(node, dict):
        raise ConfigError(prefix.rstrip("."), node, f"must be a mapping of {cls.__name__}")
    names = [f.name for f in fields(cls)]
    for name in node:
        if name not in names:
            raise _unknown(f"{prefix}{name}", node[name], names)
    for f in fields(cls):
        _check_value(
            f"{prefix}{f.name}", node.get(f.name, MISSING), _hints(cls)[f.name], f.metadata
        )


def _check_value(key: str, value: Any, kind: Any, meta: Any) -> None:
    """Check one field's value against its type and declared metadata."""
    if value == MISSING:
        raise ConfigError(key, value, "missing: the config must set it")
    if "free" in meta or (value is None and type(None) in typing.get_args(kind)):
        return
    kind = _optional_dataclass(kind) or kind
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if is_dataclass(kind):
        _walk(value, kind, f"{key}.")
    elif origin is dict:
        for name, item in value.items():
            if meta.get("keys") is not None and name not in meta["keys"]:
                raise _unknown(f"{key}.{name}", item, list(meta["keys"]))
            if is_dataclass(args[1]):
                _walk(item, args[1], f"{key}.{name}.")
            else:
                _in_range(f"{key}.{name}", item, meta["range"], args[1] is int)
    elif origin is list:
        length = meta.get("length")
        ok = isinstance(value, list) and (length is None or len(value) == length)
        ok = ok and all(v in meta["range"] for v in value)
        if not ok:
            what = "a Beta distribution [a, b] with a and b" if length == 2 else "numbers"
            raise ConfigError(key, value, f"must be {what} in {meta['range'].interval()}")
    elif "range" in meta:
        _in_range(key, value, meta["range"], kind is int)
    elif "choices" in meta and value not in meta["choices"]:
        raise ConfigError(key, value, f"allowed: {', '.join(meta['choices'])}")


def _in_range(key: str, value: Any, allowed: Range, integer: bool) -> None:
    if value not in allowed or (integer and not isinstance(value, int)):
        raise ConfigError(key, value, allowed.describe(integer))


# ---- cross-field rules: each takes the plain config and raises ConfigError ------------------


def _segment_shares(c: dict) -> None:
    segments = c["clients"]["segments"]
    _check(len(segments) > 0, "clients.segments", {}, "needs at least one segment")
    shares = {name: seg["share"] for name, seg in segments.items()}
    ok = abs(math.fsum(shares.values()) - 1.0) < 1e-6
    _check(ok, "clients.segments.*.share", shares, "shares must sum to 1")


def _story_thresholds(c: dict) -> None:
    wom = c["clients"]["wom"]
    allowed = f"must be <= clients.wom.positive ({wom['positive']})"
    _check(wom["negative"] <= wom["positive"], "clients.wom.negative", wom["negative"], allowed)


def _misdiagnosis_bounds(c: dict) -> None:
    jobs = c["market"]["jobs"]
    low, high = jobs["misdiagnosed_low"], jobs["misdiagnosed_high"]
    allowed = f"must be <= market.jobs.misdiagnosed_high ({high})"
    _check(low <= high, "market.jobs.misdiagnosed_low", low, allowed)


def _policy_mix(c: dict) -> None:
    mix, policies = c["market"]["policy_mix"], c["policies"]
    _check(len(mix) > 0, "market.policy_mix", {}, "needs at least one policy")
    for name, count in mix.items():
        allowed = f"unknown policy; allowed: {', '.join(policies)}"
        _check(name in policies, f"market.policy_mix.{name}", count, allowed)
    allowed = f"total businesses must be in [1, {MAX_BUSINESSES}]"
    _check(1 <= sum(mix.values()) <= MAX_BUSINESSES, "market.policy_mix", mix, allowed)


def _criteria_weights(c: dict) -> None:
    for name, policy in c["policies"].items():
        weights = policy["criteria"]
        allowed = "weights must not all be 0"
        _check(sum(weights.values()) > 0, f"policies.{name}.criteria", weights, allowed)


def _min_clients(kind: str, params: dict) -> int:
    """The smallest market a network of `kind` with `params` can link."""
    degree = {"watts_strogatz": "k", "barabasi_albert": "m", "erdos_renyi": "mean_degree"}
    return math.ceil(params[degree[kind]]) + 1 if kind in degree else 2


def _network(c: dict) -> None:
    net, n = c["market"]["network"], c["market"]["n_clients"]
    kind, allowed = net["kind"], list(NETWORK_PARAMS[net["kind"]])
    for name, value in net["params"].items():
        if name not in allowed:
            raise _unknown(f"market.network.params.{name}", value, allowed or ["none"])
    for name in allowed:
        if name not in net["params"]:
            taken = f"missing: {kind} takes {', '.join(allowed)}"
            raise ConfigError(f"market.network.params.{name}", MISSING, taken)
    params = net["params"]
    described = ", ".join(f"{k}={v:g}" for k, v in params.items())
    if kind == "complete" and n > MAX_COMPLETE_N:
        allowed = f"the complete network is for small markets (at most {MAX_COMPLETE_N:,})"
        raise ConfigError("market.n_clients", n, allowed)
    if kind != "complete" and n < _min_clients(kind, params):
        allowed = f"must be at least {_min_clients(kind, params)} for {kind} with {described}"
        raise ConfigError("market.n_clients", n, allowed)
    try:
        check_params(n, kind, params)
    except ValueError as error:
        raise ConfigError("market.network.params", net["params"], str(error)) from None


RULES: tuple[Callable[[dict], None], ...] = (
    _segment_shares,
    _story_thresholds,
    _misdiagnosis_bounds,
    _policy_mix,
    _criteria_weights,
    _network,
)
"""Rules between fields, applied in order once every leaf is within its range."""


# ---- memory: refuse a market that cannot fit --------------------------------------------------

#: Peak bytes of a `clientsim` run (writing its files included): a fixed part (the interpreter
#: and its libraries: 300-420 MB measured), bytes per client, bytes per (client, business)
#: pair (the pair state, 28), and per pair with ``pairs=true`` (the accounts, 18, and
#: pairs.parquet's table), each about 10-30 % above what was measured (2026-12-07,
#: `/usr/bin/time -v clientsim market.n_clients=N`, 20 businesses; `tests/test_config.py`):
#: vectorized, 260 weeks: 661 MB at 200,000 clients (539 with pairs=false), 2,114 MB at
#: 1,000,000 (1,178); 52 weeks: 14,801 MB at 10,000,000 (8,996); agents 881 MB at 100,000
#: (5,800 bytes a client: its Mesa agents). The pair state is freed before clients.parquet's
#: table is built (`sim.runs.run.results`), so the write adds little to the model's peak.
FIXED_BYTES = 500 * 2**20
CLIENT_BYTES = {"vectorized": 400, "agents": 5_500}
PAIR_BYTES = 32
ACCOUNT_BYTES = 45
ROW_BYTES = 2_000  # one recorded row (a dict) per business and week


def memory_estimate(
    n_clients: int, businesses: int, steps: int, engine: str, pairs: bool = True
) -> int:
    """Peak memory (bytes) of a run, from the measured costs: fixed, per client and per row.

    `pairs`: the run keeps the pair accounts and writes pairs.parquet (``cfg.pairs``).
    """
    per_pair = PAIR_BYTES + (ACCOUNT_BYTES if pairs else 0)
    per_client = CLIENT_BYTES.get(engine, max(CLIENT_BYTES.values())) + per_pair * businesses
    return FIXED_BYTES + n_clients * per_client + steps * businesses * ROW_BYTES


def available_memory() -> int | None:
    """Memory available to a new process (bytes): MemAvailable, else free pages; or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


def _fits_in_memory(c: dict) -> None:
    market = c.get("market", {})
    n, steps, engine = market.get("n_clients"), c.get("steps"), c.get("engine")
    mix = market.get("policy_mix")
    counts = mix.values() if isinstance(mix, dict) else ()
    businesses = sum(v for v in counts if isinstance(v, int) and v > 0) or 1
    if not isinstance(n, int) or not isinstance(steps, int) or n < 2:
        return
    pairs = c.get("pairs") is not False
    need = memory_estimate(n, businesses, max(steps, 1), engine, pairs)
    have = available_memory()
    if have is not None and need > have:
        fixed = memory_estimate(0, businesses, steps, engine, pairs)
        per_client = memory_estimate(1, businesses, steps, engine, pairs) - fixed
        most = max((have - fixed) // per_client, 0)
        allowed = (
            f"needs about {_gib(need)} of memory ({per_client:,} bytes per client with "
            f"{businesses} businesses), more than the {_gib(have)} available; "
            f"at most about {most:,} clients fit here"
        )
        raise ConfigError("market.n_clients", n, allowed)


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed)


def _plain(cfg: DictConfig) -> dict:
    """The config as plain containers, its interpolations resolved."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "config"
        value = OmegaConf.to_container(cfg, resolve=False)
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else value
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(key, value, f"cannot be resolved: {reason}") from None


def validate(cfg: DictConfig | dict) -> None:
    """Check a composed config; raise `ConfigError` naming the first bad key.

    First the memory a run would need (so that a market too big for this machine is refused
    with its estimate, whatever else is wrong), then every key along the schema (unknown
    keys, missing values, declared ranges and choices), then the cross-field `RULES`.
    """
    c = _plain(cfg) if isinstance(cfg, DictConfig) else cfg
    _fits_in_memory(c)
    _walk(c, Config, "")
    for rule in RULES:
        rule(c)
