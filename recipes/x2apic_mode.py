"""x2apic-mode: does the kernel think it is in x2APIC mode, and is the CPU?

Arms `kbu watch x2apic` (the profile's flag, e.g. x2apic_mode) from the first
instruction, runs to the end state, then runs CPUID leaf 1 on the vCPU and
asks libkbu's lapic report which mode the APIC is really in.
"""
from kbu import cpuid
from kbu.core import KbuError

from ._common import OK, PROBLEM, UNDECIDED

NAME = "x2apic-mode"
WATCH = ("x2apic",)   # armed from the first instruction, before the guest runs
SUMMARY = "who switched the kernel's x2APIC flag, and whether the CPU offers x2APIC at all"


def run(r):
    r.end_state(watch=WATCH)
    w = r.watches.get("x2apic")
    try:
        from kbu import watch as watchmod
    except ImportError as e:
        r.verdict(UNDECIDED, "could not run: kbu watch is not available (%s)" % e)
        return
    watched = w is not None
    if not watched:
        try:
            w = watchmod.Watch("x2apic", r.profile())
        except KbuError as e:
            r.verdict(UNDECIDED, "could not read the kernel's x2APIC flag: %s" % e)
            return
    try:
        flag = w.read_raw()
        r.fact("variable", "variable", w.symbol)
        r.fact("kernel_x2apic", "%s now" % w.symbol, flag, w.render(flag))
        if watched:
            r.fact("changes", "changes", [{"cpu": c, "old": o, "new": n, "where": wh}
                                          for c, o, n, wh in w.log],
                   "\n".join("%s -> %s on CPU %s at %s" % (o, n, c, wh)
                             for c, o, n, wh in w.log) or "none")
            r.fact("summary", None, w.sentence())   # kbu watch report's sentence
    finally:
        if watched:
            watchmod.watches.active.pop("x2apic", None)
            w.disarm()
    cpu_x2 = None
    argv = ["lapic", "0"]
    try:
        eax, ebx, ecx, edx = cpuid.run_leaves([(1, 0)])[(1, 0)]
        cpu_x2 = bool(ecx & (1 << 21))
        argv += ["--cpuid1", "0x%x,0x%x,0x%x,0x%x" % (eax, ebx, ecx, edx)]
        r.fact("cpuid_x2apic", "CPUID.1:ECX.x2APIC", cpu_x2,
               "1 (the CPU offers x2APIC)" if cpu_x2 else "0 (no x2APIC: xAPIC only)")
    except KbuError as e:
        r.note("CPUID.1", "not run: %s" % e)
    mode = None
    try:
        lap = r.kbu_json(argv)
        mode = lap.get("mode", {}).get("mode")
        r.fact("apic_mode", "APIC mode (kbu lapic)", mode)
        for p in lap.get("problems", []):
            if p.get("path") == "mode":
                r.problem("lapic: " + p["message"])
    except KbuError as e:
        r.note("lapic", "not read: %s" % e)
    lines = r.log_lines(r"(?i)x2apic")
    if lines:
        r.fact("log", "kernel log", lines, "\n".join(lines[-6:]))
    if flag is None:
        r.verdict(UNDECIDED, "the kernel's %s cannot be read" % w.symbol)
        return
    who = ""
    if watched and w.log:
        c, o, n, wh = w.log[-1]
        who = " (switched %s -> %s at %s on CPU %s)" % (w.short(o), w.short(n), wh, c)
    if flag and cpu_x2 is False:
        r.verdict(PROBLEM, "the kernel set %s = %d%s but CPUID.1:ECX.x2APIC is 0: this VM has no "
                  "x2APIC (QEMU's TCG does not emulate it), so the APIC is still in xAPIC mode "
                  "and x2APIC MSR accesses (0x800+) will fault" % (w.symbol, flag, who),
                  "only switch to x2APIC when CPUID.1:ECX bit 21 is set (check before setting "
                  "the flag), or run with an x2APIC-capable CPU (KVM, -cpu host or +x2apic)")
        return
    if flag and cpu_x2:
        r.verdict(OK, "x2APIC mode: the kernel set %s = %d%s and the CPU offers x2APIC"
                  % (w.symbol, flag, who))
        return
    if not flag:
        r.verdict(OK, "xAPIC mode: %s = 0%s%s" % (
            w.symbol, " and it never changed" if watched and not w.log else who,
            "; the CPU %s x2APIC" % ("offers" if cpu_x2 else "does not offer")
            if cpu_x2 is not None else ""))
        return
    r.verdict(UNDECIDED, "%s = %d but whether the CPU offers x2APIC is unknown (CPUID not run)"
              % (w.symbol, flag))
