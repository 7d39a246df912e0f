"""kbu pvh: libkbu's PVH start-info report; at the PVH entry point the start
info is where EBX points, so kbu passes that address explicitly."""
import gdb

from . import core, memory, session
from .core import KbuCommand, KbuError


def pvh_entry():
    """Physical PVH entry (XEN_ELFNOTE_PHYS32_ENTRY) of the kernel, or None."""
    try:
        j = session.ctx().run_json(["notes"])
    except KbuError:
        return None
    return j.get("pvh_entry")


class Pvh(KbuCommand):
    """Decode the PVH start info (hvm_start_info): command line, modules, memory map.

At the PVH entry point (RIP = the PHYS32_ENTRY note) the start info is at
EBX and that address is used; elsewhere libkbu finds it through the kernel's
saved pointer, CPU 0's EBX or a scan. Options are libkbu's (`kbu pvh --help`
for the CLI text), and the CLI's --core DUMP / --phys FILE / --gdb STUB read
that source instead of the target."""

    name = "pvh"

    def parse(self, arg):
        return gdb.string_to_argv(arg)

    def run(self, argv):
        as_json = "--json" in argv
        argv = [a for a in argv if a != "--json"]
        positional = [a for i, a in enumerate(argv)
                      if not a.startswith("-") and (i == 0 or argv[i - 1] not in
                                          ("--scan-limit", "--profile", "--core", "--phys",
                                           "--gdb"))]
        note = None
        _, source = session.split_memory_option(argv)
        if not positional and "--help" not in argv and source is None and core.is_live() \
                and memory.core_file() is None and core.kernel_path():
            entry = pvh_entry()
            rip = core.read_reg("rip")
            if entry is not None and rip == entry:
                ebx = core.read_reg("rbx") & 0xffffffff
                argv.append("0x%x" % ebx)
                note = "at the PVH entry 0x%x: start info at EBX = 0x%x" % (entry, ebx)
        st, text = session.run(["pvh"] + argv, as_json)
        if note and not as_json:
            core.out("kbu: " + note)
        core.out(text)
