"""kbu lapic [CPU]: the local APIC as the vCPU itself reads it, checked against QEMU.

Under TCG the debugger cannot read the APIC page (no current CPU: zeros) and
QEMU's `info lapic` leaves out the ID and the version, the one value seeds/000
had to patch a printf into the kernel to see. So kbu makes the stopped vCPU
read its own registers: a 32-bit load from its APIC page at the linear
address its page tables map it at (xAPIC), or RDMSR of the x2APIC MSRs,
injected and single-stepped like `kbu cpuid` and restored exactly (verified).
libkbu says which registers to read and how (`kbu lapic --plan`), renders
the report, compares it with `info lapic` and with the MP table's processor
entry, and marks every disagreement.
"""
import gdb

from . import core, cpuid, memory, session
from .core import KbuError


def _cpuid1_args(cpuid1):
    return ["--cpuid1", "0x%x,0x%x,0x%x,0x%x" % tuple(cpuid1)] if cpuid1 else []


def vcpu_read(cpuid1=None):
    """({offset: value} the selected vCPU read from its own local APIC, notes).
    Raises KbuError saying why the vCPU cannot read them (cpuid.RestoreError if
    its state could not be put back)."""
    c = session.ctx()
    plan = c.run_json(["lapic", "--plan"] + _cpuid1_args(cpuid1))
    load = plan.get("method") == "load"
    with cpuid.Injection(cpuid.LOAD32 if load else cpuid.RDMSR, lapic=load) as inj:
        if load:
            where = inj.site.get("lapic") or {}
            linear = where.get("linear")
            if linear is None:
                raise KbuError("the vCPU cannot reach its local APIC page: %s"
                               % where.get("how", "?"))

            def read(reg):
                return inj.run({"rax": linear + reg["offset"]})[0]
        else:
            def read(reg):
                return inj.run({"rcx": reg["msr"]})[0]
        values = {}
        regs = plan.get("registers", [])
        if plan.get("needs_version") and regs:
            values[regs[0]["offset"]] = read(regs[0])
            plan = c.run_json(["lapic", "--plan", "--apic-version", "0x%x" % values[regs[0]["offset"]]]
                              + _cpuid1_args(cpuid1))
            regs = plan.get("registers", [])
        for reg in regs:
            if reg["offset"] not in values and (load or reg.get("msr")):
                values[reg["offset"]] = read(reg)
    how = "loads from its APIC page at 0x%x" % linear if load else "RDMSR of its x2APIC MSRs"
    return values, inj.notes, how


def read_all(cpuid1=None):
    """[{cpu, registers: {"0x20": value, ...}}] for each vCPU that could read its own
    local APIC, and {cpu: why} for the others (QEMU's monitor then speaks for them)."""
    core.need_live("reading the local APICs")
    prev = gdb.selected_thread()
    out, why = [], {}
    try:
        for cpu in range(len(gdb.selected_inferior().threads())):
            memory.cpu_thread(cpu).switch()
            try:
                values, _notes, _how = vcpu_read(cpuid1)
            except cpuid.RestoreError:
                raise
            except KbuError as e:
                why[cpu] = str(e)
                continue
            out.append({"cpu": cpu, "registers": {"0x%x" % k: v for k, v in sorted(values.items())}})
    finally:
        prev.switch()
    return out, why


class Lapic(core.KbuCommand):
    """Every local APIC register as the vCPU reads it, decoded; checked against QEMU and the MP table.

Shows ID, version (masked 0x00ff00ff, with the max LVT entry), TPR/APR/PPR,
LDR/DFR, SVR, each LVT (vector, delivery, status, polarity, remote IRR,
trigger, mask, timer mode), ESR, ICR, counts, DCR as a divisor, ISR/IRR/TMR.
The vCPU reads them itself (a load from its APIC page, RDMSR in x2APIC mode),
restored and verified like kbu cpuid; registers `info lapic` disagrees on
and an MP table entry that does not match are marked `!`. A vCPU that cannot
run (halted with interrupts off, waiting for SIPI) is shown from QEMU's
monitor, and why is said. --no-vcpu uses the monitor only."""

    name = "lapic"

    def parser(self, p):
        p.add_argument("cpu", nargs="?", type=int, default=None,
                       help="vCPU / APIC ID (default: the selected thread's vCPU)")
        p.add_argument("--no-cpuid", action="store_true",
                       help="do not run CPUID leaf 1 on the vCPU (mode then less certain)")
        p.add_argument("--no-vcpu", action="store_true",
                       help="do not make the vCPU read its registers (QEMU's monitor only)")
        p.add_argument("--json", action="store_true", help="the libkbu JSON report")

    def run(self, a):
        core.need_live("kbu lapic")
        cpu = core.cpu_index() if a.cpu is None else a.cpu
        prev = gdb.selected_thread()
        memory.cpu_thread(cpu).switch()
        notes = []
        try:
            argv = ["lapic", str(cpu)]
            cpuid1 = None
            if not a.no_cpuid:
                try:
                    cpuid1 = cpuid.run_leaves([(1, 0)])[(1, 0)]
                    argv += _cpuid1_args(cpuid1)
                except cpuid.RestoreError:
                    raise
                except KbuError as e:
                    notes.append("CPUID not run (%s)" % e)
            if not a.no_vcpu:
                try:
                    values, inj_notes, how = vcpu_read(cpuid1)
                    argv += ["--vcpu", ",".join("0x%x=0x%x" % kv for kv in sorted(values.items())),
                             "--vcpu-note", "read by vCPU %d itself (%s; state restored and "
                             "verified)" % (cpu, how)]
                    notes += inj_notes
                except cpuid.RestoreError:
                    raise
                except KbuError as e:
                    argv += ["--vcpu-note", str(e)]
        finally:
            prev.switch()
        try:
            from . import reloc
            vs = reloc.slides()[0]
            if vs:
                argv += ["--slide", "0x%x" % (vs & 0xffffffffffffffff)]
        except (ImportError, KbuError):
            pass
        st, text = session.run(argv, a.json)
        core.out(text)
        if not a.json:
            for note in notes:
                core.out("note: " + note)
