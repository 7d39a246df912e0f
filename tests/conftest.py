"""Fixtures every kbu test can use (documented in tests/README.md).

    qemu            factory: qemu(kernel, **Qemu options) -> started Qemu, stopped after the test
    guest_kernel    path of build/guest/kernel (session)
    linux_target    LinuxTarget from scripts/linux-target (session)
    linux_qemu      factory: linux_qemu(image="elf"|"bzimage", smp=1, append="") -> Qemu at the panic
    linux_dump      factory: linux_dump(smp=1, token="kbu-test-token") -> LinuxDump(path, serial) (session cache)
"""
import os
import shutil
import signal
import tempfile
import threading
from typing import NamedTuple

import pytest

import kbutest
from kbutest import paths

DEFAULT_TIMEOUT = 300


def pytest_configure(config):
    config.addinivalue_line("markers", "linux: boots the Debian Linux kernel (scripts/linux-target)")
    config.addinivalue_line("markers", "slow: takes more than about 10 s")
    config.addinivalue_line("markers", "timeout(seconds): per-test limit in idle seconds "
                            "(kbutest.load)")
    kbutest.qemu.sweep_stale_tmp()


# Per-test time limits count idle seconds (kbutest.load): a test marked
# timeout(300) may take what 300 s are on an idle machine, and longer while the
# machine is shared. The limit is a watchdog against a test that hangs; the
# waits inside a test end on their events. pytest-timeout's own wall-clock
# limit is switched off (timeout(0)) for every test this watchdog covers.
def pytest_collection_modifyitems(config, items):
    try:
        default = float(config.getini("timeout") or DEFAULT_TIMEOUT)
    except (ValueError, TypeError):
        default = DEFAULT_TIMEOUT
    for item in items:
        mark = item.get_closest_marker("timeout")
        seconds = float(mark.args[0]) if mark and mark.args else default
        item.kbu_idle_limit = seconds if seconds > 0 else None
        item.add_marker(pytest.mark.timeout(0), append=False)


class _Watchdog:
    """Sends SIGALRM to the main thread once the test has run `seconds` idle seconds."""

    def __init__(self, seconds):
        self.limit = kbutest.Limit(seconds)
        self.stop = threading.Event()
        self.main = threading.main_thread().ident
        self.thread = threading.Thread(target=self._run, name="kbutest-watchdog", daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.wait(0.5):
            if self.limit.expired():
                signal.pthread_kill(self.main, signal.SIGALRM)
                return

    def cancel(self):
        self.stop.set()
        self.thread.join()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    seconds = getattr(item, "kbu_idle_limit", DEFAULT_TIMEOUT)
    if not seconds:
        yield
        return
    dog = _Watchdog(seconds)

    def expired(_sig, _frame):
        pytest.fail("test exceeded its limit of %.0f idle seconds: %s"
                    % (seconds, dog.limit.describe()), pytrace=False)

    old = signal.signal(signal.SIGALRM, expired)
    try:
        yield
    finally:
        dog.cancel()
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def qemu():
    """Factory: qemu(kernel, smp=1, memory="512M", append=..., paused=False, bios=None, ...)
    -> started Qemu. Every guest it made is killed and its files removed when the test ends."""
    made = []

    def start(kernel, timeout=30, **options):
        q = kbutest.Qemu(kernel, **options)
        made.append(q)
        return q.start(timeout=timeout)

    yield start
    for q in made:
        q.stop()


@pytest.fixture(scope="session")
def guest_kernel():
    """build/guest/kernel (make test builds it; skipped with the reason if absent)."""
    if not os.path.isfile(paths.GUEST_KERNEL):
        pytest.skip("%s is not built (run 'make guest' or 'make test')" % paths.GUEST_KERNEL)
    return paths.GUEST_KERNEL


@pytest.fixture(scope="session")
def linux_target():
    """The Debian cloud kernel, fetched once into ${KBU_CACHE:-~/.cache/kbu}/linux."""
    try:
        return kbutest.fetch_linux_target()
    except kbutest.LinuxTargetError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def linux_qemu(linux_target):
    """Factory: linux_qemu(image="elf"|"bzimage", smp=1, append="", memory="256M", paused=False,
    acpi=None, bios=None) -> Qemu sitting in the "VFS: Unable to mount root fs" panic (or paused
    at reset). acpi=None means on for smp > 1 (Debian's kernel only finds other CPUs in the
    MADT); bios is a -bios firmware image (None: QEMU's default)."""
    made = []

    def boot(image="elf", smp=1, append="", memory="256M", paused=False, timeout=120, acpi=None,
             bios=None):
        q = kbutest.boot_linux(linux_target, image=image, smp=smp, append=append,
                               memory=memory, paused=paused, timeout=timeout, acpi=acpi,
                               extra=("-bios", bios) if bios else ())
        made.append(q)
        return q

    yield boot
    for q in made:
        q.stop()


class LinuxDump(NamedTuple):
    path: str      # plain QEMU dump-guest-memory ELF core of the panicked guest
    serial: str    # its console output up to the end of the panic


@pytest.fixture(scope="session")
def linux_dump(linux_target):
    """Factory: linux_dump(smp=1, token="kbu-test-token") -> LinuxDump(path, serial).
    Boots the PVH vmlinux with -smp smp (ACPI on when smp > 1) and "kbu.token=<token>"
    on its command line,
    waits for the root-fs panic and dumps guest memory (256 MiB). Cached per
    (smp, token) for the session; the files are removed at its end."""
    tmp = tempfile.mkdtemp(prefix=kbutest.qemu.tmp_prefix("linux-dumps"))
    cache = {}

    def make(smp=1, token="kbu-test-token"):
        key = (smp, token)
        if key not in cache:
            q = kbutest.boot_linux(linux_target, image="elf", smp=smp, append="kbu.token=%s" % token)
            try:
                path = q.dump(os.path.join(tmp, "linux-smp%d-%s.core" % (smp, token)))
                cache[key] = LinuxDump(path, q.serial_text())
            finally:
                q.stop()
        return cache[key]

    yield make
    shutil.rmtree(tmp, ignore_errors=True)
