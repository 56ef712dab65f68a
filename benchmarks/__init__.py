"""Benchmarks for minidl; ``python -m benchmarks.theano_paper`` reproduces the Theano paper's figures."""
