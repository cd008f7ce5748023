"""Benchmark harness for vae_keras: speed against a tutorial-style reference VAE,
quality at a fixed budget, memory, and the wall time of the notebooks.

Run `python -m benchmarks.run --help`; see `benchmarks/README.md`.
"""
