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

from benchlib import BUILD, best_wall, build_libkbu_bench, linux_target_paths, run_main
from benchlib import skip as _skip

TARGET = 0.5


def skip(why):
    _skip("symbols", why)


def linux_inputs():
    """key=value paths printed by scripts/linux-target (fetches on first use)."""
    paths, why = linux_target_paths()
    if paths is None:
        skip(why)
    return paths


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
    exe = build_libkbu_bench("symbols", "symbench")
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
    line("load + index System.map", m["syms"], m["load_s"])
    e = symbench(exe, "elf", vdbg)
    line("load + index vmlinux .symtab", e["syms"], e["load_s"])
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
    run_main("symbols", main)
