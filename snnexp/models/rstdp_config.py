"""Defaults and validation of the R-STDP learner's config keys (``conf/model/rstdp.yaml``)."""

from __future__ import annotations

from typing import Any

from snnexp.errors import UserError

DEFAULTS: dict[str, Any] = {
    "num_steps": 20,
    # LIF neurons (mV, ms)
    "v_rest": -65.0, "v_reset": -65.0, "v_th": -58.0, "tau_m": 10.0, "t_ref": 5.0, "dt": 1.0,
    # hidden layer
    "hidden_mode": "stdp", "kernel": 3, "stride": 1, "filters": 16, "pool": 3,
    "hidden_gain": 3.0, "hidden_lr": 0.05, "hidden_theta_lr": 0.1,
    # output layer and episode protocol
    "readout_gain": 2.0, "epochs": 15, "batch": 0, "punishment": -0.5, "baseline_rate": 0.0,
    "w_init": 0.5, "w_noise": 0.0, "normalize": "l2", "readout_theta_lr": 0.5,
    # R-STDP rule
    "tau_plus": 20.0, "tau_minus": 20.0, "tau_e": 25.0, "a_plus": 1.0, "a_minus": 0.2,
    "eta": 0.05, "w_min": 0.0, "w_max": 1.0,
}
_INTS = {"num_steps": 1, "kernel": 1, "stride": 1, "filters": 1, "pool": 1, "epochs": 0,
         "batch": 0}
_POSITIVE = ("tau_m", "dt", "tau_plus", "tau_minus", "tau_e", "hidden_gain", "readout_gain")
_NON_NEGATIVE = ("t_ref", "hidden_lr", "hidden_theta_lr", "a_plus", "a_minus", "eta", "w_noise",
                 "readout_theta_lr", "baseline_rate")
_CHOICES = {"hidden_mode": ("stdp", "random"), "normalize": ("l2", "l1", "none")}


def _fail(key: str, value: Any, allowed: str) -> UserError:
    return UserError(f"model.{key}={value!r}: {allowed}")


def _check_numbers(cfg: dict[str, Any]) -> None:
    for key, low in _INTS.items():
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise _fail(key, value, f"must be an integer >= {low}")
    for key in DEFAULTS:
        if key in _INTS or key in _CHOICES:
            continue
        try:
            cfg[key] = float(cfg[key])
        except (TypeError, ValueError):
            raise _fail(key, cfg[key], "must be a number") from None
    for key in _POSITIVE:
        if not cfg[key] > 0:
            raise _fail(key, cfg[key], "must be > 0")
    for key in _NON_NEGATIVE:
        if not cfg[key] >= 0:
            raise _fail(key, cfg[key], "must be >= 0")


def validate(params: dict[str, Any], input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Merge ``params`` over ``DEFAULTS`` and check every value; raise ``UserError`` naming the
    first bad key, its value and what is allowed."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise _fail(unknown[0], params[unknown[0]], f"unknown key (allowed: {sorted(DEFAULTS)})")
    cfg = {**DEFAULTS, **dict(params)}
    _check_numbers(cfg)
    for key, allowed in _CHOICES.items():
        if cfg[key] not in allowed:
            raise _fail(key, cfg[key], f"must be one of {', '.join(allowed)}")
    if not cfg["v_th"] > cfg["v_rest"]:
        raise _fail("v_th", cfg["v_th"], f"must be > model.v_rest={cfg['v_rest']}")
    if not cfg["w_max"] > cfg["w_min"]:
        raise _fail("w_max", cfg["w_max"], f"must be > model.w_min={cfg['w_min']}")
    if not cfg["w_min"] <= cfg["w_init"] <= cfg["w_max"]:
        raise _fail("w_init", cfg["w_init"], f"must lie in [{cfg['w_min']}, {cfg['w_max']}]")
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise UserError(f"input_shape={input_shape}: must be (C, H, W) with positive sizes")
    side = min(input_shape[1:])
    if cfg["kernel"] > side:
        raise _fail("kernel", cfg["kernel"], f"must be <= the image side {side}")
    positions = (side - cfg["kernel"]) // cfg["stride"] + 1
    if cfg["pool"] > positions:
        raise _fail("pool", cfg["pool"], f"must be <= {positions} hidden positions per side")
    return cfg
