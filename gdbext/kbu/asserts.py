"""`kbu break assert`: stop on the OS profile's assertion and panic entries and
print the decoded message before the kernel does anything with it.

The message is the printf-style format (rdi) formatted with its arguments:
rsi, rdx, rcx, r8, r9, then the stack for `fmt, ...` entries; the va_list in
rsi for `fmt, va_list` entries (vpanic); Linux's __warn takes a struct
warn_args. Which entry is which comes from the profile (printf_entries,
vprintf_entries), never from an OS name.
"""
import re
import traceback

import gdb

from . import core, profile, session
from .core import KbuError

ARG_REGS = ("rsi", "rdx", "rcx", "r8", "r9")
MAX_FRAMES = 12

_CONV = re.compile(r"%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?(hh|h|ll|l|j|z|t|q|L)?([diouxXcspbDrn%])")


class RegArgs:
    """Variadic arguments of a call stopped at the callee's first instruction."""

    def __init__(self, regs, sp):
        self.regs = list(regs)
        self.sp = sp + 8  # past the return address

    def next(self):
        if self.regs:
            return self.regs.pop(0)
        v = profile.read_uint(self.sp, 8)
        self.sp += 8
        return v


class VaListArgs:
    """A System V x86-64 va_list: gp_offset, fp_offset, overflow_arg_area, reg_save_area."""

    def __init__(self, va):
        self.gp = profile.read_uint(va, 4)
        self.overflow = profile.read_uint(va + 8, 8)
        self.save = profile.read_uint(va + 16, 8)

    def next(self):
        if self.gp < 48:
            v = profile.read_uint(self.save + self.gp, 8)
            self.gp += 8
            return v
        v = profile.read_uint(self.overflow, 8)
        self.overflow += 8
        return v


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def format_printf(fmt, args):
    """fmt formatted with integers and strings pulled from args (kernel printf subset)."""
    out = []
    pos = 0
    for m in _CONV.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, length, conv = m.groups()
        if conv == "%":
            out.append("%")
            continue
        if width == "*":
            width = str(_signed(args.next(), 32))
        if prec == "*":
            prec = str(_signed(args.next(), 32))
        bits = 64 if length in ("l", "ll", "j", "z", "t", "q", "L") else 32
        if length == "h":
            bits = 16
        elif length == "hh":
            bits = 8
        spec = "%" + (flags or "") + (width or "") + ("." + prec if prec else "")
        if conv in "di":
            out.append((spec + "d") % _signed(args.next(), bits))
        elif conv in "uoxX":
            out.append((spec + conv.replace("u", "d")) % (args.next() & ((1 << bits) - 1)))
        elif conv == "c":
            out.append(chr(args.next() & 0xff))
        elif conv == "s":
            s = profile.read_cstring(args.next())
            out.append((spec + "s") % s)
        elif conv == "p":
            out.append("0x%x" % args.next())
        elif conv == "b":   # FreeBSD %b: value, then a bit-name string
            v = args.next()
            args.next()
            out.append("0x%x" % (v & ((1 << bits) - 1)))
        elif conv == "D":   # FreeBSD %D: pointer, separator string
            p = args.next()
            args.next()
            out.append("0x%x" % p)
        elif conv == "r":
            out.append((spec + "d") % _signed(args.next(), bits))
        elif conv == "n":
            args.next()
    out.append(fmt[pos:])
    return "".join(out)


def _reg(frame, name):
    return int(frame.read_register(name)) & 0xffffffffffffffff


def _caller_of_entry(frame):
    """Return address of a call stopped at the callee's first instruction."""
    return profile.read_uint(_reg(frame, "rsp"), 8)


def decode(prof, entry, frame):
    """(message, format) for a stop at entry's first instruction."""
    rdi = _reg(frame, "rdi")
    if entry in profile.role_words(prof, "printf_entries"):
        fmt = profile.read_cstring(rdi, 512)
        args = RegArgs([_reg(frame, r) for r in ARG_REGS], _reg(frame, "rsp"))
        return format_printf(fmt, args), fmt
    if entry in profile.role_words(prof, "vprintf_entries"):
        fmt = profile.read_cstring(rdi, 512)
        return format_printf(fmt, VaListArgs(_reg(frame, "rsi"))), fmt
    if entry == "__warn":
        # __warn(file, line, caller, taint, regs, struct warn_args *args): args->fmt, args->args
        wa = _reg(frame, "r9")
        where = "%s:%d" % (profile.read_cstring(rdi), _signed(_reg(frame, "rsi"), 32))
        if wa:
            fmt = profile.read_cstring(profile.read_uint(wa, 8), 512)
            return "WARNING at %s: %s" % (where, format_printf(fmt, VaListArgs(wa + 8))), fmt
        return "WARNING at %s" % where, None
    if entry == "report_bug":
        return "BUG at %s" % profile.symbolize(rdi), None
    return "%s called" % entry, None


def backtrace(frame):
    """[(pc, 'func+0xoff', 'file:line')] from the selected frame outwards."""
    frames = []
    f = frame
    while f is not None and len(frames) < MAX_FRAMES:
        try:
            pc = f.pc() & 0xffffffffffffffff
        except gdb.error:
            break
        if pc == 0:
            break
        look = pc if not frames else pc - 1  # a return address points after the call
        if frames and not profile.is_code(look):
            break  # the unwinder ran off the stack (no CFI for this frame)
        sym = profile.symbolize(look)
        if f.type() == gdb.INLINE_FRAME and f.name():
            # GDB's frame of a function inlined here: its name, not the host's symbol.
            sym = "%s (inlined in %s)" % (f.name(), sym.split("+")[0])
        frames.append((pc, sym, profile.source_line(look)))
        try:
            f = f.older()
        except gdb.error:
            break
    return frames


