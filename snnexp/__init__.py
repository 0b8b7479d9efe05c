"""snnexp: Hydra-configured few-shot experiments with spiking neural networks."""

from __future__ import annotations

from typing import Any

__all__ = ["load_learner"]


def __getattr__(name: str) -> Any:
    # lazy: `import snnexp.models.rstdp` must not pull torch in through this package
    if name == "load_learner":
        from snnexp.api import load_learner

        return load_learner
    raise AttributeError(f"module 'snnexp' has no attribute {name!r}")
