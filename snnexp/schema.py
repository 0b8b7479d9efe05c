"""Typed config sections whose allowed values are declared once, beside the field.

A section's schema is a dataclass registered in Hydra's ConfigStore (``snnexp.config``): its
types make a wrong type or an unknown key fail at compose time. What types cannot say (a choice
list, a range) is declared in the field's metadata with ``choice`` and ``bounded``; the YAML
file of the option holds the default. ``check_section`` checks a composed section against its
schema and raises a one-line ``UserError`` naming the key, the value and what is allowed:

    @dataclass
    class ModelConfig:
        neuron: str = choice("lif", "relu")
        beta: float = bounded(0, 1)

    check_section(cfg.model, ModelConfig, "model")   # model.neuron=tanh: must be one of lif, relu
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import MISSING

from snnexp.errors import UserError


def choice(*options: Any, default: Any = MISSING, doc: str = "") -> Any:
    """A field whose value must be one of ``options``. ``default`` and ``doc`` (its meaning,
    shown in docs/configuration.md) only for a field that no YAML file sets."""
    return dataclasses.field(default=default, metadata={"choices": tuple(options), "doc": doc})


def bounded(low: float | None = None, high: float | None = None, *, open_low: bool = False,
            open_high: bool = False, default: Any = MISSING, doc: str = "") -> Any:
    """A number field in ``[low, high]`` (``(low, ...`` with ``open_low``, ``..., high)`` with
    ``open_high``); ``None``: no bound on that side."""
    return dataclasses.field(default=default, metadata={"low": low, "high": high,
                                                        "open_low": open_low,
                                                        "open_high": open_high, "doc": doc})


def documented(default: Any, doc: str) -> Any:
    """A field with a default of its own (one that no YAML file sets) and its meaning."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: default, metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def allowed_values(field: dataclasses.Field) -> str | None:
    """What a field allows, as the error messages and the docs say it, or ``None``
    (``null or ...`` for an optional field)."""
    meta = field.metadata
    if "choices" in meta:
        allowed = "one of " + ", ".join(str(c) for c in meta["choices"])
    elif "low" in meta:
        allowed = _range(meta, str(field.type).replace(" | None", "") == "int")
    else:
        return None
    return f"null or {allowed}" if _optional(field) else allowed


def _optional(field: dataclasses.Field) -> bool:
    return "None" in str(field.type)


def _range(meta: Any, integer: bool) -> str:
    low, high = meta["low"], meta["high"]
    kind = "an integer" if integer else "a number"
    if low is not None and high is not None:
        return (f"{kind} in {'(' if meta['open_low'] else '['}{low}, "
                f"{high}{')' if meta['open_high'] else ']'}")
    if low is not None:
        return f"{kind} {'>' if meta['open_low'] else '>='} {low}"
    return f"{kind} {'<' if meta['open_high'] else '<='} {high}"


def _ok(field: dataclasses.Field, value: Any) -> bool:
    meta = field.metadata
    if value is None:
        return _optional(field)
    if "choices" in meta:
        return value in meta["choices"]
    low, high = meta["low"], meta["high"]
    if low is not None and (value <= low if meta["open_low"] else value < low):
        return False
    return high is None or (value < high if meta["open_high"] else value <= high)


def check_section(node: Any, schema: type, prefix: str) -> None:
    """Raise ``UserError`` for the first field of ``node`` outside what ``schema`` allows
    (``<prefix>.<key>=<value>: must be <allowed>``; ``prefix=""`` for the top level). Nested
    dataclass fields are checked recursively; keys the schema does not constrain are neither
    read nor resolved."""
    for field in dataclasses.fields(schema):
        if field.name not in node:
            continue
        key = f"{prefix}.{field.name}" if prefix else field.name
        nested = field.default_factory
        if isinstance(nested, type) and dataclasses.is_dataclass(nested):
            if node[field.name] is not None:
                check_section(node[field.name], nested, key)
            continue
        allowed = allowed_values(field)
        if allowed is not None and not _ok(field, node[field.name]):
            raise UserError(f"{key}={node[field.name]}: must be {allowed}")
