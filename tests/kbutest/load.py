"""Waiting on events, with limits that hold on a loaded machine.

Every wait in the harness ends on its event (a console line, a QMP reply, a
process that exits) or on a definitive failure (the process it waits on has
gone). What is left is a watchdog against a wait that will never end, and it
does not count wall-clock seconds tuned to an idle machine: it counts *idle
seconds*, wall time divided by the CPU contention measured meanwhile
(runnable tasks per CPU, from /proc/stat, at least 1). On an idle machine an
idle second is a second; when two test suites share two cores, each second
counts for about a half, because QEMU's TCG guest, GDB and kbu get about half
the CPU they would get. A limit of 60 therefore means "what would take 60 s
here with nothing else running" whatever the load.
"""
import os
import signal
import subprocess
import threading
import time

SAMPLE = 0.2   # seconds between samples of the contention


class LoadClock:
    """Idle seconds since the clock started (one per process, a daemon thread)."""

    def __init__(self):
        self.ncpu = os.cpu_count() or 1
        self.lock = threading.Lock()
        self.idle = 0.0
        self.last = time.monotonic()
        self.contention = self.sample()
        t = threading.Thread(target=self._run, name="kbutest-load-clock", daemon=True)
        t.start()

    def sample(self):
        """Runnable tasks per CPU right now, at least 1 (this reader not counted)."""
        try:
            with open("/proc/stat") as f:
                for line in f:
                    if line.startswith("procs_running "):
                        running = int(line.split()[1]) - 1
                        return max(1.0, running / self.ncpu)
        except (OSError, ValueError):
            pass
        return 1.0

    def _advance(self):
        now = time.monotonic()
        self.idle += (now - self.last) / self.contention
        self.last = now

    def _run(self):
        while True:
            time.sleep(SAMPLE)
            c = self.sample()
            with self.lock:
                self._advance()
                self.contention = c

    def now(self):
        with self.lock:
            self._advance()
            return self.idle


_clock = None
_clock_lock = threading.Lock()


def clock():
    global _clock
    with _clock_lock:
        if _clock is None or _clock_pid != os.getpid():
            _start_clock()
        return _clock


_clock_pid = None


def _start_clock():
    global _clock, _clock_pid
    _clock = LoadClock()
    _clock_pid = os.getpid()


def idle_seconds():
    """Idle seconds elapsed on this process's load clock (a monotonic count)."""
    return clock().now()


class Limit:
    """A watchdog of `seconds` idle seconds: Limit(60).expired(), .elapsed(), .left()."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.start = idle_seconds()
        self.wall_start = time.monotonic()

    def elapsed(self):
        return idle_seconds() - self.start

    def left(self):
        return self.seconds - self.elapsed() if self.seconds is not None else None

    def expired(self):
        return self.seconds is not None and self.elapsed() >= self.seconds

    def describe(self):
        wall = time.monotonic() - self.wall_start
        return "%.0f idle s (%.0f s of wall-clock time on this loaded machine)" % (
            self.elapsed(), wall)


class WaitError(Exception):
    """A wait whose event did not come within its limit in idle seconds."""


def wait_until(predicate, what, seconds, gone=None, poll=0.05):
    """predicate()'s first true value. Fails (WaitError) once gone() says the
    event can no longer come (e.g. the process died), or after `seconds` idle
    seconds without it."""
    limit = Limit(seconds)
    while True:
        v = predicate()
        if v:
            return v
        if gone is not None:
            why = gone()
            if why:
                v = predicate()   # it may have happened just before the end
                if v:
                    return v
                raise WaitError("%s: %s" % (what, why))
        if limit.expired():
            raise WaitError("%s: not within %s" % (what, limit.describe()))
        time.sleep(poll)


def communicate(proc, seconds, input=None):
    """proc.communicate() with a limit in idle seconds: (stdout, stderr), or
    subprocess.TimeoutExpired after killing proc's process group (start it with
    start_new_session=True)."""
    limit = Limit(seconds)
    first = True
    while True:
        try:
            return proc.communicate(input=input if first else None, timeout=1.0)
        except subprocess.TimeoutExpired:
            first = False
            if limit.expired():
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    proc.kill()
                out, err = proc.communicate()
                e = subprocess.TimeoutExpired(proc.args, seconds, output=out, stderr=err)
                e.limit = limit.describe()
                raise e
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            raise


def run(argv, timeout=120, input=None, text=True, **kw):
    """subprocess.run(argv, capture_output=True) with its timeout in idle
    seconds (the process group is killed and TimeoutExpired raised past it)."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else
                            kw.pop("stdin", subprocess.DEVNULL),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text,
                            start_new_session=True, **kw)
    out, err = communicate(proc, timeout, input=input)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)
