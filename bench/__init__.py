"""Benchmarks: ``python -m bench.intake`` measures HTTP intake → dispatched task against bare dramatiq."""
