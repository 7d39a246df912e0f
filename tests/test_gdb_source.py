"""The GDB remote protocol source (native/src/mem_gdb.c) against QEMU's real
stub, checked against what QEMU's own monitor (QMP) says at the same moment:
memory, registers in 32-bit mode at the PVH entry and in long mode, the
physical-memory mode switched back off, round trips, and a running VM left
running."""
import ctypes
import os
import re
import struct

import pytest

import kbutest


class Err(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 512)]


_R64 = "rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip rflags".split()
_SEG = "cs ss ds es fs gs".split()
_BASES = ("cs_base ss_base ds_base es_base fs_base gs_base kernel_gs_base "
          "cr0 cr2 cr3 cr4 cr8 efer gdt_base idt_base").split()


class Regs(ctypes.Structure):
    _fields_ = ([("have", ctypes.c_uint32), ("bits", ctypes.c_int)]
                + [(n, ctypes.c_uint64) for n in _R64]
                + [(n, ctypes.c_uint16) for n in _SEG]
                + [(n, ctypes.c_uint64) for n in _BASES]
                + [("gdt_limit", ctypes.c_uint32), ("idt_limit", ctypes.c_uint32)])


HAVE_GPR, HAVE_SEG, HAVE_SEGBASE, HAVE_CR, HAVE_EFER, HAVE_DT = 1, 2, 4, 8, 16, 32
PHYS, VIRT = 0, 1
EFAULT = 8

READ = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64,
                        ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(Err))
NCPUS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
REGS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(Regs),
                        ctypes.POINTER(Err))
RANGES = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64),
                          ctypes.POINTER(ctypes.c_uint64), ctypes.c_int)
MONITOR = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                           ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(Err))


class Ops(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_char_p), ("read", READ), ("write", ctypes.c_void_p),
                ("ncpus", NCPUS), ("regs", REGS), ("monitor", MONITOR),
                ("ranges", RANGES), ("close", ctypes.c_void_p),
                ("max_read", ctypes.c_size_t)]


class Opts(ctypes.Structure):
    _fields_ = [("connect_timeout_ms", ctypes.c_int), ("reply_timeout_ms", ctypes.c_int)]


class Stats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("round_trips", "packets_sent", "packets_received", "bytes_sent", "bytes_received")]


class KbuError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


class Stub:
    """libkbu's RSP client, driven directly through its ops table."""

    def __init__(self, port, timeout_ms=30000):
        if not os.path.isfile(kbutest.LIBKBU):
            pytest.skip("%s is not built" % kbutest.LIBKBU)
        lib = ctypes.CDLL(kbutest.LIBKBU)
        lib.kbu_gdb_open.restype = ctypes.c_void_p
        lib.kbu_gdb_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(Opts), ctypes.POINTER(Err)]
        lib.kbu_gdb_mem_ops.restype = ctypes.POINTER(Ops)
        lib.kbu_gdb_mem_ops.argtypes = [ctypes.c_void_p]
        lib.kbu_gdb_get_stats.restype = Stats
        lib.kbu_gdb_get_stats.argtypes = [ctypes.c_void_p]
        lib.kbu_gdb_close.argtypes = [ctypes.c_void_p]
        lib.kbu_gdb_resumes_on_close.argtypes = [ctypes.c_void_p]
        lib.kbu_gdb_request.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                        ctypes.POINTER(ctypes.c_void_p),
                                        ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(Err)]
        self.lib = lib
        self.libc = ctypes.CDLL(None)
        self.libc.free.argtypes = [ctypes.c_void_p]
        err = Err()
        opts = Opts(5000, timeout_ms)
        self.g = lib.kbu_gdb_open(b"127.0.0.1:%d" % port, ctypes.byref(opts), ctypes.byref(err))
        if not self.g:
            raise KbuError(err.code, err.msg.decode())
        self.ops = lib.kbu_gdb_mem_ops(self.g).contents

    def close(self):
        if self.g:
            self.lib.kbu_gdb_close(self.g)
            self.g = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check(self, rc, err):
        if rc != 0:
            raise KbuError(err.code, err.msg.decode())

    def read(self, space, addr, n):
        buf = ctypes.create_string_buffer(n)
        err = Err()
        self._check(self.ops.read(self.g, space, addr, buf, n, ctypes.byref(err)), err)
        return buf.raw

    def regs(self, cpu):
        r, err = Regs(), Err()
        self._check(self.ops.regs(self.g, cpu, ctypes.byref(r), ctypes.byref(err)), err)
        return r

    def ncpus(self):
        return self.ops.ncpus(self.g)

    def monitor(self, cmd):
        out, err = ctypes.c_void_p(), Err()
        self._check(self.ops.monitor(self.g, cmd.encode(), ctypes.byref(out), ctypes.byref(err)), err)
        text = ctypes.string_at(out.value).decode()
        self.libc.free(out)
        return text

    def ranges(self):
        start, end = (ctypes.c_uint64 * 64)(), (ctypes.c_uint64 * 64)()
        n = self.ops.ranges(self.g, start, end, 64)
        return [(start[i], end[i]) for i in range(n)]

    def request(self, packet):
        out, n, err = ctypes.c_void_p(), ctypes.c_size_t(), Err()
        self._check(self.lib.kbu_gdb_request(self.g, packet.encode(), ctypes.byref(out),
                                             ctypes.byref(n), ctypes.byref(err)), err)
        data = ctypes.string_at(out.value, n.value).decode()
        self.libc.free(out)
        return data

    def round_trips(self):
        return self.lib.kbu_gdb_get_stats(self.g).round_trips

    def resumes_on_close(self):
        return bool(self.lib.kbu_gdb_resumes_on_close(self.g))


