"""Benchmarks of snncc and its peers."""
