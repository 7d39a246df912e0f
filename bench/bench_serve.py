#!/usr/bin/python3
"""kbu as the default post-mortem path, measured as ratios:

  - three whole CLI commands on a 256 MiB dump of Debian's kernel (-smp 2):
    `kbu mptable`, `kbu pvh --symbols System.map`, `kbu cpus`, against one
    `cat` of the same dump (target: <= 0.3x);
  - GDB's backtraces (`thread apply all bt`) through `kbu serve` on a dump,
    against the same over QEMU's own live stub on the same state (target:
    <= 2x), for the test kernel at its TSC panic and for Debian's kernel
    (DWARF vmlinux, -smp 2) at its root-fs panic.

Best of several runs each (the machine is shared). Exits 1 if a target is missed.
"""
import os
import subprocess
import tempfile
import time

from benchlib import BUILD, best_wall, run_main
from benchlib import skip as _skip

CAT_TARGET = 0.3
BT_TARGET = 2.0


def skip(why):
    _skip("serve", why)


def gdb_time(argv, runs=3):
    """Best wall time of a GDB batch run (its output checked by the caller)."""
    best, out = None, ""
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=600)
        t = time.perf_counter() - t0
        out = r.stdout + r.stderr
        best = t if best is None else min(best, t)
    return best, out


def gdb_argv(kernel, target, osabi_none, cmds):
    argv = ["gdb", "-batch", "-nx"]
    if osabi_none:
        argv += ["-ex", "set osabi none"]
    argv += ["-ex", "file " + kernel, "-ex", target]
    for c in cmds:
        argv += ["-ex", c]
    return argv


def threads(out):
    """Each thread's frames (function names) in a `thread apply all bt` output.
    A CPU still in panic() runs its delay loop between the dump and the live
    stub's stops: its frames below panic() are not state, only the chain from
    panic() out is compared."""
    got, cur = [], None
    for line in out.splitlines():
        if line.startswith("Thread "):
            cur = []
            got.append(cur)
        elif line.startswith("#") and cur is not None:
            cur.append(line.split(" in ")[-1].split(" (")[0].split()[-1])
    return [t[t.index("panic"):] if "panic" in t else t for t in got]


def bt_ratio(label, kernel, qemu, dump, kbu, osabi_none, extra=()):
    """`bt` through kbu serve on the dump vs over the live stub, same state."""
    # Every thread's backtrace: kbu serve starts GDB on the CPU in panic(),
    # QEMU on CPU 0, and the work must be the same on both sides.
    bt = ["thread apply all bt"]
    live, out_live = gdb_time(gdb_argv(kernel, "target remote 127.0.0.1:%d" % qemu.port,
                                       osabi_none, bt))
    served, out_served = gdb_time(gdb_argv(kernel, "target remote | %s serve --core %s %s"
                                           % (kbu, dump, " ".join(extra)), osabi_none, bt))
    if "panic" not in " ".join(sum(threads(out_served), [])):
        raise RuntimeError("%s: bt through kbu serve shows no panic:\n%s" % (label, out_served[-2000:]))
    if sorted(threads(out_served)) != sorted(threads(out_live)):
        raise RuntimeError("%s: the backtraces differ: served %s, live %s"
                           % (label, threads(out_served), threads(out_live)))
    ratio = served / live
    print(f"serve: {label}: bt through kbu serve {served * 1e3:.0f} ms, over QEMU's live stub "
          f"{live * 1e3:.0f} ms (thread apply all bt): {ratio:.2f}x (target <= {BT_TARGET}x)"
          + ("" if ratio <= BT_TARGET else "  MISSED"))
    return ratio > BT_TARGET


def main():
    try:
        import kbutest
    except ImportError as ex:
        skip(f"the test harness (tests/kbutest) does not import: {ex}")
    kbu = os.path.join(BUILD, "kbu")
    if not os.access(kbu, os.X_OK):
        skip(f"{kbu} is not built")
    missed = 0
    with tempfile.TemporaryDirectory(prefix="kbu-bench-serve-") as tmp:
        guest = os.path.join(BUILD, "guest", "kernel")
        if os.path.exists(guest):
            q = kbutest.Qemu(guest, smp=2, memory="128M", append="console=ttyS0 kbu.scenario=tsc")
            try:
                q.start()
                q.wait_serial(r"^panic: ", timeout=60)
                dump = q.dump(os.path.join(tmp, "tsc.core"))
                missed += bt_ratio("test kernel", guest, q, dump, kbu, True,
                                   ["--kernel", guest])
            finally:
                q.stop()
        try:
            target = kbutest.fetch_linux_target()
        except kbutest.LinuxTargetError as ex:
            print(f"serve: Linux skipped: {ex}")
            return 1 if missed else 0
        smap = target.system_map
        q = kbutest.boot_linux(target, image="elf", smp=2, append="kbu.token=bench")
        try:
            dump = q.dump(os.path.join(tmp, "linux.core"))
            dbg = getattr(target, "vmlinux_dbg", None)
            if dbg and os.path.exists(dbg):
                missed += bt_ratio("Debian's kernel", dbg, q, dump, kbu, False,
                                   ["--symbols", smap])
        finally:
            q.stop()  # a TCG guest spinning in its panic would slow what follows
        size = os.path.getsize(dump)
        cat = best_wall(["cat", dump], runs=7)
        cmds = [[kbu, "mptable", "--core", dump],
                [kbu, "pvh", "--symbols", smap, "--core", dump],
                [kbu, "cpus", "--core", dump]]
        times = [best_wall(c, runs=7) for c in cmds]
        total = sum(times)
        ratio = total / cat
        print(f"serve: inputs: Debian linux-image-{target.version}, -smp 2, {size >> 20} MiB "
              f"dump, {os.path.getsize(smap) >> 10} KiB System.map")
        print(f"serve: kbu mptable + kbu pvh --symbols + kbu cpus: "
              f"{times[0] * 1e3:.1f} + {times[1] * 1e3:.1f} + {times[2] * 1e3:.1f} = "
              f"{total * 1e3:.1f} ms; cat of the dump {cat * 1e3:.1f} ms: {ratio:.2f}x "
              f"(target <= {CAT_TARGET}x)" + ("" if ratio <= CAT_TARGET else "  MISSED"))
        missed += ratio > CAT_TARGET
    return 1 if missed else 0


if __name__ == "__main__":
    run_main("serve", main)
