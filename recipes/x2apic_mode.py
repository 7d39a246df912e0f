"""x2apic-mode: does the kernel think it is in x2APIC mode, and is the CPU?

Arms `kbu watch x2apic` (the profile's flag) from the first instruction, runs
CPUID leaf 1 where the guest stands and again at the end state (a halt with
interrupts off can run nothing there; the x2APIC bit does not change while
the kernel boots); libkbu reads the flag and judges it against
CPUID.1:ECX[21].
"""
from .lapic_state import early_cpuid, keep_cpuid

NAME = "x2apic-mode"
WATCH = ("x2apic",)   # armed from the first instruction, before the guest runs


def gather(r):
    early = early_cpuid(r)
    r.end_state(watch=WATCH)
    r.cpuid([(1, 0)])
    keep_cpuid(r, early, "before the guest ran to its end state")
