#!/usr/bin/python3
"""MP table and PVH start info from a real 256 MiB QEMU dump and over a live
GDB stub, on Debian's cloud kernel booted with -smp 2 on microvm.

Measures through libkbu (bench/tablesbench.c, built here against
build/libkbu.a), best of several cold rounds (a fresh source each round):
  - time to walk the MP table and to find + decode the start info (by scanning
    and, with System.map, through pvh_start_info), as a ratio to the 50 ms target,
  - how much of the source that read (calls into it and bytes; over the stub a
    call is one round trip),
  - the whole `kbu mptable --core` and `kbu pvh --core` commands.
Exits 1 if a dump measurement misses the target.
"""
import os
import subprocess
import tempfile

from benchlib import BUILD, best_wall, build_libkbu_bench, run_main
from benchlib import skip as _skip

TARGET_S = 0.050


def skip(why):
    _skip("tables", why)


def run_bench(exe, kind, where, rounds, smap):
    args = [exe, kind, where, str(rounds)] + ([smap] if smap else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"tablesbench {kind}: {r.stderr.strip()}")
    return {k: float(v) for k, v in (f.split("=") for f in r.stdout.split())}


def main():
    try:
        import kbutest
    except ImportError as ex:
        skip(f"the test harness (tests/kbutest) does not import: {ex}")
    try:
        target = kbutest.fetch_linux_target()
    except kbutest.LinuxTargetError as ex:
        skip(str(ex))
    smap = target.system_map if os.path.getsize(target.system_map) > 100000 else None
    exe = build_libkbu_bench("tables", "tablesbench")
    kbu = os.path.join(BUILD, "kbu")
    missed = 0
    with tempfile.TemporaryDirectory(prefix="kbu-bench-tables-") as tmp:
        q = kbutest.boot_linux(target, image="elf", smp=2, append="kbu.token=bench")
        try:
            dump = q.dump(os.path.join(tmp, "smp2.core"))
            size = os.path.getsize(dump)
            d = run_bench(exe, "core", dump, 7, smap)
            print(f"tables: inputs: Debian linux-image-{target.version} vmlinux, -smp 2, "
                  f"{size >> 20} MiB dump-guest-memory core")
            for what, key in (("mptable", "mptable"), ("pvh (scan)", "pvh"), ("pvh (pvh_start_info)", "pvh_sym")):
                if f"{key}_s" not in d:
                    continue
                t = d[f"{key}_s"]
                ratio = t / TARGET_S
                verdict = "" if ratio <= 1 else "  MISSED"
                missed += ratio > 1
                print(f"tables: {what} from the dump: {t * 1e3:.2f} ms = {ratio:.3f}x the 50 ms target, "
                      f"{int(d[key + '_reads'])} source reads, {int(d[key + '_bytes']) >> 10} KiB "
                      f"({d[key + '_bytes'] / size * 100:.3f}% of the dump){verdict}")
            print(f"tables: opening the dump: {d['open_s'] * 1e3:.2f} ms")
            if os.access(kbu, os.X_OK):
                for cmd in (["mptable"], ["pvh"]):
                    t = best_wall([kbu, *cmd, "--core", dump])
                    print(f"tables: whole `kbu {cmd[0]} --core` command: {t * 1e3:.1f} ms "
                          f"= {t / TARGET_S:.2f}x the 50 ms target")
            g = run_bench(exe, "gdb", "127.0.0.1:%d" % q.port, 3, smap)
            print(f"tables: over the live GDB stub: mptable {int(g['mptable_reads'])} round trips "
                  f"({int(g['mptable_bytes']) >> 10} KiB) in {g['mptable_s'] * 1e3:.1f} ms; "
                  f"pvh by scan {int(g['pvh_reads'])} round trips ({int(g['pvh_bytes']) >> 10} KiB) "
                  f"in {g['pvh_s'] * 1e3:.1f} ms"
                  + (f"; pvh via pvh_start_info {int(g['pvh_sym_reads'])} round trips "
                     f"({int(g['pvh_sym_bytes']) >> 10} KiB) in {g['pvh_sym_s'] * 1e3:.1f} ms"
                     if "pvh_sym_s" in g else ""))
        finally:
            q.stop()
    return 1 if missed else 0


if __name__ == "__main__":
    run_main("tables", main)
