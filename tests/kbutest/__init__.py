"""kbu's test harness: QEMU microvm guests, GDB in batch mode, the kbu CLI and
the Debian Linux target. See tests/README.md."""
from .paths import BUILD, GDBEXT, GUEST_KERNEL, KBU, KBU_ASAN, LIBKBU, ROOT
from .load import Limit, WaitError, idle_seconds, run, wait_until
from .qemu import Qemu, QemuError, free_port
from .gdb import GdbError, gdb_batch, gdb_command, gdb_kbu
from .cli import KbuMissing, kbu, kbu_json
from .linux import (LinuxTarget, LinuxTargetError, boot_linux, fetch_linux_target,
                    kernel_offset, PANIC, PANIC_END)

__all__ = [
    "Limit", "WaitError", "idle_seconds", "run", "wait_until",
    "BUILD", "GDBEXT", "GUEST_KERNEL", "KBU", "KBU_ASAN", "LIBKBU", "ROOT",
    "Qemu", "QemuError", "free_port",
    "GdbError", "gdb_batch", "gdb_command", "gdb_kbu",
    "KbuMissing", "kbu", "kbu_json",
    "LinuxTarget", "LinuxTargetError", "boot_linux", "fetch_linux_target", "kernel_offset",
    "PANIC", "PANIC_END",
]
