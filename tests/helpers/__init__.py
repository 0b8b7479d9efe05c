"""Shared test helpers (imported as ``helpers.<module>``; ``tests/`` is on pytest's path).

``configs``: the repo's paths, tiny run settings and Hydra composition. ``cli``: the command
line as a user runs it. ``runs``: tiny training and evaluation runs and their metrics.
``scripts``: the files under ``scripts/`` loaded as modules. Fixtures stay in ``conftest.py``.
"""