def pvh_entry(path):
    """XEN_ELFNOTE_PHYS32_ENTRY (18) from the ELF64's PT_NOTE segments."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _fl, off, _va, _pa, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type != 4:
            continue
        pos = off
        while pos + 12 <= off + filesz:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            name = data[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            desc = pos + 12 + ((namesz + 3) & ~3)
            if name == b"Xen" and ntype == 18:
                return struct.unpack_from("<I", data, desc)[0]
            pos = desc + ((descsz + 3) & ~3)
    raise AssertionError("%s has no PHYS32_ENTRY note" % path)


def hmp(q, cmd, cpu=None):
    args = {"command-line": cmd}
    if cpu is not None:
        args["cpu-index"] = cpu
    return q.qmp("human-monitor-command", **args)


def xp_words(q, addr, nwords):
    """Physical memory as QEMU's monitor prints it: `xp /Nwx addr` -> bytes."""
    text = hmp(q, "xp /%dwx 0x%x" % (nwords, addr))
    words = [w for line in text.splitlines() if ":" in line
             for w in re.findall(r"\b0x([0-9a-f]{8})\b", line.split(":", 1)[1])]
    assert len(words) == nwords, text
    return b"".join(struct.pack("<I", int(w, 16)) for w in words)


def info_registers(q, cpu):
    """The values `info registers` shows for one CPU: general, control and segment registers."""
    text = hmp(q, "info registers", cpu)
    vals = {k.lower(): int(v, 16) for k, v in
            re.findall(r"\b([A-Z][A-Z0-9]{1,4}) ?=([0-9a-f]+)\b", text)}
    segs = {m.group(1).lower(): (int(m.group(2), 16), int(m.group(3), 16))
            for m in re.finditer(r"^(CS|SS|DS|ES|FS|GS) =([0-9a-f]{4}) ([0-9a-f]+)", text, re.M)}
    for m in re.finditer(r"^(GDT|IDT)= +([0-9a-f]+) ([0-9a-f]+)", text, re.M):
        segs[m.group(1).lower()] = (int(m.group(2), 16), int(m.group(3), 16))
    return vals, segs, text


