"""SEER's benchmarks: real controllers and daemons, a table, and JSON.

Run ``python -m bench --help`` (or ``make bench``).  Benchmarks measure; they
never pass or fail a test.
"""
