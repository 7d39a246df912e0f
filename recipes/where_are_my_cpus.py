"""where-are-my-cpus: the CPUs the VM has, the firmware describes and the kernel found.

Runs to the end state; libkbu reads the rest itself: the VM's vCPUs and which
of them left reset, the MP table (walked by its base table length) and the
ACPI MADT, the firmware that wrote them, the kernel's CPU count (profile role
ncpus) and its log, and names the layer that lost CPUs.
"""
NAME = "where-are-my-cpus"


def gather(r):
    r.end_state()
