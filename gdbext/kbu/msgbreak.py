"""`kbu break msg TEXT`: breakpoints on the instructions that load a message.

libkbu finds the strings of the kernel image that contain TEXT and the
instructions referencing them (RIP-relative lea/mov, sign-extended imm32),
confirmed with capstone; kbu sets a breakpoint on each, so the guest stops
right before the kernel prints the message, without its source at hand.
Each reference is armed at every alias that can execute (reloc.arm).
"""
import gdb

from . import core, profile, reloc, session
from .core import KbuError


_placed = []   # reloc.AliasGroup, one per reference


def _forget(*unused):
    for g in _placed:
        try:
            g.delete()
        except (RuntimeError, gdb.error):
            pass
    _placed.clear()


gdb.events.exited.connect(_forget)


def _about_to_use(group, bp):
    where, string = group.tag
    gdb.write("kbu: at %s, about to use \"%s\"\n" % (where, string))
    return True


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

        try:
            for r in refs:
                s = string_of(r["target"])
                g, p = reloc.arm(reloc.resolve_link(r["addr"], r["where"]), r["where"],
                                 who="kbu break msg", on_trip=_about_to_use, announce=False,
                                 tag=(r["where"], s))
                _placed.append(g)
                core.out("kbu break msg: %s: %s  (\"%s\") at %s"
                         % (r["where"], r["insn"], s, reloc.alias_text(p)))
        except (KeyboardInterrupt, Exception):
            _forget()
            raise
