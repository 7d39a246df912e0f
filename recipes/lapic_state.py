"""lapic-state: what state is each local APIC in when the kernel stops?

Runs to the end state, runs CPUID leaf 1 on the vCPU (so the mode is known)
and makes every vCPU that can run read its own local APIC registers (a load
from its APIC page, or RDMSR in x2APIC mode: `kbu lapic`'s injection, state
restored and verified) into r.live["lapic"]; libkbu judges the enable bit,
the timer and the error status, and reads QEMU's `info lapic` for the vCPUs
that cannot run (halted with interrupts off, waiting for SIPI).
"""
NAME = "lapic-state"


def early_cpuid(r):
    """CPUID leaf 1 where the guest stands before the recipe runs it (its x2APIC
    bit does not change while the kernel boots): the answer when the end state
    leaves no vCPU able to run CPUID (a halt with interrupts off)."""
    from kbu import cpuid
    from kbu.core import KbuError
    try:
        return cpuid.run_leaves([(1, 0)])
    except cpuid.RestoreError:
        raise
    except KbuError:
        return None


def keep_cpuid(r, early, where):
    """Falls back to the early CPUID values when the end state could not run CPUID."""
    if early is None or r.live.get("cpuid"):
        return
    why = r.live.pop("cpuid_error", None)
    r.live["cpuid"] = {"0x%x.%d" % key: list(regs) for key, regs in early.items()}
    r.live["cpuid_note"] = "run %s%s" % (where, " (at the end state: %s)" % why if why else "")


def gather(r):
    from kbu import lapic
    early = early_cpuid(r)
    r.end_state()
    values = r.cpuid([(1, 0)])
    keep_cpuid(r, early, "before the guest ran to its end state")
    leaf1 = (values or {}).get((1, 0)) or (early or {}).get((1, 0))
    reads, why = lapic.read_all(leaf1)
    if reads:
        r.live["lapic"] = reads
    if why:
        r.live["lapic_not_read"] = {str(cpu): text for cpu, text in why.items()}
