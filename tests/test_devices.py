"""Where's my disks? (seeds/001): QEMU microvm describes virtio-mmio devices on
the kernel command line with acpi=off (qboot) and only in the ACPI DSDT with
acpi=on (SeaBIOS); kbu says which, and whether the kernel has code that looks
there: the test kernel has none, the real FreeBSD 14.2 kernel (its symbols,
tests/targets/freebsd-14.2/kernel.syms) has both."""
import os

import pytest

import kbutest

SYMS = os.path.join(os.path.dirname(__file__), "targets", "freebsd-14.2", "kernel.syms")
SEABIOS = "/usr/share/seabios/bios-microvm.bin"


@pytest.fixture
def with_disk(qemu, guest_kernel, tmp_path):
    def boot(acpi):
        img = tmp_path / "disk.img"
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        q = qemu(guest_kernel, memory="128M", append="console=ttyS0", acpi=acpi,
                 bios=SEABIOS if acpi else None,
                 extra=("-drive", "file=%s,if=none,id=d0,format=raw" % img,
                        "-device", "virtio-blk-device,drive=d0"))
        q.wait_serial(r"^kbu-guest: idle", timeout=60)
        return q
    return boot


def verdict(q, *args):
    rc, j, err = kbutest.kbu_json("verdict", "where-are-my-devices",
                                  "--gdb", "127.0.0.1:%d" % q.port, *args)
    assert rc == 0, err
    return j


def test_qboot_puts_devices_on_the_command_line(with_disk, guest_kernel):
    q = with_disk(acpi=False)
    j = verdict(q, "--kernel", guest_kernel)
    f = j["facts"]
    assert f["described_in"] == "command line" and f["dsdt"] is False
    assert [(d["base"], d["size"]) for d in f["cmdline_devices"]] == [(0xfeb00e00, 512)]
    assert "virtio_mmio.device=512@0xfeb00e00:" in f["cmdline"]
    # The test kernel has no virtio-mmio driver at all.
    assert f["kernel_reads_cmdline"] is False
    assert j["status"] == 1 and j["verdict"]["code"] == "devices.cmdline_only"
    # FreeBSD 14.2's FIRECRACKER kernel parses virtio_mmio.device= itself.
    j = verdict(q, "--symbols", SYMS)
    assert j["os"] == "freebsd"
    assert j["facts"]["kernel_reads_cmdline"] is True
    assert j["status"] == 0 and "on the command line, where this kernel looks" in \
        j["verdict"]["cause"]


def test_seabios_puts_devices_in_acpi_only(with_disk, guest_kernel):
    q = with_disk(acpi=True)
    j = verdict(q, "--kernel", guest_kernel)
    f = j["facts"]
    assert f["described_in"] == "ACPI" and f["dsdt"] is True
    assert f["cmdline_devices"] == [] and "virtio_mmio" not in f["cmdline"]
    # the same transport qboot names on the command line, read from the DSDT's AML
    [dev] = f["dsdt_devices"]
    assert dev["size"] == 512 and 0xfeb00000 <= dev["base"] < 0xfeb04000
    assert dev["name"].startswith("VR") and dev["irq"] >= 5
    assert j["status"] == 1 and j["verdict"]["code"] == "devices.acpi_only"
    assert "acpi=off" in j["verdict"]["next"]
    j = verdict(q, "--symbols", SYMS)
    assert j["facts"]["kernel_reads_acpi"] is True and j["status"] == 0


def test_no_device_given(qemu, guest_kernel):
    q = qemu(guest_kernel, memory="128M", append="console=ttyS0")
    q.wait_serial(r"^kbu-guest: idle", timeout=60)
    rc, text, err = kbutest.kbu("verdict", "where-are-my-devices", "--gdb",
                                "127.0.0.1:%d" % q.port, "--kernel", guest_kernel)
    assert rc == 0, err
    assert "VERDICT: no problem: the VM describes no virtio-mmio device" in text
    assert "next step: give the VM a device if the kernel needs one" in text


def test_seabios_without_a_device_describes_none(qemu, guest_kernel):
    # QEMU writes a DSDT whatever is plugged; a virtio-mmio device only for a transport in use
    q = qemu(guest_kernel, memory="128M", append="console=ttyS0", acpi=True, bios=SEABIOS)
    q.wait_serial(r"^kbu-guest: idle", timeout=60)
    j = verdict(q, "--kernel", guest_kernel)
    f = j["facts"]
    assert f["dsdt"] is True and f["dsdt_devices"] == []
    assert f["described_in"] == "none" and j["verdict"]["code"] == "devices.none"
    assert "none in the ACPI DSDT" in j["verdict"]["cause"]
    rc, j, err = kbutest.kbu_json("acpi", "--gdb", "127.0.0.1:%d" % q.port)
    assert rc == 0, err
    assert j["devices"]["described"] == "none" and j["devices"]["dsdt_devices"] == []


def test_malformed_entry_is_named(qemu, guest_kernel):
    q = qemu(guest_kernel, memory="128M",
             append="console=ttyS0 virtio_mmio.device=512@nowhere:5")
    q.wait_serial(r"^kbu-guest: idle", timeout=60)
    j = verdict(q, "--kernel", guest_kernel)
    assert j["verdict"]["code"] == "devices.cmdline_malformed"
    assert "virtio_mmio.device=512@nowhere:5" in j["verdict"]["cause"]
    assert any(p["code"] == "devices.cmdline_malformed" for p in j["problems"])
