"""Benchmarks for minidl (``python -m benchmarks.theano_paper``: the Theano paper's figures)."""
