#!/usr/bin/python3
"""Symbol loading and look-ups against `nm -n`, on Debian's cloud kernel.

Inputs come from scripts/linux-target (System.map and the unstripped
vmlinux from the -dbg package). Measures, best of several runs:
  - load + index of System.map and of the vmlinux .symtab inside libkbu
    (bench/symbench.c, built here against build/libkbu.a),
  - the whole `kbu sym` command (process start, load, one look-up),
  - `nm -n vmlinux` (what a porter would run otherwise),
and prints each as a ratio to nm -n (target: at most 0.5x), plus look-ups per
second by address and by name. Exits 1 if a load misses the target.
"""
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("KBU_BUILD", os.path.join(ROOT, "build"))
TARGET = 0.5


def skip(why):
    print(f"symbols: skipped: {why}")
    sys.exit(0)


def linux_inputs():
    """key=value paths printed by scripts/linux-target (fetches on first use)."""
    script = os.path.join(ROOT, "scripts", "linux-target")
    if not os.access(script, os.X_OK):
        skip("scripts/linux-target is missing")
    try:
        out = subprocess.run([script, "--quiet"], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        skip("scripts/linux-target took more than 15 minutes")
    if out.returncode != 0:
        skip("scripts/linux-target failed: " + (out.stderr.strip().splitlines() or ["?"])[-1])
    paths = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return paths


def build_symbench():
    lib = os.path.join(BUILD, "libkbu.a")
    if not os.path.exists(lib):
        subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "native"), f"BUILD={BUILD}",
                        lib], check=False)
    if not os.path.exists(lib):
        skip(f"{lib} is missing and could not be built")
    exe = os.path.join(BUILD, "bench", "symbench")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    libs = subprocess.run(["pkg-config", "--libs", "libelf", "capstone"], capture_output=True,
                          text=True).stdout.split()
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-O2", "-std=c11", "-D_GNU_SOURCE",
                        "-I", os.path.join(ROOT, "native", "include"),
                        os.path.join(ROOT, "bench", "symbench.c"), lib, *libs, "-o", exe],
                       capture_output=True, text=True)
    if r.returncode != 0:
        skip("symbench did not build: " + r.stderr.strip()[:300])
    return exe


def best_wall(argv, runs=5):
    best = None
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.decode()[:300]}")
        best = t if best is None else min(best, t)
    return best


def symbench(exe, kind, path):
    r = subprocess.run([exe, kind, path, "7"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"symbench {kind} {path}: {r.stderr.strip()}")
    return {k: float(v) for k, v in (f.split("=") for f in r.stdout.split())}


def main():
    if not shutil.which("nm"):
        skip("nm (binutils) is not installed")
    paths = linux_inputs()
    smap, vdbg = paths.get("system_map"), paths.get("vmlinux_dbg")
    if not smap or not os.path.exists(smap) or os.path.getsize(smap) < 100000:
        skip("no real System.map (the -dbg package was not fetched)")
    if not vdbg or not os.path.exists(vdbg):
        skip("no unstripped vmlinux (the -dbg package was not fetched)")
    exe = build_symbench()
    kbu = os.path.join(BUILD, "kbu")
    version = paths.get("version", "?")
    print(f"symbols: inputs: Debian linux-image-{version} System.map and vmlinux from its -dbg "
          f"package ({os.path.getsize(vdbg) >> 20} MiB)")

    nm = best_wall(["nm", "-n", vdbg])
    missed = 0

    def line(what, n, t):
        nonlocal missed
        ratio = t / nm
        verdict = "" if ratio <= TARGET else f"  MISSED target {TARGET}x"
        missed += ratio > TARGET
        print(f"symbols: {what} ({int(n)} syms) {t:.3f}s vs nm -n {nm:.3f}s: {ratio:.2f}x{verdict}")

    m = symbench(exe, "map", smap)
    line("load System.map", m["syms"], m["load_s"])
    e = symbench(exe, "elf", vdbg)
    line("load vmlinux .symtab", e["syms"], e["load_s"])
    if os.access(kbu, os.X_OK):
        t = best_wall([kbu, "--symbols", smap, "sym", "startup_64"])
        line("kbu --symbols System.map sym startup_64 (whole command)", m["syms"], t)
        t = best_wall([kbu, "--kernel", vdbg, "sym", "startup_64"])
        line("kbu --kernel vmlinux sym startup_64 (whole command)", e["syms"], t)
    else:
        print(f"symbols: whole-command timing skipped: {kbu} is not built")
    for name, r in (("System.map", m), ("vmlinux", e)):
        print(f"symbols: look-ups on {name}: {r['addr_per_s'] / 1e6:.1f}M by address, "
              f"{r['name_per_s'] / 1e6:.1f}M by name per CPU-second")
    return 1 if missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as ex:
        print(f"symbols: failed: {ex}")
        sys.exit(1)
