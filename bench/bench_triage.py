#!/usr/bin/python3
"""`kbu triage` on a real 256 MiB QEMU dump (Debian's cloud kernel, -smp 2, at
its root-fs panic), against what a naive post-mortem costs: reading the whole
file (`cat DUMP > /dev/null`) and GDB opening it as a core (`gdb -batch
vmlinux -ex 'core-file DUMP' -ex 'info registers rip'`).

Prints, as ratios to the naive tools:
  - wall time, warm page cache (best of several runs),
  - wall time, cold: the dump's pages dropped from the page cache first
    (posix_fadvise DONTNEED on that file only),
  - bytes: what libkbu copied out of the dump (its own count), and how much of
    the file the kernel had to bring in from disk for the cold run (pages of
    the file resident afterwards, counted with mincore; includes readahead).
"""
import ctypes
import ctypes.util
import json
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import BUILD
from benchlib import skip as _skip

KBU = os.path.join(BUILD, "kbu")

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
libc.posix_fadvise.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_int]
POSIX_FADV_DONTNEED = 4
PAGE = mmap.PAGESIZE


def skip(why):
    _skip("triage", why)


def drop_cache(path):
    """Drops this file's pages from the page cache (nothing else is touched)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        libc.posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
MAP_FAILED = ctypes.c_void_p(-1).value


def resident_bytes(path):
    """Bytes of the file in the page cache now (mincore over a mapping that is never touched)."""
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, MAP_FAILED):
            raise OSError(ctypes.get_errno(), "mmap " + path)
        try:
            vec = ctypes.create_string_buffer((size + PAGE - 1) // PAGE)
            if libc.mincore(ctypes.c_void_p(addr), size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore " + path)
        finally:
            libc.munmap(ctypes.c_void_p(addr), size)
        return sum(b & 1 for b in vec.raw) * PAGE
    finally:
        os.close(fd)


def readahead_kb(path):
    """The read-ahead of the block device holding path (None if not a block device)."""
    st = os.stat(path)
    base = "/sys/dev/block/%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev))
    for q in (base + "/queue/read_ahead_kb", base + "/../queue/read_ahead_kb"):
        try:
            with open(q) as f:
                return int(f.read())
        except (OSError, ValueError):
            continue
    return None


def timed(argv, **kw):
    t0 = time.monotonic()
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    return time.monotonic() - t0, r


def best(argv, runs=5, **kw):
    out = None
    times = []
    for _ in range(runs):
        t, out = timed(argv, **kw)
        times.append(t)
    return min(times), out


def make_dump(tmp):
    import kbutest
    try:
        target = kbutest.fetch_linux_target()
    except Exception as e:  # noqa: BLE001 - any failure to fetch is a skip here
        skip(f"no Linux target ({e})")
    q = kbutest.boot_linux(target, smp=2, memory="256M")
    try:
        path = q.dump(os.path.join(tmp, "linux-256M.core"))
    finally:
        q.stop()
    return target, path


def main():
    if not os.access(KBU, os.X_OK):
        skip(f"{KBU} is not built")
    tmp = tempfile.mkdtemp(prefix="kbu-bench-triage-")
    try:
        target, dump = make_dump(tmp)
        size = os.path.getsize(dump)
        triage = [KBU, "triage", "--core", dump, "--kernel", target.vmlinux,
                  "--symbols", target.system_map, "--json"]

        # cold: the dump's pages out of the cache, one run, then what it brought in
        drop_cache(dump)
        before = resident_bytes(dump)
        t_cold, r = timed(triage, timeout=300)
        if r.returncode not in (0, 1):
            print(f"triage: kbu triage failed: {r.stderr.strip()}")
            return 1
        disk = resident_bytes(dump) - before
        rep = json.loads(r.stdout)
        copied = rep["reads"]["source_bytes"]

        drop_cache(dump)
        t_cat_cold, _ = timed(["sh", "-c", f"cat '{dump}' > /dev/null"])

        t_warm, _ = best(triage, timeout=300)
        t_cat, _ = best(["sh", "-c", f"cat '{dump}' > /dev/null"])
        # the dump's share: the same triage without the 87,000-line System.map
        t_nosym, _ = best([KBU, "triage", "--core", dump, "--kernel", target.vmlinux], timeout=300)
        gdb = ["gdb", "-batch", "-nx", target.vmlinux, "-ex", f"core-file {dump}",
               "-ex", "info registers rip"]
        t_gdb, gr = best(gdb, runs=3, timeout=300)
        gdb_ok = "rip" in gr.stdout

        mib = size / 1048576
        print(f"triage: dump {mib:.0f} MiB ({size} bytes), {len(rep['cpus'])} CPUs, Linux "
              f"{os.path.basename(target.dir)}; verdict problems: {rep['verdict']['problems']}")
        print(f"triage: warm: kbu triage {t_warm * 1000:.0f} ms | cat {t_cat * 1000:.0f} ms "
              f"(ratio {t_warm / t_cat:.2f}) | gdb core-file + info registers "
              f"{t_gdb * 1000:.0f} ms{'' if gdb_ok else ' (no rip printed)'} "
              f"(ratio {t_warm / t_gdb:.2f})")
        print(f"triage: warm, no --symbols (the dump's own share): {t_nosym * 1000:.0f} ms "
              f"(ratio to cat {t_nosym / t_cat:.2f})")
        print(f"triage: cold: kbu triage {t_cold * 1000:.0f} ms | cat {t_cat_cold * 1000:.0f} ms "
              f"(ratio {t_cold / t_cat_cold:.3f})")
        print(f"triage: bytes copied out of the dump by libkbu: {copied} "
              f"({copied / size:.5f} of the file; cat reads 1.0)")
        print(f"triage: bytes brought in from disk for the cold run: {disk} "
              f"({disk / size:.5f} of the file; the device reads ahead "
              f"{readahead_kb(dump) or '?'} KiB per fault)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
