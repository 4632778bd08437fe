"""Benchmarks that print their figures; each module's docstring says how to run it."""
