"""kbu lapic [CPU]: the libkbu LAPIC report, read through GDB.

Sources: QEMU's `monitor info lapic CPU` and the APIC page read physically
(libkbu does both through the bridge); CPUID leaf 1 is run on the paused vCPU
(kbu cpuid's injection, restored and verified) so the report can say whether
x2APIC exists; the kernel's own flag comes from the OS profile and symbols.
"""
import gdb

from . import core, cpuid, session
from .core import KbuCommand, KbuError


class Lapic(KbuCommand):
    """Every local APIC register decoded, with xAPIC offset and x2APIC MSR (QEMU info lapic).

Shows ID, version, TPR/APR/PPR, LDR/DFR, SVR, each LVT (vector, delivery,
status, polarity, remote IRR, trigger, mask, timer mode), ESR, ICR, counts,
DCR as a divisor, ISR/IRR/TMR; says which source it used, where sources
disagree, and the APIC mode as far as it can be known."""

    name = "lapic"

    def parser(self, p):
        p.add_argument("cpu", nargs="?", type=int, default=0, help="APIC ID / CPU (default 0)")
        p.add_argument("--no-cpuid", action="store_true",
                       help="do not run CPUID leaf 1 on the vCPU (mode then less certain)")
        p.add_argument("--json", action="store_true", help="the libkbu JSON report")

    def run(self, a):
        core.need_live("kbu lapic")
        argv = ["lapic", str(a.cpu)]
        note = None
        if not a.no_cpuid:
            try:
                r = cpuid.run_leaves([(1, 0)])[(1, 0)]
                argv += ["--cpuid1", "0x%x,0x%x,0x%x,0x%x" % r]
            except KbuError as e:
                if "restore failed" in str(e):
                    raise
                note = "CPUID not run (%s)" % e
        try:
            from . import reloc
            vs = reloc.slides()[0]
            if vs:
                argv += ["--slide", "0x%x" % (vs & 0xffffffffffffffff)]
        except (ImportError, KbuError):
            pass
        st, text = session.run(argv, a.json)
        core.out(text)
        if note and not a.json:
            core.out("note: " + note)