class AssertBreakpoint(gdb.Breakpoint):
    """Stops at an assertion/panic entry and prints what is being asserted."""

    def __init__(self, owner, entry, addr):
        # Visible (numbered) so `info breakpoints` lists them and a user can
        # disable one entry; `kbu break assert --off` deletes them all.
        super().__init__("*0x%x" % addr, gdb.BP_BREAKPOINT)
        self.owner = owner
        self.entry = entry
        self.addr = addr
        self.hits = 0

    def stop(self):
        try:
            return self.owner.hit(self)
        except Exception as e:  # never a traceback out of a stop handler
            if core.debug_enabled():
                gdb.write(traceback.format_exc(), gdb.STDERR)
            gdb.write("kbu break assert: at %s: %s\n" % (self.entry, e), gdb.STDERR)
            return True


class AssertBreaks:
    """The set of assertion breakpoints of this session."""

    def __init__(self):
        self.bps = []
        self.prof = None
        self.last = None

    def arm(self):
        self.disarm()
        prof = profile.get()
        self.prof = prof
        entries = profile.role_words(prof, "asserts")
        if not entries:
            raise KbuError("the %s profile names no assertion entries ([roles] asserts)"
                           % prof.get("name"))
        armed, missing = [], []
        for e in entries:
            a = profile.symbol_addr(prof, e)
            if a is None:
                missing.append(e)
                continue
            a = profile.runtime(a)
            bp = AssertBreakpoint(self, e, a)
            self.bps.append(bp)
            armed.append("%s (0x%x, breakpoint %d)" % (e, a, bp.number))
        if not self.bps:
            raise KbuError("none of %s is in this kernel's symbols" % ", ".join(entries))
        msg = "kbu: breaking on %s" % ", ".join(armed)
        if missing:
            msg += "; not in this kernel: %s" % ", ".join(missing)
        core.out(msg)

    def disarm(self):
        for bp in self.bps:
            try:
                bp.delete()
            except (RuntimeError, gdb.error):
                pass
        self.bps = []

    def hit(self, bp):
        frame = gdb.newest_frame()
        ret = _caller_of_entry(frame)
        caller = profile.symbolize(ret - 1)
        entries = [b.entry for b in self.bps]
        # kassert_panic -> panic -> vpanic: report only the outermost entry.
        if caller.split("+")[0] in entries:
            return False
        bp.hits += 1
        msg, fmt = decode(self.prof, bp.entry, frame)
        msg = msg.rstrip("\n")
        fmt = fmt.rstrip("\n") if fmt is not None else None
        try:
            cpu = core.cpu_index()
        except (gdb.error, AttributeError):
            cpu = "?"
        line = profile.source_line(ret - 1)
        lines = ["", "kbu: %s on CPU %s" % (bp.entry, cpu),
                 "  message:   %s" % msg]
        if fmt is not None and fmt != msg:
            lines.append("  format:    %s" % fmt)
        asserting = profile.function_text(ret - 1)
        lines.append("  asserting: %s%s  (returns to 0x%x)"
                     % (asserting, "  " + line if line else "", ret))
        lines.append("  backtrace:")
        frames = backtrace(frame)
        if len(frames) < 2:  # no unwinder for this frame: at least the caller
            frames.append((ret, caller, line))
        for i, (pc, sym, src) in enumerate(frames):
            lines.append("    #%-2d 0x%016x  %s%s" % (i, pc, sym, "  " + src if src else ""))
        gdb.write("\n".join(lines) + "\n")
        inner = profile.inlined_at(ret - 1)
        self.last = {"entry": bp.entry, "message": msg, "format": fmt,
                     "caller": inner[0] if inner else caller.split("+")[0],
                     "caller_symbol": caller.split("+")[0], "cpu": cpu}
        return True


breaks = AssertBreaks()


def _forget(*unused):
    breaks.disarm()


gdb.events.exited.connect(_forget)
if hasattr(gdb.events, "inferior_deleted"):
    gdb.events.inferior_deleted.connect(_forget)


profile.ensure_prefix("kbu break")


class BreakAssert(core.KbuCommand):
    """Break on the OS's assertion and panic entries and print the decoded message.

Sets breakpoints on the profile's entries (FreeBSD kassert_panic, vpanic,
panic; NetBSD kern_assert, vpanic, panic; Linux panic, __warn, report_bug).
On a hit, before the kernel prints anything, kbu prints the message (format
and arguments read from the argument registers and stack), the asserting
function with its source line where there is debug info, and a backtrace.
--list [FUNCTION] lists every call site of the entries in the kernel text
instead (with the format string when it is a constant), so you can break on
one assertion before its condition is tested. --off removes the breakpoints."""

    name = "break assert"

    def parser(self, p):
        p.add_argument("--list", action="store_true",
                       help="list the call sites of the entries instead of breaking")
        p.add_argument("--off", action="store_true", help="remove the breakpoints")
        p.add_argument("function", nargs="?", help="with --list: only this caller")

    def run(self, args):
        if args.list:
            core.need_kernel("kbu break assert --list")
            argv = ["asserts"] + profile.profile_args()
            if args.function:
                argv.append(args.function)
            st, text = session.ctx().run(argv)
            core.out(text)
            return
        if args.function:
            raise KbuError("FUNCTION goes with --list")
        if args.off:
            n = len(breaks.bps)
            breaks.disarm()
            core.out("kbu: %d assertion breakpoint(s) removed" % n)
            return
        core.need_kernel("kbu break assert")
        breaks.arm()
