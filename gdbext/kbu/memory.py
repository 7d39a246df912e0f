"""The memory bridge: guest memory read through GDB, physical or virtual.

Virtual reads go through GDB (gdb.Inferior.read_memory: the stub translates
with the vCPU's own paging, and with paging off virtual = physical).
Physical reads use QEMU's `Qqemu.PhyMemMode:1` packet, always switched back
to 0 afterwards (even on error), or `monitor xp` on stubs without it. Reads
are cached per 4 KiB page until the guest resumes or memory is written.
"""
import re

import gdb

from . import core
from .core import KbuError

PHYS, VIRT = 0, 1
PAGE = 4096
XP_CHUNK = 512

# GDB's own core target gives kernel addresses from the ELF file (a QEMU dump's
# PT_LOADs carry physical addresses): memory read through it is wrong, not missing.
CORE_REFUSAL = ("GDB's core target reads kernel variables from the ELF file, not from "
                "the dump; open the dump with: target remote | kbu serve --core %s "
                "(kbu commands read it through libkbu)")


def core_file():
    """The dump GDB's own core target has open ("?" if it says no name), or None."""
    try:
        conn = gdb.selected_inferior().connection
    except (gdb.error, AttributeError):
        return None
    if conn is None or getattr(conn, "type", None) != "core":
        return None
    try:
        text = core.quiet("info target")
    except gdb.error:
        return "?"
    m = re.search(r"Local core dump file:\s*`([^']+)'", text)
    return m.group(1) if m else "?"


def refuse_core_target(what):
    """Raises a one-line KbuError when GDB's core target would answer `what`."""
    path = core_file()
    if path is not None:
        raise KbuError(("%s: " % what) + CORE_REFUSAL % (path if path != "?" else "DUMP"))


class Unsupported(KbuError):
    """The stub cannot read this space at all (libkbu then reads around it)."""


