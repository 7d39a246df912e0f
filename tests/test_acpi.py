"""`kbu acpi`, the firmware behind `kbu mptable` and the vCPU states of `kbu cpus`,
on real QEMU -M microvm boots:

- SeaBIOS (`-M microvm,acpi=on -bios /usr/share/seabios/bios-microvm.bin -smp 4`)
  under the test kernel and under Debian's Linux: the RSDP, the XSDT, the FADT,
  the MADT with four local APICs, every checksum verified; the MP table named
  as SeaBIOS's, with its one processor; four vCPUs whose halted state matches
  QEMU's own `info registers -a`; a dump says the same as the live stub.
- qboot (`acpi=off`): `kbu acpi` says in one line that there is no ACPI, and
  `kbu mptable` names qboot.
- A Firecracker-shaped MP table poked into a live guest before its kernel reads
  it: `kbu mptable` names the walk a kernel that trusts entry_count does, and
  the byte it meets after the table.
"""
import os
import re
import struct

import pytest

import kbutest

SEABIOS = "/usr/share/seabios/bios-microvm.bin"


@pytest.fixture(scope="module")
def seabios():
    if not os.path.isfile(SEABIOS):
        pytest.skip("%s is not installed (Debian package seabios)" % SEABIOS)
    return SEABIOS


def run_json(*args):
    rc, obj, err = kbutest.kbu_json(*args)
    assert rc == 0, err
    assert obj is not None
    return obj


def pvh_entry(kernel):
    return run_json("notes", kernel)["pvh_entry"]


def codes(obj):
    return [p["code"] for p in obj["problems"]]


def finding(obj, code):
    found = [p for p in obj["problems"] if p["code"] == code]
    assert found, "no finding %s in %s" % (code, [p["message"] for p in obj["problems"]])
    return found[0]


def qemu_halted(q, ncpus):
    """QEMU's own word: HLT= of each CPU in `info registers -a`."""
    text = q.monitor("info registers -a")
    flags = {}
    for m in re.finditer(r"^CPU#(\d+)\r?$(.*?)(?=^CPU#|\Z)", text, re.M | re.S):
        h = re.search(r"HLT=(\d)", m.group(2))
        flags[int(m.group(1))] = h and h.group(1) == "1"
    assert sorted(flags) == list(range(ncpus)), text
    return flags


def check_seabios_acpi(obj, ncpus):
    """What a porter checks in `kbu acpi` on SeaBIOS: the tables a kernel uses, sound."""
    assert obj["present"] is True
    assert obj["firmware"]["name"] == "SeaBIOS"
    assert obj["firmware"]["acpi"] is True
    rsdp = obj["rsdp"]
    assert rsdp["oem_id"] == "BOCHS"
    assert rsdp["revision"] == 2
    assert rsdp["checksum_ok"] is True and rsdp["ext_checksum_ok"] is True
    sigs = [t["signature"] for t in obj["tables"]["list"]]
    assert obj["tables"]["root"] == "XSDT"
    for sig in ("XSDT", "FACP", "APIC", "DSDT"):
        assert sig in sigs, sigs
    # Every checksum verified and right.
    assert all(t["checksum_ok"] is True for t in obj["tables"]["list"]), obj["tables"]["list"]
    assert all(t["state"] == "ok" for t in obj["tables"]["list"])
    assert obj["summary"]["checksums_not_ok"] == 0
    madt = obj["madt"]
    assert madt["present"] is True
    assert [c["apic_id"] for c in madt["local_apics"]] == list(range(ncpus))
    assert all(c["enabled"] for c in madt["local_apics"])
    assert madt["cpus_enabled"] == ncpus
    assert madt["lapic_address"] == 0xfee00000
    assert madt["io_apics"] and madt["io_apics"][0]["address"] == 0xfec00000
    # QEMU's microvm FADT: hardware-reduced, a DSDT through X_DSDT, no PM timer.
    fadt = obj["fadt"]
    assert fadt["hw_reduced"] is True
    dsdt = [t for t in obj["tables"]["list"] if t["signature"] == "DSDT"][0]
    assert fadt["x_dsdt"] == dsdt["address"]
    assert "acpi.fadt_hw_reduced" in codes(obj)
    assert not [p for p in obj["problems"] if p["severity"] != "note"], obj["problems"]
    # no -device given: QEMU's DSDT then describes no virtio-mmio transport
    assert obj["devices"]["described"] == "none" and obj["devices"]["dsdt_devices"] == []


