"""Benchmarks that print figures; their results are recorded in docs/benchmarks.md."""
