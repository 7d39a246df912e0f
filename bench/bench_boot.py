#!/usr/bin/python3
"""Boot times under TCG, through the test harness: each test-kernel scenario to
its final console line (the issue's limit is 2 s), and Debian's kernel to its
root-fs panic both ways. Ratios are against those limits."""
import os
import statistics
import sys

from benchlib import boot_times, linux_target  # also puts tests/ on the path
import kbutest  # noqa: E402

GUEST_LIMIT = 2.0
LINUX_LIMIT = 120.0     # the harness's boot timeout
RUNS = 3


def time_boot(kernel, append, final, memory, limit, **kw):
    times = boot_times(kernel, append, final, memory, RUNS, max(60, limit * 2), **kw)
    return statistics.median(times), max(times)


def main():
    rows = []
    if os.path.isfile(kbutest.GUEST_KERNEL):
        for sc in ("tsc", "timecounter", "x2apic", "mptable", "mpcorrupt", "ok"):
            med, worst = time_boot(kbutest.GUEST_KERNEL, "console=ttyS0 kbu.scenario=%s" % sc,
                                   r"^(kbu-guest: idle|panic: .*)$", "128M", GUEST_LIMIT)
            rows.append(("guest " + sc, med, worst, GUEST_LIMIT))
    else:
        print("   guest kernel not built (%s): skipped" % kbutest.GUEST_KERNEL)
    target = linux_target()
    if target:
        for image, kernel in (("elf (PVH)", target.vmlinux), ("bzImage", target.bzimage)):
            med, worst = time_boot(kernel, kbutest.linux.DEFAULT_APPEND, kbutest.PANIC_END,
                                   "256M", LINUX_LIMIT)
            rows.append(("linux " + image, med, worst, LINUX_LIMIT))
    print("   %-22s %9s %9s %9s %8s" % ("boot to end state", "median s", "worst s", "limit s", "ratio"))
    for name, med, worst, limit in rows:
        print("   %-22s %9.2f %9.2f %9.0f %7.2fx" % (name, med, worst, limit, worst / limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
