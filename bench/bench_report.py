#!/usr/bin/python3
"""Building and rendering big reports: the two largest a porter asks for.

  - `kbu sym --list` over Debian's System.map (87k rows), text and JSON,
    against `kbu sym startup_64` on the same map (the load alone): the
    difference is what building and rendering the table costs;
  - `kbu x -p 0 0x100000` over a 1 MiB raw image (65536 rows), text and JSON,
    against `hexdump -C` of the same MiB (what a porter would run otherwise).

CPU seconds (user + system) of the child, best of several runs, so a busy
shared machine does not skew them. Exits 1 if rendering 87k symbols costs more
than 0.25 CPU-s or the 1 MiB dump more CPU than hexdump -C.
"""
import os
import resource
import shutil
import subprocess
import tempfile

from benchlib import BUILD, linux_target_paths, run_main
from benchlib import skip as _skip

SYM_TARGET = 0.25
X_TARGET = 1.0


def skip(why):
    _skip("report", why)


def cpu(argv, runs=5):
    """Best child CPU time (user + system) of argv over runs; output discarded."""
    best = None
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.decode()[:300]}")
        t = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = t if best is None else min(best, t)
    return best


def system_map():
    path = os.path.expanduser("~/.cache/kbu/linux/current/System.map")
    if os.path.exists(path):
        return path
    paths, _ = linux_target_paths()
    return (paths or {}).get("system_map")


def main():
    kbu = os.path.join(BUILD, "kbu")
    if not os.access(kbu, os.X_OK):
        skip(f"{kbu} is not built")
    missed = 0
    smap = system_map()
    if smap and os.path.exists(smap) and os.path.getsize(smap) > 100000:
        nsyms = sum(1 for _ in open(smap, "rb"))
        load = cpu([kbu, "--symbols", smap, "sym", "startup_64"])
        for fmt, extra in (("text", []), ("JSON", ["--json"])):
            t = cpu([kbu, "--symbols", smap, "sym", "--list", *extra])
            render = max(t - load, 0.0)
            verdict = "" if render <= SYM_TARGET else f"  MISSED target {SYM_TARGET}s"
            missed += render > SYM_TARGET
            print(f"report: kbu sym --list ({nsyms} symbols, {fmt}) {t:.3f} CPU-s, of which "
                  f"building and rendering {render:.3f}s (load alone {load:.3f}s){verdict}")
    else:
        print("report: sym --list skipped: no System.map (scripts/linux-target fetches it)")

    with tempfile.TemporaryDirectory(prefix="kbu-bench-report-") as d:
        img = os.path.join(d, "mem.bin")
        with open(img, "wb") as f:
            f.write(os.urandom(1 << 20))
        ref = None
        if shutil.which("hexdump"):
            ref = cpu(["hexdump", "-C", img])
        for fmt, extra in (("text", []), ("JSON", ["--json"])):
            t = cpu([kbu, "--phys", img, "x", "-p", "0", "0x100000", *extra])
            if ref:
                ratio = t / ref if ref > 0 else 0.0
                verdict = "" if ratio <= X_TARGET else f"  MISSED target {X_TARGET}x"
                missed += ratio > X_TARGET
                print(f"report: kbu x of 1 MiB ({fmt}) {t:.3f} CPU-s vs hexdump -C {ref:.3f}s: "
                      f"{ratio:.2f}x{verdict}")
            else:
                print(f"report: kbu x of 1 MiB ({fmt}) {t:.3f} CPU-s (no hexdump to compare)")
    return 1 if missed else 0


if __name__ == "__main__":
    run_main("report", main)
