"""Benchmarks, run by hand with `make bench` (`python -m bench`), never by `make test`.

Each module measures one thing against the machine's own limit in the same run and writes
bench/results/<module>.json.
"""
