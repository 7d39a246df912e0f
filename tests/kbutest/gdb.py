"""Run real GDB in batch mode against a QEMU stub."""
import os
import subprocess

from . import load, paths


class GdbError(Exception):
    """GDB timed out or could not be run."""


def gdb_command(kernel, port, commands, load_kbu=False, osabi_none=True):
    """The argv gdb_batch runs (useful to show in a failure message)."""
    argv = [paths.GDB, "-batch", "-nx", "-ex", "set width 0", "-ex", "set height 0",
            "-ex", "set confirm off"]
    if load_kbu:
        if not os.path.isfile(paths.GDBEXT):
            raise GdbError("%s does not exist: the kbu GDB extension is not there" % paths.GDBEXT)
        argv += ["-x", paths.GDBEXT]
    # Debian's GDB has no FreeBSD/NetBSD OS ABI: 'none' before 'file' keeps 64-bit
    # addresses and QEMU's register set usable (harmless for other kernels).
    if osabi_none:
        argv += ["-ex", "set osabi none"]
    if kernel:
        argv += ["-ex", "file %s" % kernel]
    if port is not None:
        argv += ["-ex", "target remote 127.0.0.1:%d" % port]
    for c in commands:
        argv += ["-ex", c]
    return argv


def gdb_batch(kernel, port, commands, timeout=60, load_kbu=False, osabi_none=True):
    """Run `gdb -batch -nx` with `file kernel`, `target remote :port` and then each
    of commands as -ex; return stdout+stderr as one string once GDB exits. GDB
    detaches at the end, so QEMU keeps running. Raises GdbError (GDB killed)
    when it is still running after `timeout` idle seconds (kbutest.load)."""
    argv = gdb_command(kernel, port, commands, load_kbu=load_kbu, osabi_none=osabi_none)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = load.communicate(proc, timeout)
    except subprocess.TimeoutExpired as e:
        raise GdbError("gdb did not finish within %s; output so far:\n%s"
                       % (e.limit, (e.output or b"").decode(errors="replace"))) from None
    return out.decode(errors="replace")


def gdb_kbu(kernel, port, commands, timeout=60):
    """gdb_batch with the kbu extension (gdbext/kbu.py) loaded first."""
    return gdb_batch(kernel, port, commands, timeout=timeout, load_kbu=True)
