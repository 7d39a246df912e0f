#!/usr/bin/python3
"""What kbu watch costs: boot to the end state with GDB attached, unwatched vs
with `kbu watch x2apic` and `kbu watch timecounter` armed at reset (target
<= 1.2x), and the hand-written loop of seeds/000 on the same boot (`break
lapic_write32`, `continue`, read x2apic_mode, again and again) for contrast.
Test kernel ("ok" scenario, to "kbu-guest: idle") and Debian's Linux (to the
VFS panic). Times are measured inside GDB from `continue` to the final stop."""
import os
import re
import statistics
import sys

from benchlib import linux_target  # also puts tests/ on the path
import kbutest  # noqa: E402

RUNS = 3
LINUX_RUNS = 3
# Wall time and QEMU's CPU time (utime+stime of all its threads) from
# `continue` to the stop: CPU time stays meaningful on a loaded machine.
CPU = "(lambda f: (int(f[13]) + int(f[14])) / os.sysconf('SC_CLK_TCK'))" \
      "(open('/proc/%d/stat').read().rsplit(')', 1)[1].split()[-50:] and " \
      "['x', 'x'] + open('/proc/%d/stat').read().rsplit(')', 1)[1].split())"


def timer(pid):
    cpu = CPU % (pid, pid)
    return ("python import os, time; kbu_bench_t0 = time.monotonic(); kbu_bench_c0 = %s" % cpu,
            "python print('ELAPSED %%.3f CPU %%.3f' %% (time.monotonic() - kbu_bench_t0, "
            "%s - kbu_bench_c0))" % cpu)

def elapsed(out):
    """(wall, cpu) from the ELAPSED line the timed GDB commands print."""
    m = re.search(r"ELAPSED ([\d.]+) CPU ([\d.]+)", out)
    if not m:
        raise RuntimeError("no timing in GDB output:\n" + out[-2000:])
    return float(m.group(1)), float(m.group(2))


def watch_cmds(mode):
    """The kbu watch commands of a run: none (plain), both watches, or both with --stores."""
    if mode == "watched":
        return ["kbu watch x2apic", "kbu watch timecounter"]
    if mode == "stores":
        return ["kbu watch x2apic --stores", "kbu watch timecounter --stores"]
    return []


# seeds/000's loop: stop at every {hot}, read x2apic_mode, until {end} (at most {cap} stops).
LOOP = """python
import gdb, os, time
bp = gdb.Breakpoint("{hot}", internal=True)
end = gdb.Breakpoint("*0x{end:x}", internal=True)
hits = 0
t0 = time.monotonic()
c0 = {cpu}
while hits < {cap}:
    gdb.execute("continue", to_string=True)
    if end.hit_count:
        break
    hits += 1
    mode = int(gdb.parse_and_eval("*(int *)0x{x2apic:x}"))
print("ELAPSED %.3f CPU %.3f" % (time.monotonic() - t0, {cpu} - c0))
print("LOOP-HITS %d" % hits)
{tail}"""


def run_guest(mode, final_addr, hot=None, x2apic=None):
    kernel = kbutest.GUEST_KERNEL
    q = kbutest.Qemu(kernel, memory="128M", smp=2, paused=True,
                     append="console=ttyS0 kbu.scenario=ok")
    try:
        q.start()
        cmds = []
        t0, t1 = timer(q.pid)
        if mode == "loop":
            cmds.append(LOOP.format(hot=hot, end=final_addr, x2apic=x2apic, cap=10 ** 9,
                                    cpu=CPU % (q.pid, q.pid), tail="end\n"))
        else:
            cmds += watch_cmds(mode)
            cmds += ["break *0x%x" % final_addr, t0, "continue", t1]
            if mode != "plain":
                cmds += ["kbu watch report"]
        out = kbutest.gdb_kbu(kernel, q.port, cmds, timeout=600)
    finally:
        q.stop()
    hits = re.search(r"LOOP-HITS (\d+)", out)
    return elapsed(out), int(hits.group(1)) if hits else None, out


LOOP_CAP = 3000


