"""Benchmarks of issue 7: the notebook's reference computation and the measurement functions.

Not part of the installed ``snnexp`` package: a plain folder imported from the repository root
(``python scripts/bench.py`` puts the root on ``sys.path``; pytest's ``pythonpath`` does for the
tests). ``scripts/bench.py`` prints the figures as one table.
"""
