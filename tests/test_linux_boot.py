"""Debian's cloud kernel boots on microvm both ways a porter would boot it:
the ELF vmlinux through PVH (no KASLR) and the bzImage through qboot's Linux
loader (KASLR), each to its "VFS: Unable to mount root fs" panic."""
import re

import pytest

import kbutest

pytestmark = pytest.mark.linux

KERNEL_START = 0xffffffff81000000   # __START_KERNEL_map + CONFIG_PHYSICAL_START on x86-64
KERNBASE = 0xffffffff80000000


def test_target_files_are_what_they_claim(linux_target):
    """vmlinux is the PVH-bootable ELF: its PHYS32_ENTRY is pvh_start_xen's physical address."""
    with open(linux_target.vmlinux, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    with open(linux_target.bzimage, "rb") as f:
        head = f.read(0x210)
    assert head[0x202:0x206] == b"HdrS", "bzImage has no boot-protocol header"
    pvh = linux_target.symbol("pvh_start_xen")
    assert pvh is not None, "System.map is Debian's placeholder, not the real map"
    assert linux_target.pvh_entry == pvh - KERNBASE
    assert linux_target.symbol("_text") == KERNEL_START
    assert "CONFIG_RANDOMIZE_BASE=y" in open(linux_target.config).read()


def test_linux_target_second_run_is_cached(linux_target):
    """A second run reuses the cache (no download) and prints the same paths."""
    p = kbutest.run([kbutest.paths.SCRIPTS + "/linux-target"], timeout=60)
    assert p.returncode == 0, p.stderr
    assert "vmlinux=%s\n" % linux_target.vmlinux in p.stdout
    assert "downloading" not in p.stderr


def test_pvh_elf_boot_has_no_kaslr(linux_qemu):
    q = linux_qemu(image="elf")
    serial = q.serial_text()
    assert re.search(kbutest.PANIC, serial)
    assert "Kernel Offset: disabled" in serial
    assert kbutest.kernel_offset(serial) == 0


@pytest.mark.slow
def test_bzimage_boot_is_randomized(linux_qemu):
    """The bzImage boot reports a non-zero, 2 MiB aligned slide; the PVH boot none."""
    pvh = linux_qemu(image="elf")
    pvh_offset = kbutest.kernel_offset(pvh.serial_text())
    pvh.stop()
    q = linux_qemu(image="bzimage")
    serial = q.serial_text()
    m = re.search(r"Kernel Offset: (0x[0-9a-f]+) from (0x[0-9a-f]+)", serial)
    assert m, "no 'Kernel Offset: 0x... from 0x...' line in the bzImage boot's panic"
    offset = kbutest.kernel_offset(serial)
    assert offset == int(m.group(1), 16)
    assert int(m.group(2), 16) == KERNEL_START
    assert offset != 0
    assert offset % (2 << 20) == 0
    assert offset != pvh_offset


def test_gdb_stops_pvh_boot_at_start_kernel(linux_target, linux_qemu):
    """A paused PVH boot, real GDB on its stub: the breakpoint on start_kernel is
    hit at System.map's address (no slide), and the guest then runs on to its panic."""
    if not linux_target.vmlinux_dbg:
        pytest.skip("no vmlinux-dbg (scripts/linux-target --no-debug)")
    q = linux_qemu(image="elf", paused=True)
    assert q.status() == "prelaunch"
    out = kbutest.gdb_batch(linux_target.vmlinux_dbg, q.port,
                            ["break start_kernel", "continue", "printf \"pc=%#lx\\n\", $pc"], timeout=120)
    m = re.search(r"pc=(0x[0-9a-f]+)", out)
    assert m, out
    assert int(m.group(1), 16) == linux_target.symbol("start_kernel")
    # gdb detached: the guest runs on to its panic.
    q.wait_serial(kbutest.PANIC_END, timeout=120)


def test_linux_dump_holds_the_guest(linux_dump, linux_target):
    """The dump fixture: an ELF core whose memory holds the command line we booted with."""
    d = linux_dump(smp=1, token="dump-check-7f3a")
    assert re.search(kbutest.PANIC, d.serial)
    with open(d.path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[16:18] == b"\x04\x00", "not an ELF core (ET_CORE)"
    assert b"kbu.token=dump-check-7f3a" in data
    # Cached: the same key gives the same file, without booting again.
    assert linux_dump(smp=1, token="dump-check-7f3a") == d


def _xp_bytes(q, addr, n):
    """n bytes of guest physical memory through the human monitor's xp."""
    out = []
    for line in q.monitor("xp /%dbx %#x" % (n, addr)).splitlines():
        out += [int(v, 16) for v in line.split(":", 1)[1].split()]
    return bytes(out)


def test_monitor_reads_qboot_mp_table(linux_qemu):
    """monitor() through QMP: qboot's MP floating pointer at 0x9fc00 points at a
    "PCMP" config table whose entry_count field is 0 (DESIGN.md)."""
    q = linux_qemu(image="elf")
    fp = _xp_bytes(q, 0x9fc00, 16)
    assert fp[:4] == b"_MP_", "no MP floating pointer at 0x9fc00: %r" % fp
    assert sum(fp) % 256 == 0, "floating pointer checksum is wrong"
    table = int.from_bytes(fp[4:8], "little")
    assert 0x9fc00 < table < 0xa0000
    hdr = _xp_bytes(q, table, 44)
    assert hdr[:4] == b"PCMP"
    length = int.from_bytes(hdr[4:6], "little")
    assert length > 44, "table holds entries after its 44-byte header"
    assert int.from_bytes(hdr[34:36], "little") == 0, "entry_count is not 0"


def _core_notes(path):
    """(name, type) of every note in an ELF64 core's PT_NOTE segments."""
    import struct
    notes = []
    with open(path, "rb") as f:
        eh = f.read(64)
        assert eh[4] == 2, "not ELF64"
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            p_type, _flags, off, _va, _pa, filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type != 4:
                continue
            f.seek(off)
            blob = f.read(filesz)
            pos = 0
            while pos + 12 <= len(blob):
                namesz, descsz, ntype = struct.unpack_from("<III", blob, pos)
                name = blob[pos + 12:pos + 12 + namesz].rstrip(b"\0").decode(errors="replace")
                notes.append((name, ntype))
                pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return notes


@pytest.mark.slow
def test_linux_dump_smp2_has_a_prstatus_per_cpu(linux_dump):
    d = linux_dump(smp=2)
    assert re.search(r"smp: Brought up 1 node, 2 CPUs", d.serial), d.serial[-2000:]
    prstatus = [n for n in _core_notes(d.path) if n == ("CORE", 1)]
    assert len(prstatus) == 2
