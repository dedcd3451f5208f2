"""Benchmarks of the gate, run by hand; the test suite runs only their smoke tests."""
