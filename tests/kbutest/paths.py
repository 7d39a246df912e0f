"""Where the things under test live: the source tree and its build output."""
import os

ROOT = os.path.abspath(os.environ.get("KBU_ROOT") or os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("KBU_BUILD") or os.path.join(ROOT, "build"))
KBU = os.path.join(BUILD, "kbu")
KBU_ASAN = os.path.join(BUILD, "kbu-asan")
LIBKBU = os.path.join(BUILD, "libkbu.so")
GUEST_KERNEL = os.path.join(BUILD, "guest", "kernel")
GDBEXT = os.path.join(ROOT, "gdbext", "kbu.py")
SCRIPTS = os.path.join(ROOT, "scripts")
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
GDB = os.environ.get("GDB", "gdb")
