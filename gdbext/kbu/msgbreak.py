"""`kbu break msg TEXT`: breakpoints on the instructions that load a message.

libkbu finds the strings of the kernel image that contain TEXT and the
instructions referencing them (RIP-relative lea/mov, sign-extended imm32),
confirmed with capstone; kbu sets a breakpoint on each, so the guest stops
right before the kernel prints the message, without its source at hand.
"""
import gdb

from . import core, profile, session
from .core import KbuError


class MsgBreakpoint(gdb.Breakpoint):
    def __init__(self, addr, where, string):
        super().__init__("*0x%x" % addr, gdb.BP_BREAKPOINT)
        self.where = where
        self.string = string

    def stop(self):
        try:
            gdb.write("kbu: at %s, about to use \"%s\"\n" % (self.where, self.string))
        except Exception:
            pass
        return True


_placed = []


def _forget(*unused):
    for bp in _placed:
        try:
            if bp.is_valid():
                bp.delete()
        except (RuntimeError, gdb.error):
            pass
    _placed.clear()


gdb.events.exited.connect(_forget)

profile.ensure_prefix("kbu break")


class BreakMsg(core.KbuCommand):
    """Break where the kernel loads a message containing TEXT (found in its text with capstone).

Every instruction that references a string containing TEXT gets a
breakpoint: stop right before the kernel prints "Statistical %s calibration
failed!" without grepping its source. --list only shows the strings and the
references; --off removes the breakpoints kbu placed."""

    name = "break msg"

    def parser(self, p):
        p.add_argument("--list", action="store_true", help="show the references, set nothing")
        p.add_argument("--off", action="store_true", help="remove the message breakpoints")
        p.add_argument("text", nargs="*", help="the text to look for (words are joined by spaces)")

    def run(self, args):
        if args.off:
            n = len(_placed)
            _forget()
            core.out("kbu: %d message breakpoint(s) removed" % n)
            return
        text = " ".join(args.text)
        if not text:
            raise KbuError("give the TEXT of the message")
        core.need_kernel("kbu break msg")
        if args.list:
            st, out = session.ctx().run(["msgrefs", text])
            core.out(out)
            return
        res = session.ctx().run_json(["msgrefs", text])
        strings = {s["addr"]: s["string"] for s in res.get("strings", [])}
        if not strings:
            raise KbuError("no string in the kernel image contains \"%s\"" % text)
        refs = res.get("refs", [])
        if not refs:
            raise KbuError("%d string(s) contain \"%s\" but no instruction references them "
                           "directly" % (len(strings), text))

        def string_of(target):
            best = None
            for a in strings:
                if a <= target and (best is None or a > best):
                    best = a
            return strings.get(best, "?")

        slide = profile.slide() if core.is_live() else 0
        for r in refs:
            s = string_of(r["target"])
            addr = (r["addr"] + slide) & 0xffffffffffffffff
            bp = MsgBreakpoint(addr, r["where"], s)
            _placed.append(bp)
            core.out("kbu break msg: breakpoint %d at 0x%x %s: %s  (\"%s\")"
                     % (bp.number, addr, r["where"], r["insn"], s))
