"""lapic-state: what state is each local APIC in when the kernel stops?

Runs to the end state and CPUID leaf 1 on the vCPU (so the mode is known);
libkbu reads every CPU's local APIC (QEMU's `info lapic`, the trustworthy
source under TCG) and judges the enable bit, the timer and the error status.
"""
NAME = "lapic-state"


def gather(r):
    r.end_state()
    r.cpuid([(1, 0)])
