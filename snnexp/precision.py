"""Numeric precision of the synaptic operations: ``precision=fp32`` or ``bf16``.

``bf16`` runs convolutions and linears under ``torch.autocast`` in bfloat16 (oneDNN on a CPU
with AVX-512 BF16 or AMX; tensor cores on CUDA), while everything with state stays float32:
the LIF membranes (``v[t] = beta v[t-1] + I[t] - s[t-1] theta`` is scanned on float32
currents), batch-norm statistics, the prototypes and distances, the loss, the weights and the
optimizer. Spikes are 0/1 and exact in bfloat16, so the only rounding is of the weights (8 bits
of mantissa) and of the analog first-layer input and the currents.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from snnexp.errors import UserError


def cpu_has_bf16() -> bool:
    """Whether this CPU executes bfloat16 dot products natively (AVX-512 BF16 or AMX)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse ``bf16`` on hardware without native bfloat16 arithmetic (emulated, it is slower
    than float32 and gains nothing)."""
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(f"precision=bf16: {torch.cuda.get_device_name(device)} has no "
                        "bfloat16 support (allowed here: fp32)")
    if device.type == "cpu" and not cpu_has_bf16():
        raise UserError("precision=bf16: this CPU has neither AVX-512 BF16 nor AMX "
                        "(allowed here: fp32)")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"precision=bf16: not supported on device={device.type} "
                        "(allowed: fp32; bf16 on cpu or cuda)")


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """``torch.autocast`` to bfloat16 for ``precision="bf16"``, nothing for ``fp32``."""
    if precision != "bf16":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield
