"""Benchmarks, side by side with the tools we compete with: `python -m aietl_pipelines.benchmarks.<area>`."""
