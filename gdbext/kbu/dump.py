"""`kbu dump FILE`: save the paused guest's memory and CPUs as a QEMU dump, so
the same triage can be run later, elsewhere, or by someone else, without the VM.

The dump is QEMU's plain `dump-guest-memory` (an ELF core whose PT_LOADs carry
guest physical addresses and one NT_PRSTATUS note per CPU). The paging (-p)
variant is not used: QEMU 7.2 writes wrong headers for it on microvm, and
libkbu walks the page tables itself.
"""
import os
import shlex
import shutil
import struct
import time

import gdb

from . import core, memory, native, settings

# A 256 MiB guest takes about a second; a busy host or a big guest much longer.
DUMP_TIMEOUT = 600


def check_core(path):
    """(size, ncpus) of a finished plain dump; KbuError if it is not one."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            ehdr = f.read(64)
            if len(ehdr) < 52 or ehdr[:4] != b"\x7fELF":
                raise core.KbuError("%s is not an ELF file (%d bytes): the dump failed" % (path, size))
            is64 = ehdr[4] == 2
            if is64:
                phoff, = struct.unpack_from("<Q", ehdr, 32)
                phentsize, phnum = struct.unpack_from("<HH", ehdr, 54)
            else:
                phoff, = struct.unpack_from("<I", ehdr, 28)
                phentsize, phnum = struct.unpack_from("<HH", ehdr, 42)
            if phnum == 0 or phentsize < (56 if is64 else 32) or phnum > 4096:
                raise core.KbuError("%s: %d program headers of %d bytes: not a QEMU dump"
                                    % (path, phnum, phentsize))
            f.seek(phoff)
            ph = f.read(phentsize * phnum)
    except OSError as e:
        raise core.KbuError("cannot read the dump %s: %s" % (path, e.strerror or e))
    if len(ph) < phentsize * phnum:
        raise core.KbuError("%s ends inside its program headers: truncated" % path)
    notes = 0
    for i in range(phnum):
        o = i * phentsize
        if is64:
            ptype, _fl, off, _va, _pa, filesz = struct.unpack_from("<IIQQQQ", ph, o)
        else:
            ptype, off, _va, _pa, filesz = struct.unpack_from("<IIIII", ph, o)
        if off + filesz > size:
            raise core.KbuError("%s: segment %d ends at 0x%x, past the end of the file (0x%x): "
                                "the dump is incomplete" % (path, i, off + filesz, size))
        if ptype == 4:
            notes += filesz
    if not notes:
        raise core.KbuError("%s has no notes: no CPU registers were saved" % path)
    return size, len(gdb.selected_inferior().threads())


def kbu_cli():
    """`kbu` when it is on PATH, else the CLI built next to the loaded libkbu."""
    if shutil.which("kbu"):
        return "kbu"
    try:
        cli = os.path.join(os.path.dirname(os.path.abspath(native.lib_path())), "kbu")
    except core.KbuError:
        return "kbu"
    return cli if os.access(cli, os.X_OK) else "kbu"


def triage_command(path):
    """The `kbu triage` command line for this session's kernel and symbols."""
    argv = [kbu_cli(), "triage", "--core", path]
    kernel = core.kernel_path()
    if kernel:
        argv += ["--kernel", os.path.abspath(kernel)]
    syms = settings.get("symbols")
    if syms:
        argv += ["--symbols", os.path.abspath(syms)]
    osname = settings.get("os")
    if osname and osname != "auto":
        argv += ["--os", osname]
    return " ".join(shlex.quote(a) for a in argv)


class Dump(core.KbuCommand):
    """Save the paused guest as a QEMU dump for `kbu triage --core` later.

Runs `monitor dump-guest-memory FILE` (a plain ELF core: every RAM range and
every CPU's registers), waits until QEMU has written all of it, checks the
file, and prints the `kbu triage` command that reads it. FILE is made
absolute, since QEMU writes it relative to its own working directory; it is
written on the machine QEMU runs on."""

    name = "dump"
    completer = gdb.COMPLETE_FILENAME

    def parser(self, p):
        p.add_argument("file", help="where QEMU writes the dump")
        p.add_argument("-f", "--force", action="store_true",
                       help="overwrite FILE if it exists")

    def run(self, args):
        if memory.core_file() is not None:
            raise core.KbuError("GDB has a dump open already (its core target), not a live "
                                "guest: there is nothing to dump")
        core.need_live("kbu dump")
        path = os.path.abspath(os.path.expanduser(args.file))
        if os.path.exists(path) and not args.force:
            raise core.KbuError("%s exists (kbu dump -f FILE overwrites it)" % path)
        if not os.path.isdir(os.path.dirname(path)):
            raise core.KbuError("no directory %s" % os.path.dirname(path))
        if any(c in path for c in " \t\n\"'"):
            raise core.KbuError("QEMU's monitor cannot take a path with blanks or quotes: %s"
                                % path)
        if args.force and os.path.exists(path):
            os.unlink(path)
        old = core.quiet("show remotetimeout")
        old_val = "".join(ch for ch in old.split("is")[-1] if ch.isdigit()) or "2"
        t0 = time.monotonic()
        # The monitor answers only when the dump is complete; give it time.
        gdb.execute("set remotetimeout %d" % DUMP_TIMEOUT, False, True)
        try:
            out = core.quiet("monitor dump-guest-memory %s" % path)
        except gdb.error as e:
            raise core.KbuError("monitor dump-guest-memory %s failed: %s" % (path, e))
        finally:
            gdb.execute("set remotetimeout %s" % old_val, False, True)
        secs = time.monotonic() - t0
        if out.strip():
            # QEMU reports errors as monitor text, not as a failed packet.
            raise core.KbuError("QEMU: %s" % out.strip().splitlines()[-1])
        if not os.path.exists(path):
            raise core.KbuError("QEMU reported no error but %s does not exist (is QEMU on "
                                "another machine? the file is written where QEMU runs)" % path)
        size, ncpus = check_core(path)
        core.out("kbu dump: wrote %s (%.1f MiB, %d CPU%s) in %.1f s"
                 % (path, size / 1048576.0, ncpus, "" if ncpus == 1 else "s", secs))
        core.out("triage it with:\n  %s" % triage_command(path))
