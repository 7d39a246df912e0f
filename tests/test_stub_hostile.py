"""The kbu CLI against a GDB stub that misbehaves on purpose (a Python stub in
this file). Each misbehaviour must reach the user as what it is: one line on
stderr naming the stub and the packet, exit status 2, in bounded time, never
"(null)", never a raw terminal escape, never "not found" for a transport
fault. Guest and file bytes with escapes in them are printed escaped."""
import os
import socket
import struct
import threading
import time

import pytest

import kbutest

KERNBASE = 0xffffffff80000000
SI, CMDLINE, MEMMAP = 0xf31e0, 0xeff50, 0xefec0
MSGBUFP, MSGHDR, MSGTEXT = 0x200000, 0x201000, 0x202000  # physical; virtual = KERNBASE + pa
EVIL = b"\x1b]0;owned\x07\x1b[2J"

REGS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base",
        "gs_base", "cr0", "cr2", "cr3", "cr4", "efer"]
BITS = {r: 32 for r in ("eflags", "cs", "ss", "ds", "es", "fs", "gs")}
XML = ('<?xml version="1.0"?><target><architecture>i386:x86-64</architecture>'
       '<feature name="org.gnu.gdb.i386.core">'
       + "".join('<reg name="%s" bitsize="%d"/>' % (r, BITS.get(r, 64)) for r in REGS)
       + "</feature></target>")


def guest_memory():
    """Physical memory of a guest: a PVH start info whose command line holds
    terminal escapes, and a FreeBSD message buffer holding them too."""
    mem = bytearray(4 << 20)
    struct.pack_into("<IIIIQQQQII", mem, SI, 0x336ec578, 1, 0, 0, 0, CMDLINE, 0, MEMMAP, 1, 0)
    cmd = b"console=ttyS0 " + EVIL + b" kbu.token=hostile\0"
    mem[CMDLINE:CMDLINE + len(cmd)] = cmd
    struct.pack_into("<QQII", mem, MEMMAP, 0, len(mem), 1, 0)
    struct.pack_into("<Q", mem, MSGBUFP, KERNBASE + MSGHDR)
    text = b"hello\n" + EVIL + b" log line\n"
    size = 0x100
    struct.pack_into("<QIIIIIIii", mem, MSGHDR, KERNBASE + MSGTEXT, 0x063062, size, len(text),
                     0, 0, 16 * size, -1, 0)
    mem[MSGTEXT:MSGTEXT + len(text)] = text
    return mem


