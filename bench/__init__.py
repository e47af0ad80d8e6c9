"""Benchmarks of threetier against a model of real AWS (not a test suite: a tool).

`python -m bench` runs `up` and `down` in-process against moto on a virtual
clock, with `bench.model.LatencyModel` making moto behave like AWS in time
(the figures and sources of docs/aws-latency.md), and reports minutes, call counts and
the wall seconds of the commands that only look.
"""