def check_seabios_mptable(obj, ncpus):
    assert obj["firmware"]["name"] == "SeaBIOS"
    assert obj["header"]["oem_id"] == "BOCHSCPU" and obj["header"]["product_id"] == "0.1"
    assert len(obj["entries"]["processors"]) == 1
    f = finding(obj, "mptable.fewer_cpus_than_vcpus")
    assert f["fields"] == {"cpus": 1, "vcpus": ncpus}
    assert "SeaBIOS" in f["message"] and "MADT lists every vCPU" in f["message"]


def check_cpus(obj, q, ncpus):
    """kbu's vCPUs and their halted state against QEMU's `info registers -a` (the VM stopped)."""
    assert obj["ncpus"] == ncpus
    assert "thread list" in obj["vcpus"]["count_from"]
    assert obj["vcpus"]["halted_from"].startswith("QEMU's monitor")
    assert [c["cpu"] for c in obj["cpus"]] == list(range(ncpus))
    hlt = qemu_halted(q, ncpus)
    for c in obj["cpus"]:
        assert c["halted_from"] == "monitor", c
        if c["state"] in ("halted", "running"):
            assert c["halted"] == hlt[c["cpu"]], (c, hlt)
        else:  # at reset or waiting for SIPI: QEMU may mark those halted too
            assert c["state"] in ("reset", "wait-for-sipi"), c
    return obj


def test_seabios_under_the_test_kernel(qemu, guest_kernel, seabios, tmp_path):
    q = qemu(guest_kernel, smp=4, memory="128M", acpi=True, bios=seabios, paused=True,
             append="console=ttyS0")
    entry = pvh_entry(guest_kernel)
    # Inside GDB at the kernel's first instruction (the forwarded libkbu commands).
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["hbreak *%#x" % entry, "continue", "kbu acpi",
                                                 "kbu mptable", "kbu cpus"], timeout=120)
    assert "Traceback" not in out
    assert "name:        SeaBIOS" in out
    assert re.search(r"^  APIC  0x[0-9a-f]{8}\s+\d+\s+\d+\s+0x[0-9a-f]{2}\s+yes", out, re.M), out
    assert "! the table lists 1 processor but the VM has 4 vCPUs" in out
    # The APs were woken and parked by SeaBIOS in its own code, halted.
    assert out.count("halted in firmware (BIOS area)") == 3, out

    # The CLI over the stub once the kernel runs (FreeBSD's first console line), the VM
    # stopped so that QEMU's monitor sees the same moment.
    q.wait_serial(r"---<<BOOT>>---", timeout=120)
    q.qmp("stop")
    spec = "127.0.0.1:%d" % q.port
    live = run_json("acpi", "--gdb", spec)
    check_seabios_acpi(live, 4)
    check_seabios_mptable(run_json("mptable", "--gdb", spec), 4)
    cpus = check_cpus(run_json("cpus", "--gdb", spec, "--kernel", guest_kernel), q, 4)
    assert cpus["cpus"][0]["in"] == "kernel"

    # A dump of the same moment says the same, and so does a raw image of its memory.
    core = q.dump(str(tmp_path / "seabios.core"))
    assert run_json("acpi", "--core", core) == live
    raw = str(tmp_path / "seabios.raw")
    q.monitor('pmemsave 0 0x8000000 "%s"' % raw)
    image = run_json("acpi", "--phys", raw)
    # An image has no registers: the start info is found by scanning, not through %ebx.
    assert "start info" in image["rsdp"].pop("found") and "start info" in live["rsdp"].pop("found")
    assert image == live
    dump_cpus = run_json("cpus", "--core", core)
    assert dump_cpus["ncpus"] == 4 and "CPU notes" in dump_cpus["vcpus"]["count_from"]
    assert dump_cpus["vcpus"]["halted_from"].startswith("not recorded in a dump")
    assert all(c["halted_from"] != "monitor" for c in dump_cpus["cpus"])


