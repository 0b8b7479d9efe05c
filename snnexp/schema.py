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


def choice(*options: Any, default: Any = MISSING) -> Any:
    """A field whose value must be one of ``options``."""
    return dataclasses.field(default=default, metadata={"choices": tuple(options)})


def bounded(low: float | None = None, high: float | None = None, *, open_low: bool = False,
            default: Any = MISSING) -> Any:
    """A number field in ``[low, high]`` (``(low, high]`` with ``open_low``); ``None``: no
    bound on that side."""
    return dataclasses.field(default=default, metadata={"low": low, "high": high,
                                                        "open_low": open_low})


def allowed_values(field: dataclasses.Field) -> str | None:
    """What a field allows, as the error messages and the docs say it, or ``None``."""
    meta = field.metadata
    if "choices" in meta:
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    if "low" not in meta:
        return None
    low, high = meta["low"], meta["high"]
    integer = str(field.type) == "int"
    kind = "an integer" if integer else "a number"
    if low is not None and high is not None:
        return f"{kind} in {'(' if meta['open_low'] else '['}{low}, {high}]"
    if low is not None:
        return f"{kind} {'>' if meta['open_low'] else '>='} {low}"
    return f"{kind} <= {high}"


def _ok(field: dataclasses.Field, value: Any) -> bool:
    meta = field.metadata
    if value is None:
        return "None" in str(field.type)
    if "choices" in meta:
        return value in meta["choices"]
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value <= low if meta["open_low"] else value < low):
        return False
    return high is None or value <= high


def check_section(node: Any, schema: type, prefix: str) -> None:
    """Raise ``UserError`` for the first field of ``node`` outside what ``schema`` allows
    (``<prefix>.<key>=<value>: must be <allowed>``). Nested dataclass fields are checked
    recursively; keys the schema does not constrain are left alone."""
    for field in dataclasses.fields(schema):
        if field.name not in node:
            continue
        value = node[field.name]
        nested = field.default_factory
        if isinstance(nested, type) and dataclasses.is_dataclass(nested):
            if value is not None:
                check_section(value, nested, f"{prefix}.{field.name}")
            continue
        allowed = allowed_values(field)
        if allowed is not None and not _ok(field, value):
            raise UserError(f"{prefix}.{field.name}={value}: must be {allowed}")