def run_linux_loop(target):
    """seeds/000's loop on Linux: stop on every native_apic_mem_write, read x2apic_mode."""
    q = kbutest.boot_linux(target, image="elf", smp=1, append="", paused=True)
    try:
        cmd = LOOP.format(hot="*0x%x" % target.symbol("native_apic_mem_write"),
                          end=target.symbol("panic"), x2apic=target.symbol("x2apic_mode"),
                          cap=LOOP_CAP, cpu=CPU % (q.pid, q.pid), tail="")
        out = kbutest.gdb_kbu(target.vmlinux, q.port, [cmd], timeout=900)
    finally:
        q.stop()
    return elapsed(out), int(re.search(r"LOOP-HITS (\d+)", out).group(1))


def run_linux(target, mode):
    q = kbutest.boot_linux(target, image="elf", smp=1, append="", paused=True)
    try:
        panic = target.symbol("panic")
        cmds = ["set kbu symbols %s" % target.system_map]
        cmds += watch_cmds(mode)
        t0, t1 = timer(q.pid)
        cmds += ["break *0x%x" % panic, t0, "continue", t1]
        out = kbutest.gdb_kbu(target.vmlinux, q.port, cmds, timeout=600)
    finally:
        q.stop()
    return elapsed(out)


def sym(name):
    rc, obj, err = kbutest.kbu_json("sym", "--kernel", kbutest.GUEST_KERNEL, name)
    return obj["results"][0]["address"]


def summarize(name, runs, base, note=""):
    """runs, base: lists of (wall, cpu). Ratios of the medians and of the best runs."""
    w = statistics.median(r[0] for r in runs)
    c = statistics.median(r[1] for r in runs)
    bw = statistics.median(r[0] for r in base)
    bc = statistics.median(r[1] for r in base)
    best = min(r[1] for r in runs) / max(min(r[1] for r in base), 1e-3)
    return (name, w, c, w / bw, c / max(bc, 1e-3), best, note)


def main():
    rows = []
    if os.path.isfile(kbutest.GUEST_KERNEL):
        # The end state: the instruction that loads "kbu-guest: idle".
        rc, obj, err = kbutest.kbu_json("msgrefs", "--kernel", kbutest.GUEST_KERNEL,
                                        "kbu-guest: idle")
        idle = obj["refs"][0]["addr"]
        plain, watched, stores, loop = [], [], [], []
        hits = 0
        for _ in range(RUNS):   # interleaved: load on the machine hits both alike
            plain.append(run_guest("plain", idle)[0])
            watched.append(run_guest("watched", idle)[0])
            stores.append(run_guest("stores", idle)[0])
            t, hits, _ = run_guest("loop", idle, hot="*0x%x" % sym("lapic_write32"),
                                   x2apic=sym("x2apic_mode"))
            loop.append(t)
        rows += [summarize("guest ok, unwatched", plain, plain),
                 summarize("guest ok, both watches", watched, plain, "target <= 1.2x"),
                 summarize("guest ok, both watches --stores", stores, plain),
                 summarize("guest ok, break lapic_write32 loop", loop, plain,
                           "%d stops, seeds/000 style" % hits)]
    else:
        print("   guest kernel not built: skipped")
    target = linux_target()
    if target:
        plain, watched, stores = [], [], []
        for _ in range(LINUX_RUNS):
            plain.append(run_linux(target, "plain"))
            watched.append(run_linux(target, "watched"))
            stores.append(run_linux(target, "stores"))
        loop, hits = run_linux_loop(target)
        note = "%d stops%s, seeds/000 style" % (hits, " (capped)" if hits >= LOOP_CAP else "")
        rows += [summarize("linux to panic, unwatched", plain, plain),
                 summarize("linux to panic, both watches", watched, plain, "target <= 1.2x"),
                 summarize("linux to panic, both watches --stores", stores, plain),
                 summarize("linux, break native_apic_mem_write loop", [loop], plain, note)]
    print("   %-40s %8s %8s %8s %8s %8s" % ("boot to end state (GDB attached)", "wall s",
                                            "cpu s", "wall x", "cpu x", "best x"))
    for name, w, c, wr, cr, best, note in rows:
        print("   %-40s %8.3f %8.3f %7.2fx %7.2fx %7.2fx  %s" % (name, w, c, wr, cr, best, note))
    print("   (medians of %d interleaved runs; cpu = QEMU's user+sys time; best = fastest "
          "vs fastest)" % RUNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