def test_qboot_has_no_acpi(qemu, guest_kernel):
    # A kernel without FreeBSD's compat rewrite of entry_count (kbu.scenario=mptable)
    # leaves qboot's table as qboot wrote it, whenever the CLI below reads it.
    q = qemu(guest_kernel, smp=2, memory="128M", paused=True,
             append="console=ttyS0 kbu.scenario=mptable")
    entry = pvh_entry(guest_kernel)
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["hbreak *%#x" % entry, "continue", "kbu acpi"],
                          timeout=120)
    assert "note: no ACPI: " in out and "firmware: qboot" in out, out
    q.qmp("stop")
    spec = "127.0.0.1:%d" % q.port
    rc, text, err = kbutest.kbu("acpi", "--gdb", spec)
    assert rc == 0, err
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("note: no ACPI: no RSDP")
    assert "rsdp_paddr 0" in lines[0] and "firmware: qboot" in lines[0]
    obj = run_json("acpi", "--gdb", spec)
    assert obj["present"] is False
    assert obj["firmware"]["name"] == "qboot" and obj["firmware"]["acpi"] is False
    assert codes(obj) == ["acpi.absent"]
    rc, _, err = kbutest.kbu("acpi", "APIC", "--gdb", spec)
    assert rc == 2 and "no APIC table: no ACPI" in err
    # mptable answers as before, and names qboot.
    mp = run_json("mptable", "--gdb", spec)
    assert mp["firmware"]["name"] == "qboot"
    assert mp["header"]["oem_id"] == "QBOOT" and mp["header"]["entry_count"] == 0
    assert len(mp["entries"]["processors"]) == 2
    assert mp["header"]["count_walk"]["outcome"] == "short"
    assert "mptable.entry_count_zero" in codes(mp)
    assert "mptable.fewer_cpus_than_vcpus" not in codes(mp)


def test_before_the_firmware_ran(qemu, guest_kernel):
    """Paused at reset: no table yet, and both commands say why."""
    q = qemu(guest_kernel, smp=2, memory="128M", paused=True, append="console=ttyS0")
    spec = "127.0.0.1:%d" % q.port
    rc, text, err = kbutest.kbu("acpi", "--gdb", spec)
    assert rc == 0, err
    assert len(text.splitlines()) == 1 and "the firmware has not run yet" in text, text
    assert run_json("acpi", "--gdb", spec)["firmware_ran"] is False
    rc, _, err = kbutest.kbu("mptable", "--gdb", spec)
    assert rc == 2 and "CPU 0 is still at its reset vector, the firmware has not run yet" in err


# -- Firecracker -------------------------------------------------------------------------

def firecracker_mptable(ncpus):
    """The floating pointer and config table Firecracker writes at 0x9fc00, after its
    public source src/vmm/src/arch/x86_64/mptable.rs (setup_mptable). Firecracker
    cannot run here (it needs KVM); this follows that file: per vCPU a processor
    entry, one ISA bus, an I/O APIC with id ncpus+1, 24 I/O interrupts, ExtINT and
    NMI local interrupts, OEM "FC", product "000000000000", and the entry count of
    the releases that also count the floating pointer (one more than the entries)."""
    ioapic = ncpus + 1
    entries = b""
    for cpu in range(ncpus):
        entries += struct.pack("<BBBBII8x", 0, cpu, 0x14, 1 | (2 if cpu == 0 else 0), 0x600, 0x201)
    entries += b"\x01\x00ISA   "
    entries += struct.pack("<BBBBI", 2, ioapic, 0x14, 1, 0xfec00000)
    for irq in range(24):
        entries += struct.pack("<BBHBBBB", 3, 0, 0, 0, irq, ioapic, irq)
    entries += struct.pack("<BBHBBBB", 4, 3, 0, 0, 0, 0, 0)
    entries += struct.pack("<BBHBBBB", 4, 1, 0, 0, 0, 0xff, 1)
    count = ncpus + 1 + 1 + 24 + 2 + 1
    length = 44 + len(entries)
    header = struct.pack("<4sHBB8s12sIHHIHBB", b"PCMP", length, 4, 0, b"FC      ", b"0" * 12,
                         0, 0, count, 0xfee00000, 0, 0, 0)
    table = bytearray(header + entries)
    table[7] = -sum(table) & 0xff
    fp = bytearray(struct.pack("<4sIBBBB4x", b"_MP_", 0x9fc10, 1, 4, 0, 0))
    fp[10] = -sum(fp) & 0xff
    return bytes(fp + table)


