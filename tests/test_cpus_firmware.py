"""Where are my CPUs, whatever the firmware (seeds/001): QEMU gets -smp 4, and
whether the kernel sees 4 depends on which table the firmware wrote and which
one the kernel reads. SeaBIOS (acpi=on) writes an MP table with ONE processor
and a MADT with four; qboot (acpi=off) an MP table with every CPU and no ACPI.
The real FreeBSD 14.2 kernel printed `MPTable: <BOCHSCPU 0.1>` there and found
one CPU (tests/targets/freebsd-14.2/serial-seabios-acpi-smp4.log)."""
import os

import pytest

from test_recipes import triage, verdict

SEABIOS = "/usr/share/seabios/bios-microvm.bin"
TARGET = os.path.join(os.path.dirname(__file__), "targets", "freebsd-14.2")


def test_seabios_one_cpu_mp_table_four_cpu_madt(guest_kernel):
    t = triage("where-are-my-cpus", guest_kernel, "kbu.scenario=ok", smp=4,
               opts=["--acpi", "--bios", SEABIOS])
    j = verdict(t, 1)
    f = j["facts"]
    assert (f["vcpus"], f["table_cpus"], f["madt_cpus"], f["kernel_cpus"]) == (4, 1, 4, 1)
    assert f["firmware"] == "SeaBIOS"
    cause = j["verdict"]["cause"]
    assert cause.startswith("SeaBIOS (ACPI on) built an MP table with 1 of 4 CPUs; the MADT lists "
                            "4; this kernel enumerates CPUs from the MP table"), cause
    assert j["verdict"]["code"] == "cpus.mptable_short"
    assert "acpi=off" in j["verdict"]["next"] and "MADT" in j["verdict"]["next"]
    # The real kernel's console on that machine: the same MP table banner.
    with open(os.path.join(TARGET, "serial-seabios-acpi-smp4.log")) as fh:
        assert "MPTable: <BOCHSCPU 0.1         >" in fh.read()
    t = triage("where-are-my-cpus", guest_kernel, "kbu.scenario=ok", smp=4, json_out=False,
               opts=["--acpi", "--bios", SEABIOS])
    assert "  CPUs by layer          vCPUs  MP table  MADT  kernel  left reset  in kernel code\n" \
           "                         4      1         4     1       " in t.out, t.out


def test_qboot_lists_every_cpu(guest_kernel):
    j = verdict(triage("where-are-my-cpus", guest_kernel, "kbu.scenario=ok", smp=4), 0)
    f = j["facts"]
    assert (f["vcpus"], f["table_cpus"], f["madt_cpus"], f["kernel_cpus"]) == (4, 4, None, 4)
    assert f["firmware"] == "qboot"
    assert j["verdict"]["cause"] == "the MP table lists 4 CPUs and the kernel found 4"


@pytest.mark.linux
@pytest.mark.timeout(400)
def test_linux_with_acpi_finds_every_cpu_in_the_madt(linux_target):
    t = triage("where-are-my-cpus", linux_target.vmlinux, "tsc_early_khz=2500000", smp=4,
               timeout=120, opts=["--acpi", "--symbols", linux_target.system_map])
    j = verdict(t, 0)
    f = j["facts"]
    assert f["madt_cpus"] == 4 and f["kernel_cpus"] == 4, f
    assert "the kernel found 4" in j["verdict"]["cause"]