def check_regs_match(r, q, cpu, long_mode):
    vals, segs, text = info_registers(q, cpu)
    names = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"]
    for n in names:
        key = n if long_mode else "e" + n[1:]
        assert getattr(r, n) == vals[key], "%s: 0x%x, monitor says 0x%x\n%s" % (n, getattr(r, n), vals[key], text)
    if long_mode:
        for n in ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"):
            assert getattr(r, n) == vals[n], "%s differs\n%s" % (n, text)
        assert r.rflags == vals["rfl"]
    else:
        assert r.rip == vals["eip"]
        assert r.rflags == vals["efl"]
    for n in ("cr0", "cr2", "cr3", "cr4", "efer"):
        assert getattr(r, n) == vals[n], "%s: 0x%x, monitor says 0x%x\n%s" % (n, getattr(r, n), vals[n], text)
    for n in _SEG:
        assert getattr(r, n) == segs[n][0], "%s selector differs\n%s" % (n, text)
        assert getattr(r, n + "_base") == segs[n][1], "%s base differs\n%s" % (n, text)
    assert r.have & (HAVE_SEGBASE | HAVE_DT) == HAVE_SEGBASE | HAVE_DT
    assert (r.gdt_base, r.gdt_limit) == segs["gdt"], text
    assert (r.idt_base, r.idt_limit) == segs["idt"], text


@pytest.fixture
def paused_at_entry(qemu, guest_kernel):
    """The test kernel with 2 CPUs, stopped by our own client on its first instruction (PVH entry)."""
    q = qemu(guest_kernel, memory="128M", smp=2, paused=True,
             append="console=ttyS0 kbu.scenario=ok")
    entry = pvh_entry(guest_kernel)
    s = Stub(q.port)
    assert s.request("Z1,%x,1" % entry) == "OK"
    stop = s.request("c")  # qboot runs, builds the MP table, jumps to the entry
    assert re.match(r"T05", stop), stop
    assert s.request("z1,%x,1" % entry) == "OK"
    yield q, s, entry
    s.close()


def test_pvh_entry_registers_are_32bit(paused_at_entry):
    q, s, entry = paused_at_entry
    assert s.ncpus() == 2
    r = s.regs(0)
    assert r.rip == entry
    assert r.bits == 32, "paging off, EFER.LMA clear: the stub's values are 32-bit"
    assert r.have & (HAVE_GPR | HAVE_SEG | HAVE_CR | HAVE_EFER) == HAVE_GPR | HAVE_SEG | HAVE_CR | HAVE_EFER
    assert r.cr0 & 0x80000001 == 1, "protected mode, paging off at the PVH entry"
    assert r.efer == 0
    check_regs_match(r, q, 0, long_mode=False)
    # EBX holds the start info, whose first word is the PVH magic.
    assert struct.unpack("<I", s.read(PHYS, r.rbx, 4))[0] == 0x336ec578
    # CPU 1 has not started: still at the reset vector.
    r1 = s.regs(1)
    assert r1.rip == 0xfff0 and r1.cs == 0xf000
    check_regs_match(r1, q, 1, long_mode=False)


def test_physical_reads_match_monitor_and_mode_is_restored(paused_at_entry):
    q, s, entry = paused_at_entry
    mp = s.read(PHYS, 0x9fc00, 64)
    assert mp[:4] == b"_MP_"
    assert mp == xp_words(q, 0x9fc00, 16)
    # The same through the stub's own monitor command.
    assert s.monitor("xp /4wx 0x9fc00") == hmp(q, "xp /4wx 0x9fc00")
    # PhyMemMode is off again, so a virtual read translates (paging is off here:
    # virtual = physical, and the entry's code is there).
    assert s.request("qqemu.PhyMemMode") == "0"
    assert s.read(VIRT, entry, 32) == s.read(PHYS, entry, 32)
    # QEMU reads unbacked physical memory as zeros (no error), so a failing
    # physical read is the unit test's business; a failing virtual read is an
    # error naming the range, and physical reads still work after it.
    with pytest.raises(KbuError) as e:
        s.read(VIRT, 0xffffffff80000000, 16)
    assert e.value.code == EFAULT
    assert "0xffffffff80000000-0xffffffff8000000f" in str(e.value)
    assert s.read(PHYS, 0x9fc00, 64) == mp
    assert s.request("qqemu.PhyMemMode") == "0"


