"""x2apic-mode: does the kernel think it is in x2APIC mode, and is the CPU?

Arms `kbu watch x2apic` (the profile's flag) from the first instruction, runs
to the end state and runs CPUID leaf 1 on the vCPU; libkbu reads the flag and
judges it against CPUID.1:ECX[21].
"""
NAME = "x2apic-mode"
WATCH = ("x2apic",)   # armed from the first instruction, before the guest runs


def gather(r):
    r.end_state(watch=WATCH)
    r.cpuid([(1, 0)])
