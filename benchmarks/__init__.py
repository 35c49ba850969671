"""Benchmark scripts; see README.md. Not collected by pytest."""