def test_ranges_are_guest_ram(paused_at_entry):
    q, s, entry = paused_at_entry
    ranges = s.ranges()

    def inside(a):
        return any(lo <= a < hi for lo, hi in ranges)
    assert inside(0x9fc00) and inside(entry) and inside(128 * 1024 * 1024 - 1)
    assert not inside(128 * 1024 * 1024), "-m 128: nothing above 128 MiB but the BIOS alias"
    assert not inside(0xfee00000), "the local APIC is I/O, not memory"
    assert not inside(0xfec00000), "the I/O APIC is I/O, not memory"


def test_64k_read_is_one_round_trip(paused_at_entry):
    q, s, entry = paused_at_entry
    before = s.round_trips()
    data = s.read(PHYS, 0x90000, 0x10000)
    assert s.round_trips() - before == 1
    assert data[0xfc00:0xfc04] == b"_MP_"
    assert data[0xfc00:0xfc40] == xp_words(q, 0x9fc00, 16)


def test_long_mode_registers_and_running_vm_left_running(qemu, guest_kernel):
    q = qemu(guest_kernel, memory="128M", smp=2, append="console=ttyS0 kbu.scenario=ok")
    q.wait_serial(r"^kbu-guest: idle", timeout=60)
    assert q.status() == "running"
    with Stub(q.port) as s:
        assert s.resumes_on_close(), "connecting stopped a running VM: we must resume it"
        assert q.status() == "paused"
        assert s.ncpus() == 2
        r = s.regs(0)
        assert r.bits == 64
        assert r.efer & 0x400, "EFER.LMA"
        assert r.have & (HAVE_GPR | HAVE_SEG | HAVE_SEGBASE | HAVE_CR | HAVE_EFER) == 0x1f
        check_regs_match(r, q, 0, long_mode=True)
        # The test kernel never starts CPU 1: it still sits at the reset vector.
        r1 = s.regs(1)
        assert r1.bits == 32 and r1.rip == 0xfff0
        check_regs_match(r1, q, 1, long_mode=False)
        # A kernel virtual address, translated by the stub through CPU 0's CR3.
        r = s.regs(0)
        assert r.rip >= 0xffffffff80000000
        code = s.read(VIRT, r.rip, 16)
        assert code == s.read(PHYS, r.rip - 0xffffffff80000000, 16)
    assert q.status() == "running"


def test_nothing_listening_is_one_clear_error():
    port = kbutest.free_port()
    with pytest.raises(KbuError) as e:
        Stub(port, timeout_ms=2000)
    assert "cannot connect" in str(e.value) and str(port) in str(e.value)
    rc, out, err = kbutest.kbu("cpus", "--gdb", "127.0.0.1:%d" % port)
    assert rc == 2 and out == ""
    assert "cannot connect" in err and len(err.strip().splitlines()) == 1


@pytest.mark.linux
@pytest.mark.slow
def test_linux_panic_both_cpus_in_long_mode(linux_qemu):
    """Debian's kernel after its root-fs panic, 2 CPUs: the second CPU's
    registers come through Hg, in long mode, and match the monitor too."""
    q = linux_qemu(image="elf", smp=2)
    with Stub(q.port) as s:
        assert s.resumes_on_close()
        assert s.ncpus() == 2
        for cpu in range(2):
            r = s.regs(cpu)
            assert r.bits == 64 and r.efer & 0x500 == 0x500
            assert r.cr0 & 0x80000001 == 0x80000001 and r.cr4 & 0x20, "paging, PAE"
            check_regs_match(r, q, cpu, long_mode=True)
        # Both CPUs run kernel code; the stub translates through CPU 0's tables.
        r1 = s.regs(1)
        assert r1.rip >= 0xffffffff80000000
        assert len(s.read(VIRT, r1.rip, 16)) == 16
    assert q.status() == "running"