class Bridge:
    """Page-cached reads and writes of guest memory through GDB."""

    def __init__(self):
        self.cache = {}
        self.phys_method = None   # "packet" | "xp", probed on first physical read
        self.stats = {"requests": 0, "gdb_reads": 0, "hits": 0}
        self.listeners = []       # called on flush (e.g. libkbu's own cache)

    # -- cache ---------------------------------------------------------------
    def flush(self, *unused):
        self.cache.clear()
        for fn in self.listeners:
            try:
                fn()
            except Exception:
                pass

    def forget_connection(self, *unused):
        self.phys_method = None
        self.flush()

    # -- reads ---------------------------------------------------------------
    def read(self, space, addr, length):
        """Exactly length bytes at addr, or KbuError naming the address."""
        self.stats["requests"] += 1
        if length <= 0:
            return b""
        if addr < 0 or addr + length > 1 << 64:
            raise KbuError("address 0x%x+0x%x is outside the address space" % (addr, length))
        refuse_core_target("reading guest memory")
        first, last = addr & ~(PAGE - 1), (addr + length - 1) & ~(PAGE - 1)
        missing = any((space, p) not in self.cache for p in range(first, last + PAGE, PAGE))
        if space == PHYS and missing:
            core.need_live("reading guest physical memory")
            if self._probe_phys() == "packet":
                # One switch to physical mode for all the pages of this read.
                with phys_mode():
                    return self._read_pages(space, addr, length, True)
        return self._read_pages(space, addr, length, False)

    def _read_pages(self, space, addr, length, in_phys_mode):
        out = bytearray()
        a, end = addr, addr + length
        while a < end:
            page = a & ~(PAGE - 1)
            n = min(end, page + PAGE) - a
            data = self.cache.get((space, page))
            if data is None:
                try:
                    data = self._raw(space, page, PAGE, in_phys_mode)
                    self.cache[(space, page)] = data
                except KbuError:
                    # part of the page may be missing: read exactly what was asked
                    out += self._raw(space, a, n, in_phys_mode)
                    a += n
                    continue
            else:
                self.stats["hits"] += 1
            out += data[a - page:a - page + n]
            a += n
        return bytes(out)

    def _raw(self, space, addr, length, in_phys_mode=False):
        self.stats["gdb_reads"] += 1
        if space == VIRT:
            return self._read_virt(addr, length)
        if in_phys_mode:
            try:
                return bytes(gdb.selected_inferior().read_memory(addr, length))
            except gdb.MemoryError:
                raise KbuError("cannot read physical 0x%x+0x%x" % (addr, length))
        return self._read_phys(addr, length)

    def _read_virt(self, addr, length):
        core.need_live("reading guest memory")
        try:
            return bytes(gdb.selected_inferior().read_memory(addr, length))
        except gdb.MemoryError:
            raise KbuError("cannot read virtual 0x%x+0x%x (not mapped)" % (addr, length))

    def _probe_phys(self):
        if self.phys_method is None:
            reply = _packet("qqemu.PhyMemMode")
            if reply in ("0", "1"):
                self.phys_method = "packet"
            elif _has_monitor():
                self.phys_method = "xp"
            else:
                # Firecracker's, bhyve's, kbu serve --plain: no physical mode, no
                # monitor. libkbu reads physical memory through a direct map.
                self.phys_method = "none"
        if self.phys_method == "none":
            raise Unsupported("this stub has neither a physical memory mode "
                              "(Qqemu.PhyMemMode) nor a monitor (xp)")
        return self.phys_method

    def _read_phys(self, addr, length):
        core.need_live("reading guest physical memory")
        if self._probe_phys() == "packet":
            with phys_mode():
                try:
                    return bytes(gdb.selected_inferior().read_memory(addr, length))
                except gdb.MemoryError:
                    raise KbuError("cannot read physical 0x%x+0x%x" % (addr, length))
        return read_phys_xp(addr, length)

    def write(self, space, addr, data):
        refuse_core_target("writing guest memory")
        core.need_live("writing guest memory")
        try:
            if space == VIRT:
                gdb.selected_inferior().write_memory(addr, data)
            elif self._probe_phys() == "packet":
                with phys_mode():
                    gdb.selected_inferior().write_memory(addr, data)
            else:
                raise KbuError("this stub cannot write physical memory (no Qqemu.PhyMemMode)")
        except gdb.MemoryError:
            raise KbuError("cannot write %s 0x%x+0x%x" %
                           ("virtual" if space == VIRT else "physical", addr, len(data)))
        finally:
            self.flush()


def _has_monitor():
    """True when the stub has a monitor (GDB refuses `monitor` without qRcmd)."""
    try:
        core.quiet("monitor help")
    except gdb.error as e:
        return "not support" not in str(e)
    return True


def _packet(text):
    """Sends a raw packet with `maint packet`; returns the reply text."""
    try:
        res = core.quiet("maint packet %s" % text)
    except gdb.error as e:
        raise KbuError("packet %s failed: %s" % (text, e))
    m = re.search(r'received: "(.*)"', res)
    return m.group(1) if m else ""


class phys_mode:
    """Context manager: QEMU's stub reads physical memory inside, and is always
    put back in virtual mode on exit, whatever happened."""

    def __enter__(self):
        if _packet("Qqemu.PhyMemMode:1") != "OK":
            _packet("Qqemu.PhyMemMode:0")
            raise KbuError("the stub refused Qqemu.PhyMemMode:1")
        return self

    def __exit__(self, *exc):
        for _ in range(3):
            try:
                if _packet("Qqemu.PhyMemMode:0") == "OK":
                    break
            except KbuError:
                continue
        return False


_XP_LINE = re.compile(r"^([0-9a-fA-F]+):((?:\s+0x[0-9a-fA-F]{2})+)\s*$")


def parse_xp(text, addr, length):
    """Bytes from `monitor xp /Nbx ADDR` output; KbuError if any are missing."""
    got = {}
    for line in text.splitlines():
        m = _XP_LINE.match(line.strip())
        if not m:
            continue
        base = int(m.group(1), 16)
        for i, tok in enumerate(m.group(2).split()):
            got[base + i] = int(tok, 16)
    try:
        return bytes(got[addr + i] for i in range(length))
    except KeyError:
        missing = next(addr + i for i in range(length) if addr + i not in got)
        raise KbuError("monitor xp gave no byte for physical 0x%x" % missing)


