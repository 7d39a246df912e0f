"""QEMU -M microvm under test control.

A Qemu owns one QEMU process in its own process group, a private work
directory (serial log, QMP socket, dumps by default) and a GDB stub on a free
port. stop() kills the group and removes the directory; an atexit hook and
PR_SET_PDEATHSIG do the same if the test process dies first, so no QEMU and no
temporary file outlives a test run, whatever the test did.
"""
import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref

from . import paths
from .load import Limit

_live = weakref.WeakSet()

PR_SET_PDEATHSIG = 1


def tmp_prefix(name):
    """Prefix of a temporary directory: carries our pid so sweep_stale_tmp() can
    tell a dead run's leftovers (after a SIGKILL) from a live run's files."""
    return "kbu-%s-p%d-" % (name, os.getpid())


def sweep_stale_tmp():
    """Remove kbu temporary directories left by test processes that no longer exist."""
    base = tempfile.gettempdir()
    for entry in os.listdir(base):
        m = re.match(r"kbu-.*-p(\d+)-[^-]+$", entry)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(os.path.join(base, entry), ignore_errors=True)


class QemuError(Exception):
    """QEMU did not start, died, or did not do what a test waited for."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    # Runs in the child between fork and exec: if the test process is killed
    # (SIGKILL, xdist worker crash), the kernel kills QEMU too.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except OSError:
        pass


def _port_listening(port):
    """True when some socket listens on 127.0.0.1:port (read from /proc, no connect:
    connecting to QEMU's stub would stop the guest)."""
    want = ":%04X" % port
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1].endswith(want) and fields[3] == "0A":
                        return True
        except OSError:
            continue
    return False


