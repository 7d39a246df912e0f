"""`kbu dmesg`: the kernel's message buffer, read from the paused guest by libkbu."""
from . import core, memory, profile, session


class Dmesg(core.KbuCommand):
    """Print the kernel's message buffer (FreeBSD/NetBSD msgbufp, Linux printk ring).

Reads the buffer the OS profile names through GDB, oldest text first, as the
console printed it: useful when the console is what does not work yet. The
OS comes from the symbols, `set kbu os`, or `set kbu profile FILE`; Linux
needs its System.map (`set kbu symbols`). With GDB's core target open on a
QEMU dump, or with --core DUMP, the dump is read by libkbu."""

    name = "dmesg"

    def parser(self, p):
        p.add_argument("-q", "--quiet", action="store_true",
                       help="print only the log, without the buffer summary")
        p.add_argument("--json", action="store_true", help="the report as JSON")
        src = p.add_mutually_exclusive_group()
        src.add_argument("--core", metavar="DUMP", help="read a QEMU dump instead of the target")
        src.add_argument("--phys", metavar="FILE[@BASE]", help="read a raw physical image")
        src.add_argument("--gdb", metavar="STUB", help="read another GDB stub")

    def run(self, args):
        source = [("--" + k, getattr(args, k)) for k in ("core", "phys", "gdb")
                  if getattr(args, k)]
        if not source and memory.core_file() is None:
            core.need_live("kbu dmesg")
        core.need_kernel("kbu dmesg")
        argv = ["dmesg"] + profile.profile_args() + (["-q"] if args.quiet else [])
        if source:
            argv += list(source[0])
        else:
            session.ctx().flush()  # the guest ran since the last read
        st, text = session.run(argv, as_json=args.json)
        core.out(text)
