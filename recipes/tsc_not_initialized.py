"""tsc-not-initialized: why does the kernel have no TSC frequency?

Drives the guest to its end state and runs the CPUID leaves a kernel reads for
the frequency on the stopped vCPU (hypervisor leaf 0x40000010, leaves
0x15/0x16); libkbu reads the kernel's frequency variable (profile role
tsc_freq) and its log, walks the chain and judges.
"""
from kbu import cpuid

NAME = "tsc-not-initialized"


def gather(r):
    r.end_state()
    r.cpuid(cpuid.TSC_LEAVES)
