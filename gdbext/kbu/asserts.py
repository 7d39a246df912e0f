"""`kbu break assert`: stop on the OS profile's assertion and panic entries and
print the decoded message before the kernel does anything with it.

The message is the printf-style format (rdi) formatted with its arguments:
rsi, rdx, rcx, r8, r9, then the stack for `fmt, ...` entries; the va_list in
rsi for `fmt, va_list` entries (vpanic); Linux's __warn takes a struct
warn_args. libkbu formats it (`kbu printf`), reading the strings from guest
memory. Which entry is which comes from the profile (printf_entries,
vprintf_entries), never from an OS name. The entries are armed at every
alias that can execute (reloc.arm): an assertion while paging is still off
trips at the physical alias.
"""
import json
import traceback

import gdb

from . import core, profile, reloc, session
from .core import KbuError

ARG_REGS = ("rsi", "rdx", "rcx", "r8", "r9")
MAX_FRAMES = 12


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _reg(frame, name):
    return int(frame.read_register(name)) & 0xffffffffffffffff


def _caller_of_entry(frame):
    """Return address of a call stopped at the callee's first instruction."""
    return profile.read_uint(_reg(frame, "rsp"), 8)


def format_message(argv):
    """(message, format) from libkbu's printf over the live guest."""
    sl = profile.slide() & 0xffffffffffffffff
    j = session.ctx().run_json(["printf"] + argv + (["--slide", "0x%x" % sl] if sl else []))
    return j.get("message", ""), j.get("format")


def decode(prof, entry, frame):
    """(message, format) for a stop at entry's first instruction."""
    rdi = _reg(frame, "rdi")
    if entry in profile.role_words(prof, "printf_entries"):
        return format_message(["--fmt", "0x%x" % rdi, "--args",
                               ",".join("0x%x" % _reg(frame, r) for r in ARG_REGS),
                               "--stack", "0x%x" % (_reg(frame, "rsp") + 8)])
    if entry in profile.role_words(prof, "vprintf_entries"):
        return format_message(["--fmt", "0x%x" % rdi, "--va-list", "0x%x" % _reg(frame, "rsi")])
    if entry == "__warn":
        # __warn(file, line, caller, taint, regs, struct warn_args *args): args->fmt, args->args
        wa = _reg(frame, "r9")
        where = "%s:%d" % (profile.read_cstring(rdi), _signed(_reg(frame, "rsi"), 32))
        if wa:
            msg, fmt = format_message(["--fmt-at", "0x%x" % wa, "--va-list", "0x%x" % (wa + 8)])
            return "WARNING at %s: %s" % (where, msg), fmt
        return "WARNING at %s" % where, None
    if entry == "report_bug":
        return "BUG at %s" % profile.symbolize(rdi), None
    return "%s called" % entry, None


def _frame_line(f):
    """'file:line' of a frame as GDB places it: for the frame an inlined call sits
    in, the call site (not the inlined body's line, which shares its pc)."""
    try:
        sal = f.find_sal()
    except gdb.error:
        return None
    if sal is None or sal.symtab is None or not sal.line:
        return None
    return "%s:%d" % (sal.symtab.filename, sal.line)


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
        frames.append((pc, sym, _frame_line(f) or profile.source_line(look)))
        try:
            f = f.older()
        except gdb.error:
            break
    return frames


class AssertBreaks:
    """The assertion breakpoints of this session: one alias group per entry."""

    def __init__(self):
        self.bps = []      # reloc.AliasGroup, one per entry
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
        armed, missing, why = [], [], None
        try:
            for e in entries:
                a = profile.symbol_addr(prof, e)
                if a is None:
                    missing.append(e)
                    continue
                g, p = reloc.arm(reloc.resolve_link(a, e), e, who="kbu break assert",
                                 on_trip=self._tripped, announce=False, tag=e)
                self.bps.append(g)
                why = p["why"] if not p["decided"] else why
                armed.append("%s (%s)" % (e, "; ".join(
                    "%s%s, breakpoint %d" % ("" if len(p["aliases"]) == 1 else
                                             reloc.KIND_TEXT[x["kind"]] + " ", "0x%x" % x["address"],
                                             x["breakpoint"])
                    if x["kind"] != "candidates" else "%d candidate slides" % x["count"]
                    for x in p["aliases"])))
        except (KeyboardInterrupt, Exception):
            self.disarm()
            raise
        if not self.bps:
            raise KbuError("none of %s is in this kernel's symbols" % ", ".join(entries))
        msg = "kbu: breaking on %s" % ", ".join(armed)
        if missing:
            msg += "; not in this kernel: %s" % ", ".join(missing)
        if why:
            msg += " (%s)" % why
        core.out(msg)

    def disarm(self):
        for g in self.bps:
            try:
                g.delete()
            except (RuntimeError, gdb.error):
                pass
        self.bps = []

    def _tripped(self, group, bp):
        try:
            return self.hit(group.tag, bp)
        except Exception as e:  # never a traceback out of a stop handler
            if core.debug_enabled():
                gdb.write(traceback.format_exc(), gdb.STDERR)
            gdb.write("kbu break assert: at %s: %s\n" % (group.tag, e), gdb.STDERR)
            return True

    def hit(self, entry, bp):
        frame = gdb.newest_frame()
        ret = _caller_of_entry(frame)
        # Symbols name link addresses: a return address seen at the physical alias
        # (paging off) or a slid one is looked up at its link address.
        look = reloc.link_of(ret) + profile.slide() if bp.kind == "low" else ret
        caller = profile.symbolize(look - 1)
        entries = [g.tag for g in self.bps]
        # kassert_panic -> panic -> vpanic: report only the outermost entry.
        if caller.split("+")[0] in entries:
            return False
        msg, fmt = decode(self.prof, entry, frame)
        msg = msg.rstrip("\n")
        fmt = fmt.rstrip("\n") if fmt is not None else None
        try:
            cpu = core.cpu_index()
        except (gdb.error, AttributeError):
            cpu = "?"
        line = profile.source_line(look - 1)
        lines = ["", "kbu: %s on CPU %s%s" % (entry, cpu, " (at its physical alias: paging "
                                                        "off)" if bp.kind == "low" else ""),
                 "  message:   %s" % msg]
        if fmt is not None and fmt != msg:
            lines.append("  format:    %s" % fmt)
        asserting = profile.function_text(look - 1)
        lines.append("  asserting: %s%s  (returns to 0x%x)"
                     % (asserting, "  " + line if line else "", ret))
        lines.append("  backtrace:")
        frames = backtrace(frame)
        if len(frames) < 2:  # no unwinder for this frame: at least the caller
            frames.append((ret, caller, line))
        for i, (pc, sym, src) in enumerate(frames):
            lines.append("    #%-2d 0x%016x  %s%s" % (i, pc, sym, "  " + src if src else ""))
        gdb.write("\n".join(lines) + "\n")
        inner = profile.inlined_at(look - 1)
        self.last = {"entry": entry, "message": msg, "format": fmt,
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