def test_firecracker_table_walked_as_the_kernel_would(qemu, guest_kernel, tmp_path):
    q = qemu(guest_kernel, smp=1, memory="128M", paused=True,
             append="console=ttyS0 kbu.scenario=mptable")
    image = firecracker_mptable(1)
    assert len(image) == 16 + 288
    # What the devlog's guest held right after the 288-byte table: 0x44 ('D', 68).
    blob = tmp_path / "fc-mptable.bin"
    blob.write_bytes(image + b"\x44")
    entry = pvh_entry(guest_kernel)
    # Stopped at the kernel's first instruction: the firmware is done, the kernel has
    # read nothing. Replace the firmware's table with Firecracker's, then look.
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "hbreak *%#x" % entry, "continue",
        "restore %s binary 0x9fc00" % blob,
        "kbu mptable"], timeout=120)
    one_line = ("entry_count 30 counts one entry more than the 288-byte table holds; a walker that "
                "trusts it reads byte 0x44 (68) after the table (phys 0x9fd30): 'Unknown MP Config "
                "Entry 68'")
    assert "! error: " + one_line in out, out
    assert "name:        Firecracker" in out
    assert "Traceback" not in out
    # The CLI over the live stub (the guest ran on from the entry).
    obj = run_json("mptable", "--gdb", "127.0.0.1:%d" % q.port)
    assert obj["firmware"]["name"] == "Firecracker"
    assert obj["header"]["oem_id"] == "FC" and obj["header"]["checksum_ok"] is True
    assert obj["header"]["entry_count"] == 30 and obj["header"]["entries_walked"] == 29
    assert [a["apic_id"] for a in obj["entries"]["ioapics"]] == [2]
    f = finding(obj, "mptable.entry_count_past_end")
    assert f["message"] == one_line
    assert f["fields"]["byte"] == 68 and f["fields"]["address"] == 0x9fd30
    walk = obj["header"]["count_walk"]
    assert walk["outcome"] == "unknown_type" and walk["stop_type"] == 68
    assert walk["entries_read"] == 29


# -- Debian's Linux ----------------------------------------------------------------------

@pytest.mark.linux
def test_qboot_with_acpi_under_linux(linux_dump):
    """acpi=on with QEMU's default firmware: qboot passes QEMU's tables on. Linux,
    which has no MP-table parser, took both CPUs from this MADT."""
    dump = linux_dump(smp=2)
    assert re.search(r"smp: Brought up \d+ nodes?, 2 CPUs", dump.serial), dump.serial
    obj = run_json("acpi", "--core", dump.path)
    assert obj["firmware"]["name"] == "qboot" and obj["firmware"]["acpi"] is True
    assert obj["rsdp"]["oem_id"] == "BOCHS"
    assert [c["apic_id"] for c in obj["madt"]["local_apics"]] == [0, 1]
    assert obj["summary"]["checksums_not_ok"] == 0
    assert not [p for p in obj["problems"] if p["severity"] != "note"], obj["problems"]


@pytest.mark.linux
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_seabios_under_linux(linux_qemu, linux_target, seabios, tmp_path):
    q = linux_qemu(smp=4, acpi=True, bios=seabios, timeout=300)
    # Linux took its CPUs from the MADT: all four.
    assert re.search(r"smp: Brought up \d+ nodes?, 4 CPUs", q.serial_text()), q.serial_text()
    q.qmp("stop")
    spec = "127.0.0.1:%d" % q.port
    live = run_json("acpi", "--gdb", spec)
    check_seabios_acpi(live, 4)
    check_seabios_mptable(run_json("mptable", "--gdb", spec), 4)
    cpus = check_cpus(run_json("cpus", "--gdb", spec, "--symbols", linux_target.system_map), q, 4)
    # Linux started every CPU: none is left in the firmware or at its reset vector.
    assert all(c["in"] == "kernel" for c in cpus["cpus"]), cpus["cpus"]
    core = q.dump(str(tmp_path / "linux-seabios.core"))
    assert run_json("acpi", "--core", core) == live
    assert run_json("cpus", "--core", core)["ncpus"] == 4