class Qmp:
    """Minimal QMP client on a unix socket: commands in, replies out, events skipped."""

    def __init__(self, path, timeout, alive=None):
        limit = Limit(timeout)
        last = None
        self.alive = alive or (lambda: True)
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                last = e
                if not self.alive():
                    raise QemuError("QEMU exited before its QMP socket %s accepted" % path)
                if limit.expired():
                    raise QemuError("QMP socket %s did not accept within %s: %s"
                                    % (path, limit.describe(), last))
                time.sleep(0.05)
        self.timeout = timeout
        self.sock.settimeout(1.0)   # short reads, so a dead QEMU is noticed at once
        self.buf = b""
        greeting = self._read()
        if "QMP" not in greeting:
            raise QemuError("no QMP greeting on %s: %r" % (path, greeting))
        self.execute("qmp_capabilities")

    def _read(self, timeout=None):
        """One JSON line. Waits until it comes, QEMU exits, or `timeout` idle seconds pass."""
        limit = Limit(self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                if not self.alive():
                    raise QemuError("QEMU exited while QMP waited for a reply") from None
                if limit.expired():
                    raise QemuError("no QMP reply within %s" % limit.describe()) from None
                continue
            if not chunk:
                raise QemuError("QMP connection closed (QEMU exited?)")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, timeout=None, **arguments):
        """The reply's "return"; timeout in idle seconds (kbutest.load)."""
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read(timeout)
            if "event" in reply:
                continue
            if "error" in reply:
                raise QemuError("QMP %s failed: %s" % (command, reply["error"].get("desc", reply["error"])))
            return reply.get("return")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Qemu:
    """One QEMU microvm guest.

    Qemu(kernel, smp=1, memory="512M", append="console=ttyS0", cpu="max",
         acpi=False, paused=False, gdb=True, extra=(), workdir=None, name="vm", bios=None)
    .start(timeout)            boots (returns self); the stub listens on .port
    .wait_serial(regex, timeout) -> re.Match over the whole serial text
    .serial_text()             everything the guest printed so far
    .monitor(cmd) -> str       a human-monitor command through QMP
    .qmp(command, **args)      a raw QMP command
    .dump(path=None, timeout)  plain dump-guest-memory (ELF, p_paddr = physical); returns the path
    .stop()                    kills QEMU, removes the work directory
    Usable as a context manager.
    """

    def __init__(self, kernel, smp=1, memory="512M", append="console=ttyS0", cpu="max",
                 acpi=False, paused=False, gdb=True, extra=(), workdir=None, name="vm", bios=None):
        if not os.path.isfile(kernel):
            raise QemuError("kernel %s does not exist" % kernel)
        self.kernel = kernel
        self.smp = smp
        self.memory = memory
        self.append = append
        self.cpu = cpu
        self.acpi = acpi
        self.paused = paused
        self.gdb = gdb
        self.bios = bios  # a firmware image for -bios (None: QEMU's default, qboot on microvm)
        self.extra = list(extra)
        self.name = name
        self._own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=tmp_prefix(name))
        os.makedirs(self.workdir, exist_ok=True)
        self.serial_path = os.path.join(self.workdir, "serial.log")
        self.qmp_path = os.path.join(self.workdir, "qmp.sock")
        self.stderr_path = os.path.join(self.workdir, "qemu.err")
        self.port = None
        self.proc = None
        self._qmp = None
        self._stopped = False
        _live.add(self)

    # -- lifecycle -----------------------------------------------------------

    def command(self, port):
        cmd = [paths.QEMU, "-M", "microvm,acpi=%s" % ("on" if self.acpi else "off"),
               "-cpu", self.cpu, "-m", str(self.memory), "-smp", str(self.smp),
               "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
               "-kernel", self.kernel, "-append", self.append,
               "-serial", "file:" + self.serial_path,
               "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        if port is not None:
            cmd += ["-gdb", "tcp:127.0.0.1:%d" % port]
        if self.bios:
            cmd += ["-bios", self.bios]
        if self.paused:
            cmd.append("-S")
        return cmd + self.extra

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, timeout=30):
        for _attempt in range(8):
            port = free_port() if self.gdb else None
            for p in (self.serial_path, self.qmp_path):
                if os.path.exists(p):
                    os.unlink(p)
            with open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(self.command(port), stdin=subprocess.DEVNULL,
                                             stdout=err, stderr=err, start_new_session=True,
                                             preexec_fn=_die_with_parent)
            try:
                # QEMU binds the stub during init and answers QMP only from its main
                # loop, so a QMP greeting means the stub is listening.
                self._qmp = self._connect_qmp(timeout)
            except QemuError:
                self._kill()
                text = self._stderr_text()
                if port is not None and "Address already in use" in text:
                    continue  # someone took the port between our bind and QEMU's
                raise QemuError("QEMU did not start: %s\ncommand: %s" % (text.strip() or "no message",
                                                                         " ".join(self.command(port))))
            if port is not None and not _port_listening(port):
                self.stop()
                raise QemuError("QEMU runs but its GDB stub does not listen on port %d" % port)
            self.port = port
            return self
        raise QemuError("no free GDB port after 8 attempts")

    def _connect_qmp(self, timeout):
        limit = Limit(timeout)
        while not os.path.exists(self.qmp_path):
            if self.proc.poll() is not None:
                raise QemuError("QEMU exited with %d" % self.proc.returncode)
            if limit.expired():
                raise QemuError("QMP socket never appeared (%s)" % limit.describe())
            time.sleep(0.02)
        return Qmp(self.qmp_path, max(1.0, limit.left()), alive=self.alive)

    def _stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _kill(self):
        if self._qmp:
            self._qmp.close()
            self._qmp = None
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def stop(self):
        """Kill QEMU (its whole process group) and remove the work directory."""
        if self._stopped:
            return
        self._stopped = True
        self._kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        _live.discard(self)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- serial ---------------------------------------------------------------

    def serial_text(self):
        try:
            with open(self.serial_path, "rb") as f:
                # Consoles end lines with CR LF: drop the CR so '$' works in patterns.
                return f.read().decode("utf-8", errors="replace").replace("\r\n", "\n")
        except FileNotFoundError:
            return ""

    def wait_serial(self, regex, timeout=60):
        """Wait until the serial output matches regex (re.M); return the match.
        Raises QemuError with the output's tail if QEMU exits first, or when
        `timeout` idle seconds (kbutest.load: they stretch with the machine's
        load) pass without it."""
        pat = re.compile(regex, re.M) if isinstance(regex, str) else regex
        limit = Limit(timeout)
        while True:
            text = self.serial_text()
            m = pat.search(text)
            if m:
                return m
            if not self.alive():
                # It may have written the line just before it exited: look once more.
                text = self.serial_text()
                m = pat.search(text)
                if m:
                    return m
                raise QemuError("QEMU exited (%s) before the serial output matched %r; last output:\n%s\n%s"
                                % (self.proc.returncode if self.proc else "never started",
                                   pat.pattern, _tail(text), self._stderr_text().strip()))
            if limit.expired():
                raise QemuError("serial output did not match %r within %s; last output:\n%s"
                                % (pat.pattern, limit.describe(), _tail(text)))
            time.sleep(0.05)

    # -- monitor --------------------------------------------------------------

    def qmp(self, command, timeout=60, **arguments):
        if not self._qmp:
            raise QemuError("QEMU is not running")
        return self._qmp.execute(command, timeout=timeout, **arguments)

    def monitor(self, cmd, timeout=60):
        """Run a human-monitor command (e.g. 'info lapic', 'xp /4wx 0x9fc00'); return its text."""
        return self.qmp("human-monitor-command", timeout=timeout, **{"command-line": cmd})

    def status(self):
        return self.qmp("query-status")["status"]

    def dump(self, path=None, timeout=300):
        """Plain dump-guest-memory to path (default: in the work directory); waits until
        QEMU says it is complete (or failed), `timeout` in idle seconds."""
        if path is None:
            path = os.path.join(self.workdir, "dump-%d.core" % int(time.monotonic() * 1000))
        path = os.path.abspath(path)
        self.qmp("dump-guest-memory", paging=False, protocol="file:" + path, detach=True)
        limit = Limit(timeout)
        while True:
            st = self.qmp("query-dump")
            if st["status"] == "completed":
                return path
            if st["status"] == "failed":
                raise QemuError("dump-guest-memory to %s failed" % path)
            if limit.expired():
                raise QemuError("dump-guest-memory to %s not done after %s (%s of %s bytes)"
                                % (path, limit.describe(), st.get("completed"), st.get("total")))
            time.sleep(0.1)


def _tail(text, lines=25):
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


@atexit.register
def _stop_all():
    for q in list(_live):
        q.stop()