class Stub:
    """A GDB stub on 127.0.0.1 that answers like QEMU's, except for `mode`."""

    def __init__(self, mode=None):
        self.mode = mode
        self.mem = guest_memory()
        self.phys = False
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def close(self):
        self.stop = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self.thread.join(5)
        self.ls.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- protocol --
    def send(self, body, corrupt=False):
        if isinstance(body, str):
            body = body.encode("latin-1")
        cs = (sum(body) + (1 if corrupt else 0)) & 0xff
        self.conn.sendall(b"$" + body + b"#%02x" % cs)

    def packets(self):
        buf = b""
        while not self.stop:
            try:
                data = self.conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while True:
                start = buf.find(b"$")
                if start < 0:
                    buf = b""
                    break
                end = buf.find(b"#", start)
                if end < 0 or len(buf) < end + 3:
                    buf = buf[start:]
                    break
                yield buf[start + 1:end].decode("latin-1")
                buf = buf[end + 3:]

    def run(self):
        while not self.stop:
            try:
                self.conn, _ = self.ls.accept()
            except OSError:
                return
            if self.stop:
                self.conn.close()
                return
            try:
                self.session()
            except OSError:
                pass
            finally:
                self.conn.close()

    def session(self):
        for p in self.packets():
            if p.startswith("qSupported"):
                if self.mode == "half_hello":
                    self.conn.sendall(b"$PacketSize=1000;qXf")
                    time.sleep(8)
                    return
                self.send("PacketSize=1000;qXfer:features:read+;QStartNoAckMode+")
            elif p == "QStartNoAckMode":
                self.send("OK")
            elif p == "?":
                self.send("T05thread:01;")
            elif p == "qqemu.Supported":
                self.send("sstepbits;sstep;PhyMemMode")
            elif p == "qfThreadInfo":
                self.send(self.threads())
            elif p == "qsThreadInfo":
                self.send(self.more_threads())
            elif p.startswith("Qqemu.PhyMemMode:"):
                self.phys = p.endswith("1")
                self.send("OK")
            elif p == "qqemu.PhyMemMode":
                self.send("1" if self.phys else "0")
            elif p.startswith("qXfer:features:read:target.xml:"):
                off, n = (int(x, 16) for x in p.rsplit(":", 1)[1].split(","))
                chunk = XML[off:off + n]
                self.send(("l" if off + n >= len(XML) else "m") + chunk)
            elif p.startswith("Hg") or p == "D":
                self.send("OK")
            elif p == "g":
                if self.mode == "many_threads":
                    time.sleep(0.05)
                vals = {"rip": KERNBASE + 0x200100, "cs": 8, "cr0": 0x80000011, "cr3": 0x1000,
                        "cr4": 0x20, "efer": 0x500}
                self.send("".join(vals.get(r, 0).to_bytes(BITS.get(r, 64) // 8, "little").hex()
                                  for r in REGS))
            elif p.startswith("m"):
                self.read(p)
            elif p.startswith("qRcmd,"):
                self.send("E01")
            else:
                self.send("")

    def threads(self):
        if self.mode == "dup_threads":
            return "m01,01,01,02"
        if self.mode == "evil_threads":
            return "m01," + EVIL.decode("latin-1")
        if self.mode == "many_threads":
            self.listed = 0
            return "m" + ",".join("%x" % (i + 1) for i in range(1000))
        return "m01"

    def more_threads(self):
        if self.mode == "many_threads" and self.listed < 2:
            self.listed += 1
            base = 1000 * self.listed
            return "m" + ",".join("%x" % (base + i + 1) for i in range(1000))
        return "l"

    def read(self, p):
        addr, n = (int(x, 16) for x in p[1:].split(","))
        pa = addr if self.phys else addr - KERNBASE
        scan_window = self.phys and 0xe0000 <= addr < 0x100000
        if scan_window and self.mode == "badsum":
            return self.send("00" * n, corrupt=True)
        if scan_window and self.mode == "oddhex":
            return self.send("0" * (2 * n - 1))
        if scan_window and self.mode == "oversized":
            return self.send("00" * (600 * 1024))
        if scan_window and self.mode == "longer":
            return self.send("00" * (2 * n))
        if pa < 0 or pa + n > len(self.mem):
            return self.send("E14")
        self.send(self.mem[pa:pa + n].hex())


def run_kbu(*args, timeout=60):
    t0 = time.monotonic()
    rc, out, err = kbutest.kbu(*args, asan=True, timeout=timeout)
    return rc, out, err, time.monotonic() - t0


def one_line_error(rc, out, err, *needles):
    assert rc == 2, (rc, out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "(null)" not in err and "\x1b" not in err and "\x07" not in err, err
    return lines[0]


@pytest.mark.parametrize("mode,cause", [
    ("badsum", "has a bad checksum"),
    ("oddhex", "with an odd number of hex digits"),
    ("oversized", "is longer than 1048576 bytes"),
    ("longer", "bytes, more than the"),
])
def test_transport_fault_in_a_scan_is_reported_as_itself(mode, cause):
    with Stub(mode) as s:
        rc, out, err, secs = run_kbu("pvh", "--gdb", "127.0.0.1:%d" % s.port)
    line = one_line_error(rc, out, err, "gdb stub 127.0.0.1:%d" % s.port, cause, "'m")
    assert "no PVH start info found" not in line
    assert secs < 30


def test_guest_bytes_are_escaped():
    smap = os.path.join(kbutest.paths.BUILD, "hostile-%d.map" % os.getpid())
    with open(smap, "w") as f:
        f.write("%016x D msgbufp\n" % (KERNBASE + MSGBUFP))
    try:
        with Stub() as s:
            rc, out, err, _ = run_kbu("pvh", "--gdb", "127.0.0.1:%d" % s.port)
            assert rc == 0, err
            assert "console=ttyS0 \\x1b]0;owned\\x07\\x1b[2J kbu.token=hostile" in out
            rc, log, err, _ = run_kbu("dmesg", "-q", "--os", "freebsd", "--symbols", smap,
                                      "--gdb", "127.0.0.1:%d" % s.port)
            assert rc == 0, err
            assert log == "hello\n\\x1b]0;owned\\x07\\x1b[2J log line\n", log
        for text in (out, log):
            assert "\x1b" not in text and "\x07" not in text
    finally:
        os.unlink(smap)


def test_escapes_in_a_system_map_line_are_not_printed():
    smap = os.path.join(kbutest.paths.BUILD, "hostile-bad-%d.map" % os.getpid())
    with open(smap, "wb") as f:
        f.write(b"ffffffff81000000 T bad" + EVIL + b"name\n" + EVIL + b" junk\n")
    try:
        rc, out, err, _ = run_kbu("sym", "--symbols", smap, "bad")
        one_line_error(rc, out, err, "no symbols in nm format", "\\x1b")
    finally:
        os.unlink(smap)


def test_escapes_in_a_stub_reply_are_not_printed():
    with Stub("evil_threads") as s:
        rc, out, err, _ = run_kbu("cpus", "--gdb", "127.0.0.1:%d" % s.port)
    one_line_error(rc, out, err, "malformed thread list", "\\x1b]0;owned")


def test_a_thread_listed_twice_is_one_cpu_and_flagged():
    with Stub("dup_threads") as s:
        rc, obj, err = kbutest.kbu_json("cpus", "--gdb", "127.0.0.1:%d" % s.port, asan=True)
    assert rc == 0, err
    assert obj["ncpus"] == 2 and len(obj["cpus"]) == 2
    assert "named thread 1 more than once" in err and "counted once, 2 CPUs" in err, err
    dup = [p for p in obj["problems"] if p["code"] == "cpus.duplicate_thread_ids"]
    assert len(dup) == 1 and dup[0]["fields"]["first_thread"] == 1, obj["problems"]


def test_the_whole_command_has_one_time_limit():
    with Stub("many_threads") as s:
        rc, out, err, secs = run_kbu("cpus", "--timeout", "3", "--gdb", "127.0.0.1:%d" % s.port,
                                     timeout=120)
    one_line_error(rc, out, err, "the command's time limit of 3 s (--timeout)")
    assert secs < 20


def test_a_timeout_names_the_limit_that_expired():
    with Stub("half_hello") as s:
        rc, out, err, secs = run_kbu("pvh", "--gdb", "127.0.0.1:%d" % s.port)
    one_line_error(rc, out, err, "no reply to 'qSupported' within the 1000 ms connect probe")
    assert secs < 6
