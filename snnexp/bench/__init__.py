"""Benchmarks of issue 7: the notebook's reference computation and the measurement functions.

``python scripts/bench.py`` prints them as one table; see ``snnexp.bench.sections``.
"""
