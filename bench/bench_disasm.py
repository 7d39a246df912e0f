#!/usr/bin/python3
"""kbu's capstone scans over Debian's Linux text (about 24 MiB of code) against
what a porter would otherwise run, `objdump -d vmlinux | grep`:
  - msgrefs "Unable to mount root fs"  (kbu break msg)
  - asserts                            (kbu break assert --list: every panic/__warn/report_bug call)
  - msgrefs --data curr_clocksource:8  (kbu watch: who stores to the variable)
Target: each under a second. objdump runs once (it dominates the bench)."""
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import kbutest  # noqa: E402

RUNS = 5


def timed(argv, runs=RUNS):
    times = []
    out = None
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        times.append(time.monotonic() - t0)
        if p.returncode not in (0, 1):
            raise RuntimeError("%s failed: %s" % (argv[:3], p.stderr.decode(errors="replace")))
        out = p.stdout
    return statistics.median(times), min(times), out


def objdump_grep(vmlinux, pattern):
    """objdump -d | grep PATTERN, timed as one pipeline."""
    t0 = time.monotonic()
    od = subprocess.Popen(["objdump", "-d", "--no-show-raw-insn", vmlinux],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    gr = subprocess.run(["grep", "-c", pattern], stdin=od.stdout, stdout=subprocess.PIPE)
    od.stdout.close()
    od.wait()
    return time.monotonic() - t0, int(gr.stdout.decode().strip() or 0)


def main():
    if not os.path.isfile(kbutest.KBU):
        print("   %s not built: skipped" % kbutest.KBU)
        return 0
    try:
        t = kbutest.fetch_linux_target()
    except kbutest.LinuxTargetError as e:
        print("   no Linux target: %s" % e)
        return 0
    base = [kbutest.KBU, "--kernel", t.vmlinux, "--symbols", t.system_map]
    panic = "%x" % t.symbol("panic")
    cases = [
        ("msgrefs 'Unable to mount root fs'", base + ["msgrefs", "Unable to mount root fs"]),
        ("asserts (every entry, all callers)", base + ["asserts"]),
        ("msgrefs --data curr_clocksource:8", base + ["msgrefs", "--data", "curr_clocksource:8"]),
    ]
    rows = []
    for name, argv in cases:
        med, best, _ = timed(argv)
        rows.append((name, med, best))
    if shutil.which("objdump"):
        od_t, calls = objdump_grep(t.vmlinux, "call.*%s" % panic)
    else:
        od_t, calls = None, 0
    print("   %-38s %9s %9s %10s" % ("over Linux's text", "median s", "best s", "vs objdump"))
    for name, med, best in rows:
        ratio = ("%9.3fx" % (med / od_t)) if od_t else "       n/a"
        print("   %-38s %9.3f %9.3f %s  %s" % (name, med, best, ratio,
                                               "ok (< 1 s)" if med < 1.0 else "OVER 1 s"))
    if od_t:
        print("   %-38s %9.3f %9s  (%d direct calls of panic found by grep)"
              % ("objdump -d vmlinux | grep call.*panic", od_t, "", calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
