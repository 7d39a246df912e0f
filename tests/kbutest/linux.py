"""The Debian cloud kernel as a test target (fetched by scripts/linux-target)."""
import os
import re
import sys

from . import load, paths
from .qemu import Qemu, QemuError

# The last line of Linux's panic report: after it the CPU only spins.
PANIC_END = r"---\[ end Kernel panic - not syncing: VFS: Unable to mount root fs"
PANIC = r"Kernel panic - not syncing: VFS: Unable to mount root fs"
ANY_PANIC_END = r"---\[ end Kernel panic - not syncing: (.*?)(?: \]---)?\r?$"
# tsc_early_khz: under TCG on a loaded host the PIT calibration of the TSC can
# fail, and with ACPI on the kernel then hangs; a given frequency skips it.
DEFAULT_APPEND = "console=ttyS0 earlyprintk=ttyS0 tsc_early_khz=2500000"


class LinuxTargetError(Exception):
    """scripts/linux-target could not provide the kernel."""


class LinuxTarget:
    """Paths of one fetched kernel: vmlinux (PVH ELF, no symbols), bzimage,
    system_map, config, vmlinux_dbg (DWARF, or None), version, dir, pvh_entry (int)."""

    def __init__(self, kv):
        self.kv = kv
        self.version = kv["version"]
        self.dir = kv["dir"]
        self.vmlinux = kv["vmlinux"]
        self.bzimage = kv["bzimage"]
        self.system_map = kv["system_map"]
        self.config = kv["config"]
        self.vmlinux_dbg = kv.get("vmlinux_dbg")
        self.pvh_entry = int(kv["pvh_entry"], 16)

    def symbol(self, name):
        """Link-time address of name from System.map (None if absent)."""
        with open(self.system_map) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == name:
                    return int(parts[0], 16)
        return None

    def __repr__(self):
        return "LinuxTarget(%s)" % self.dir


def fetch_linux_target(timeout=900):
    """Run scripts/linux-target (instant when cached) and return a LinuxTarget.
    `timeout` in idle seconds (kbutest.load)."""
    script = os.path.join(paths.SCRIPTS, "linux-target")
    p = load.run([script, "--quiet"], timeout=timeout)
    if p.returncode != 0:
        raise LinuxTargetError("scripts/linux-target failed (%d): %s" % (p.returncode, p.stderr.strip()))
    kv = dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)
    for key in ("version", "dir", "vmlinux", "bzimage", "system_map", "config", "pvh_entry"):
        if key not in kv:
            raise LinuxTargetError("scripts/linux-target printed no %s=: %r" % (key, p.stdout))
    return LinuxTarget(kv)


def kernel_offset(serial):
    """KASLR slide from Linux's "Kernel Offset:" console line: an int, 0 for
    "disabled", None when the line is not there."""
    m = re.search(r"Kernel Offset: (disabled|0x[0-9a-f]+) from", serial) or \
        re.search(r"Kernel Offset: (disabled)", serial)
    if not m:
        return None
    return 0 if m.group(1) == "disabled" else int(m.group(1), 16)


def boot_linux(target, image="elf", smp=1, append="", memory="256M", timeout=120, extra=(),
               paused=False, acpi=None):
    """Start the kernel (image "elf": PVH vmlinux, no KASLR; "bzimage": qboot's
    Linux loader, KASLR) and, unless paused, wait for the end of its
    "VFS: Unable to mount root fs" panic. Returns the running Qemu: the caller
    stops it (or uses it as a context manager).

    acpi=None turns microvm's ACPI on only for smp > 1: Debian's kernel has no
    MP-table parser (CONFIG_X86_MPPARSE is off), so without the MADT it brings
    up one CPU whatever -smp says."""
    kernel = {"elf": target.vmlinux, "bzimage": target.bzimage}[image]
    if acpi is None:
        acpi = smp > 1
    for attempt in (1, 2):
        q = Qemu(kernel, smp=smp, memory=memory, append=(DEFAULT_APPEND + " " + append).strip(),
                 extra=extra, paused=paused, acpi=acpi, name="linux-" + image)
        try:
            q.start()
            if paused:
                return q
            end = q.wait_serial(ANY_PANIC_END, timeout=timeout)
            if re.match(PANIC_END, end.group(0)):
                return q
        except BaseException:
            q.stop()
            raise
        # Linux under TCG on a busy host now and then dies early in start_kernel
        # (seen with SeaBIOS, ACPI and -smp 4: a fault in __x86_return_thunk, then
        # "Attempted to kill the idle task!"). That is the emulator's, not what a
        # test asks about: one more boot, said on stderr.
        q.stop()
        if attempt == 2:
            raise QemuError("Linux died before its root-fs panic, twice: %s" % end.group(1))
        sys.stderr.write("kbutest: Linux died before its root-fs panic (%s); booting it again\n"
                         % end.group(1))
    return q
