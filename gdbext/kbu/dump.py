"""`kbu dump FILE`: save the paused guest's memory and CPUs as a QEMU dump, so
the same triage can be run later, elsewhere, or by someone else, without the VM.

The dump is QEMU's plain `dump-guest-memory` (an ELF core whose PT_LOADs carry
guest physical addresses and one NT_PRSTATUS note per CPU), run detached
(`-d`) so its progress can be shown (`info dump`) and Ctrl-C can stop the
wait. The paging (-p) variant is not used: QEMU 7.2 writes wrong headers for
it on microvm, and libkbu walks the page tables itself. The finished file is
checked by libkbu's own dump reader (every header, segment and CPU note).
"""
import json
import os
import shlex
import shutil
import time

import gdb

from . import core, memory, native, settings

# A 256 MiB guest takes about a second; a busy host or a big guest much longer.
DUMP_TIMEOUT = 600
POLL = 0.2


def check_core(path):
    """(size, ncpus) of a finished plain dump, read by libkbu's dump source;
    the KbuError subclass of what is wrong with it otherwise."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise native.IOFailure("cannot read the dump %s: %s" % (path, e.strerror or e))
    c = native.Ctx(core=path)
    try:
        return size, c.ncpus()
    finally:
        c.close()


def kbu_cli():
    """`kbu` when it is on PATH, else the CLI built next to the loaded libkbu."""
    if shutil.which("kbu"):
        return "kbu"
    try:
        cli = os.path.join(os.path.dirname(os.path.abspath(native.lib_path())), "kbu")
    except core.KbuError:
        return "kbu"
    return cli if os.access(cli, os.X_OK) else "kbu"


def triage_argv(path):
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
    return argv


def triage_command(path):
    return " ".join(shlex.quote(a) for a in triage_argv(path))


def dump_status():
    """(status, percent) from QEMU's `info dump`: status is none, active,
    completed or failed; percent is given while active. QEMU's own text
    ("Status: active" / "Finished: 42.00 %"): the monitor has no other form
    over the GDB stub."""
    text = core.quiet("monitor info dump")
    status, percent = None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Status":
            status = value.strip()
        elif key.strip() == "Finished":
            try:
                percent = float(value.replace("%", "").strip())
            except ValueError:
                pass
    if status is None:
        raise native.FormatError("QEMU's `info dump` says no status: %s"
                                 % (text.strip().splitlines() or ["(nothing)"])[-1])
    return status, percent


def wait_for_dump(path, limit=DUMP_TIMEOUT):
    """Polls `info dump` until QEMU has written the whole dump, with progress;
    Ctrl-C stops the wait (QEMU carries on writing: it cannot be cancelled)."""
    t0 = time.monotonic()
    with core.Progress("kbu dump", "QEMU writing %s" % os.path.basename(path)) as p:
        while True:
            try:
                status, percent = dump_status()
                if status == "active":
                    p.update(int(percent or 0), 100)
                    if time.monotonic() - t0 > limit:
                        raise native.IOFailure("QEMU has not finished %s after %d s "
                                               "(info dump: %.0f%%)" % (path, limit, percent or 0))
                    time.sleep(POLL)
                    continue
            except KeyboardInterrupt:
                raise native.Interrupted(
                    "interrupted at %d%%: QEMU goes on writing %s (a dump cannot be cancelled); "
                    "`monitor info dump` says when it is complete" % (p.done, path)) from None
            if status == "completed":
                return time.monotonic() - t0
            if status == "failed":
                raise native.IOFailure("QEMU failed to write the dump %s (info dump: failed)"
                                       % path)
            raise native.IOFailure("QEMU is not writing a dump (info dump: %s)" % status)


class Dump(core.KbuCommand):
    """Save the paused guest as a QEMU dump for `kbu triage --core` later.

Runs `monitor dump-guest-memory -d FILE` (a plain ELF core: every RAM range
and every CPU's registers), shows QEMU's progress until it has written all
of it (Ctrl-C stops the wait), checks the file with libkbu's dump reader, and
prints the `kbu triage` command that reads it. FILE is made absolute, since
QEMU writes it relative to its own working directory; it is written on the
machine QEMU runs on."""

    name = "dump"
    completer = gdb.COMPLETE_FILENAME

    def parser(self, p):
        p.add_argument("file", help="where QEMU writes the dump")
        p.add_argument("-f", "--force", action="store_true",
                       help="overwrite FILE if it exists")
        p.add_argument("--json", action="store_true", help="the result as JSON")

    def run(self, args):
        if memory.core_file() is not None:
            raise native.Unsupported("GDB has a dump open already (its core target), not a "
                                     "live guest: there is nothing to dump")
        core.need_live("kbu dump")
        path = os.path.abspath(os.path.expanduser(args.file))
        if os.path.exists(path) and not args.force:
            raise native.InputError("%s exists (kbu dump -f FILE overwrites it)" % path)
        if not os.path.isdir(os.path.dirname(path)):
            raise native.NotFound("no directory %s" % os.path.dirname(path))
        if any(c in path for c in " \t\n\"'"):
            raise native.InputError("QEMU's monitor cannot take a path with blanks or quotes: "
                                    "%s" % path)
        if args.force and os.path.exists(path):
            os.unlink(path)
        try:
            out = core.quiet("monitor dump-guest-memory -d %s" % path)
        except gdb.error as e:
            raise native.IOFailure("monitor dump-guest-memory %s failed: %s" % (path, e))
        if out.strip():
            # QEMU reports errors as monitor text, not as a failed packet.
            raise native.IOFailure("QEMU: %s" % out.strip().splitlines()[-1])
        secs = wait_for_dump(path)
        if not os.path.exists(path):
            raise native.NotFound("QEMU reported no error but %s does not exist (is QEMU on "
                                  "another machine? the file is written where QEMU runs)" % path)
        size, ncpus = check_core(path)
        if args.json:
            core.out(json.dumps({"command": "dump", "file": path, "bytes": size,
                                 "cpus": ncpus, "seconds": round(secs, 3),
                                 "triage": triage_argv(path)}))
            return
        core.out("kbu dump: wrote %s (%.1f MiB, %d CPU%s) in %.1f s"
                 % (path, size / 1048576.0, ncpus, "" if ncpus == 1 else "s", secs))
        core.out("triage it with:\n  %s" % triage_command(path))
