"""Benchmarks behind ``voxlive bench``: each prints a table, or JSON with ``--json``."""
