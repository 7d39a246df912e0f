#!/usr/bin/python3
"""Runs every bench/bench_*.py in turn and prints what each measured.

Each benchmark prints its own lines as ratios against the tool a porter would
otherwise use; a benchmark whose inputs are missing says so and is skipped.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    names = sorted(n for n in os.listdir(HERE) if n.startswith("bench_") and n.endswith(".py"))
    if len(sys.argv) > 1:
        names = [n for n in names if any(a in n for a in sys.argv[1:])]
    failed = 0
    for name in names:
        print(f"== {name[:-3]}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, os.path.join(HERE, name)])
        print(f"   ({time.monotonic() - t0:.1f}s, exit {rc})", flush=True)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
