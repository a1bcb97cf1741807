"""Benchmarks, run by hand or in CI (never as timed unit tests); see each module's docstring."""
