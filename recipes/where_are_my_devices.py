"""where-are-my-devices: where the VM describes its virtio-mmio devices, and
whether the kernel looks there ("Where's my disks?").

Runs to the end state; libkbu reads the start info's command line
(virtio_mmio.device= entries), the ACPI tables (a DSDT describes the devices
when ACPI is on, and QEMU then puts nothing on the command line) and which of
the two the kernel has code for (profile roles devices_cmdline,
devices_acpi).
"""
NAME = "where-are-my-devices"


def gather(r):
    r.end_state()
