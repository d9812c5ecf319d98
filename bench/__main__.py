"""python -m bench BENCHMARK [options]  --  or `make bench` for all of them."""

from __future__ import annotations

import argparse
import sys

from bench import (cli, dashboard, faults, fanout, footprint, launch_rate, loss, pyfloor,
                   signatures, stats, targets, throughput)

BENCHMARKS = {
    "cli": cli.main,
    "dashboard": dashboard.main,
    "faults": faults.main,
    "fanout": fanout.main,
    "footprint": footprint.main,
    "loss": loss.main,
    "pyfloor": pyfloor.main,
    "launch-rate": launch_rate.main,
    "signatures": signatures.main,
    "stats": stats.main,
    "throughput": throughput.main,
}
#: Not a benchmark: the targets beside the newest figures (run last).
SUMMARY = {"targets": targets.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="SEER benchmarks: real processes on this machine; each prints a table "
                    "and writes JSON under bench/results/. No argument runs them all.")
    parser.add_argument("benchmark", nargs="?", choices=sorted({**BENCHMARKS, **SUMMARY}),
                        help="one benchmark (its own options follow; --help for them); "
                             "'targets' prints every target beside its newest figure")
    every = {**BENCHMARKS, **SUMMARY}
    if argv and argv[0] in every:
        # The benchmark's own parser handles the rest, --help included.
        every[argv[0]](argv[1:])
        return 0
    parser.parse_args(argv)
    for name in sorted(BENCHMARKS):
        BENCHMARKS[name]([])
        print()
    targets.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
