#!/usr/bin/python3
"""Triage recipes end to end (scripts/kbu-triage: boot paused, GDB, recipe,
QEMU stopped) against the bare boot of the same kernel to its end state, the
time a porter waits anyway. The ratio is what the recipe costs on top."""
import os
import statistics
import subprocess
import sys
import time

from benchlib import boot_times, linux_target  # also puts tests/ on the path
import kbutest  # noqa: E402

TRIAGE = os.path.join(kbutest.ROOT, "scripts", "kbu-triage")
RUNS = 3
GUEST = [("tsc-not-initialized", "tsc"), ("where-are-my-cpus", "mptable"),
         ("timecounter-stuck", "timecounter"), ("x2apic-mode", "x2apic"),
         ("lapic-state", "tsc"), ("pvh-entry", "ok"), ("mptable-walk", "mpcorrupt"),
         ("panic-triage", "pagefault")]
LINUX = "pvh-entry,timecounter-stuck,where-are-my-cpus,tsc-not-initialized,lapic-state,panic-triage"


def bare(kernel, append, final, memory, runs, **kw):
    return statistics.median(boot_times(kernel, append, final, memory, runs, 180, smp=2, **kw))


def triage(args, runs):
    times, rc = [], None
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.run([TRIAGE] + args, capture_output=True, text=True, timeout=600)
        times.append(time.monotonic() - t0)
        rc = p.returncode
        if rc not in (0, 1):
            print("   %s: exit %d: %s" % (args[0], rc, p.stderr.strip()[-300:]))
    return statistics.median(times), rc


def main():
    rows = []
    if os.path.isfile(kbutest.GUEST_KERNEL):
        for recipe, sc in GUEST:
            append = "console=ttyS0 kbu.scenario=%s" % sc
            b = bare(kbutest.GUEST_KERNEL, append, r"^(kbu-guest: idle|panic: .*)$", "256M", RUNS)
            t, rc = triage([recipe, "--smp", "2", "--", kbutest.GUEST_KERNEL, "-append", append],
                           RUNS)
            rows.append(("%s (%s)" % (recipe, sc), b, t, rc))
    else:
        print("   guest kernel not built (%s): skipped" % kbutest.GUEST_KERNEL)
    target = linux_target()
    if target:
        b = bare(target.vmlinux, "console=ttyS0", kbutest.PANIC_END, "256M", 1)
        t, rc = triage([LINUX, "--smp", "2", "--timeout", "120", "--symbols", target.system_map,
                        "--", target.vmlinux], 1)
        rows.append(("linux: 6 recipes, 1 boot", b, t, rc))
    print("   %-34s %8s %9s %7s %5s" % ("recipe (scenario)", "boot s", "recipe s", "ratio", "exit"))
    for name, b, t, rc in rows:
        print("   %-34s %8.2f %9.2f %6.1fx %5s" % (name, b, t, t / b, rc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