def read_phys_xp(addr, length):
    out = bytearray()
    a = addr
    while a < addr + length:
        n = min(XP_CHUNK, addr + length - a)
        try:
            text = core.quiet("monitor xp /%dbx 0x%x" % (n, a))
        except gdb.error as e:
            raise KbuError("monitor xp at physical 0x%x failed: %s" % (a, e))
        out += parse_xp(text, a, n)
        a += n
    return bytes(out)


def phys_mode_now():
    """QEMU's current PhyMemMode ("0" or "1"), for checks and tests."""
    return _packet("qqemu.PhyMemMode")


bridge = Bridge()

for _ev, _fn in ((gdb.events.cont, bridge.flush), (gdb.events.stop, bridge.flush),
                 (gdb.events.memory_changed, bridge.flush),
                 (gdb.events.register_changed, bridge.flush),
                 (gdb.events.exited, bridge.forget_connection),
                 (gdb.events.inferior_call, bridge.flush)):
    _ev.connect(_fn)
if hasattr(gdb.events, "new_inferior"):
    gdb.events.new_inferior.connect(bridge.forget_connection)


# -- registers -------------------------------------------------------------

_GDB_REGS = {"eflags": "rflags", "k_gs_base": "kernel_gs_base"}
_REG_NAMES = ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags "
              "cs ss ds es fs gs fs_base gs_base k_gs_base cr0 cr2 cr3 cr4 cr8 efer").split()


def read_regs(thread=None):
    """Register values of a thread (default: selected) as {kbu_regs field: value}."""
    core.need_live("reading registers")
    prev = gdb.selected_thread()
    if thread is not None and thread != prev:
        thread.switch()
    try:
        fr = gdb.newest_frame()
        vals, have = {}, 0
        for n in _REG_NAMES:
            try:
                v = int(fr.read_register(n)) & 0xffffffffffffffff
            except (gdb.error, ValueError):
                continue
            vals[_GDB_REGS.get(n, n)] = v
        if "rip" in vals:
            have |= 1
        if "cs" in vals:
            have |= 2
        if "fs_base" in vals and vals.get("efer", 0) & 0x400:
            # The stub gives fs/gs bases only; CS/SS/DS/ES bases are 0 in long mode
            # and unknown otherwise, so the group is valid only in long mode.
            have |= 4
            for seg in ("cs_base", "ss_base", "ds_base", "es_base"):
                vals[seg] = 0
        if "cr0" in vals:
            have |= 8
        if "efer" in vals:
            have |= 16
        vals["have"] = have
        vals["bits"] = 64 if "r8" in vals else 32
        return vals
    finally:
        if thread is not None and thread != prev and prev is not None:
            prev.switch()


def cpu_thread(cpu):
    """The GDB thread of vCPU number cpu (QEMU: thread N is CPU N-1)."""
    threads = sorted(gdb.selected_inferior().threads(), key=lambda t: t.num)
    if cpu < 0 or cpu >= len(threads):
        raise KbuError("no CPU %d (the guest has %d)" % (cpu, len(threads)))
    return threads[cpu]


class GdbSource:
    """What libkbu's callback source calls: reads, registers, monitor, CPU count."""

    max_read = 64 * 1024

    def read(self, space, addr, length):
        try:
            return bridge.read(space, addr, length)
        except Unsupported as e:
            # The callback source's convention: libkbu reads around it.
            raise KbuError("unsupported: %s" % e)

    def regs(self, cpu):
        return read_regs(cpu_thread(cpu))

    def monitor(self, cmd):
        try:
            return core.quiet("monitor " + cmd)
        except gdb.error as e:
            raise KbuError("monitor %s: %s" % (cmd, e))

    def ncpus(self):
        try:
            return len(gdb.selected_inferior().threads())
        except gdb.error:
            return 0
