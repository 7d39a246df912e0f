"""The memory bridge: what libkbu's debugger source asks GDB to do.

GDB only moves bytes and packets here: reads as GDB reads memory
(gdb.Inferior.read_memory: the stub translates with the vCPU's own paging,
and with paging off virtual = physical), remote-protocol packets, monitor
commands, registers. libkbu decides how physical memory is read (QEMU's
`Qqemu.PhyMemMode`, always switched back, else the monitor's `xp`, else the
guest's own direct map), parses the monitor's texts, and keeps the one page
cache, dropped when the guest resumes or memory is written.
"""
import gdb

from . import core, native

PHYS, VIRT = native.PHYS, native.VIRT

# GDB's own core target gives kernel addresses from the ELF file (a QEMU dump's
# PT_LOADs carry physical addresses): memory read through it is wrong, not missing.
CORE_REFUSAL = ("GDB's core target reads kernel variables from the ELF file, not from "
                "the dump; open the dump with: target remote | kbu serve --core %s "
                "(kbu commands read it through libkbu)")

# The stub cannot read this space at all (libkbu then reads around it).
Unsupported = native.Unsupported


def _core_target_file():
    """GDB's core target's file name from `info target` (GDB gives no API for it).
    The line is GDB's own: Local core dump file:\\n\\t`PATH', file type elf64-x86-64."""
    text = core.quiet("info target")
    marker = "Local core dump file:"
    at = text.find(marker)
    if at < 0:
        return None
    rest = text[at + len(marker):]
    start = rest.find("`")
    end = rest.find("'", start + 1)
    return rest[start + 1:end] if 0 <= start < end else None


def core_file():
    """The dump GDB's own core target has open ("?" if it says no name), or None."""
    try:
        conn = gdb.selected_inferior().connection
    except (gdb.error, AttributeError):
        return None
    if conn is None or getattr(conn, "type", None) != "core":
        return None
    try:
        return _core_target_file() or "?"
    except gdb.error:
        return "?"


def refuse_core_target(what):
    """Raises a one-line KbuError when GDB's core target would answer `what`."""
    path = core_file()
    if path is not None:
        raise Unsupported(("%s: " % what) + CORE_REFUSAL % (path if path != "?" else "DUMP"))


class Bridge:
    """Guest memory for Python modules, read through libkbu's debugger source
    (and so through its one page cache). flush() is called on every event
    after which cached bytes may be stale; listeners drop libkbu's cache."""

    def __init__(self):
        self.listeners = []       # called on flush (session: libkbu's cache)

    def flush(self, *unused):
        for fn in self.listeners:
            try:
                fn()
            except Exception:
                pass

    def forget_connection(self, *unused):
        # A new connection may be another stub: session drops its context.
        self.flush()

    def _ctx(self):
        from . import session
        return session.ctx(live=True)

    def read(self, space, addr, length):
        """Exactly length bytes at addr (PHYS or VIRT), or the KbuError subclass
        of the failure (native.Fault for memory that is not there)."""
        if length <= 0:
            return b""
        if addr < 0 or addr + length > 1 << 64:
            raise native.InputError("address 0x%x+0x%x is outside the address space"
                                    % (addr, length))
        refuse_core_target("reading guest memory")
        core.need_live("reading guest memory")
        return self._ctx().read(space, addr, length)

    @property
    def stats(self):
        """libkbu's counts for the live source: requests, source_reads (calls
        into GDB), source_bytes, cache_hits."""
        return self._ctx().stats()

    def phys_method(self):
        """How physical memory is read: "packet", "xp", "none", or "" (not yet)."""
        return self._ctx().phys_method()


def _packet_reply_text(reply):
    return reply.decode("latin-1") if isinstance(reply, (bytes, bytearray)) else str(reply)


def _maint_packet(text):
    """`maint packet` for a GDB without RemoteTargetConnection.send_packet; the
    reply is in GDB's own output line: received: "REPLY"."""
    res = core.quiet("maint packet %s" % text)
    marker = 'received: "'
    at = res.find(marker)
    if at < 0:
        return ""
    body = res[at + len(marker):]
    return body[:body.rfind('"')] if '"' in body else body


def _packet(text):
    """Sends a raw remote-protocol packet; returns the reply text ("" when the
    stub does not know it). native.Unsupported when GDB has no remote target."""
    try:
        conn = gdb.selected_inferior().connection
    except (gdb.error, AttributeError):
        conn = None
    send = getattr(conn, "send_packet", None)
    try:
        if send is not None:
            return _packet_reply_text(send(text))
        if conn is None or getattr(conn, "type", None) not in ("remote", "extended-remote"):
            raise native.Unsupported("GDB is not connected to a remote stub")
        return _maint_packet(text)
    except gdb.error as e:
        raise native.TransportError("packet %s: %s" % (text, e))


def _monitor_refused(e):
    """GDB's own words when the stub has no qRcmd ("Target does not support this
    command."); GDB has no API that says so."""
    return "not support" in str(e)


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
            have |= native.HAVE_GPR
        if "cs" in vals:
            have |= native.HAVE_SEG
        if "fs_base" in vals and vals.get("efer", 0) & 0x400:
            # The stub gives fs/gs bases only; CS/SS/DS/ES bases are 0 in long mode
            # and unknown otherwise, so the group is valid only in long mode.
            have |= native.HAVE_SEGBASE
            for seg in ("cs_base", "ss_base", "ds_base", "es_base"):
                vals[seg] = 0
        if "cr0" in vals:
            have |= native.HAVE_CR
        if "efer" in vals:
            have |= native.HAVE_EFER
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
        raise native.NotFound("no CPU %d (the guest has %d)" % (cpu, len(threads)))
    return threads[cpu]


class GdbSource:
    """What libkbu's debugger source calls (native.Ctx(source=...)): GDB's reads,
    packets, monitor commands, registers and thread count. Failures are raised
    as the native.KbuError subclass of their kind, which becomes libkbu's code."""

    max_read = 64 * 1024

    def read(self, addr, length):
        try:
            return bytes(gdb.selected_inferior().read_memory(addr, length))
        except gdb.MemoryError:
            raise native.Fault("cannot read 0x%x+0x%x" % (addr, length)) from None
        except gdb.error as e:
            raise native.TransportError("the debugger could not read 0x%x: %s"
                                        % (addr, e)) from None

    def packet(self, text):
        return _packet(text)

    def monitor(self, cmd):
        try:
            return core.quiet("monitor " + cmd)
        except gdb.error as e:
            if _monitor_refused(e):
                raise native.Unsupported("this stub has no monitor (qRcmd)") from None
            raise native.InputError("monitor %s: %s" % (cmd, e)) from None

    def regs(self, cpu):
        try:
            return read_regs(cpu_thread(cpu))
        except gdb.error as e:
            raise native.TransportError("registers of CPU %d: %s" % (cpu, e)) from None

    def ncpus(self):
        try:
            return len(gdb.selected_inferior().threads())
        except gdb.error:
            return 0
