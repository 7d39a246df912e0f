"""`kbu dmesg`: the kernel's message buffer, read from the paused guest by libkbu."""
from . import core, profile, session


class Dmesg(core.KbuCommand):
    """Print the kernel's message buffer (FreeBSD/NetBSD msgbufp, Linux printk ring).

Reads the buffer the OS profile names through GDB, oldest text first, as the
console printed it: useful when the console is what does not work yet. The
OS comes from the symbols, `set kbu os`, or `set kbu profile FILE`; Linux
needs its System.map (`set kbu symbols`)."""

    name = "dmesg"

    def parser(self, p):
        p.add_argument("-q", "--quiet", action="store_true",
                       help="print only the log, without the buffer summary")
        p.add_argument("--json", action="store_true", help="the report as JSON")

    def run(self, args):
        core.need_live("kbu dmesg")
        core.need_kernel("kbu dmesg")
        ctx = session.ctx()
        ctx.flush()  # the guest ran since the last read
        argv = ["dmesg"] + profile.profile_args() + (["-q"] if args.quiet else [])
        st, text = ctx.run(argv, as_json=args.json)
        core.out(text)
