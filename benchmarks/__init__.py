"""Benchmarks: each lensflow stage beside the bare library doing the same work."""
