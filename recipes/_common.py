"""What every recipe shares: driving the guest to an end state, reading the
kbu commands' JSON, collecting evidence and rendering the verdict.

Exit status of a recipe (also `$kbu_recipe_status` in GDB and the exit code
of scripts/kbu-triage):
  0  no problem found
  1  a problem was found (the verdict names it)
  2  the recipe could not run or could not decide ("undecided: ...")
"""
import os
import re
import signal
import threading
import time

import gdb

from kbu import core, memory, profile, session
from kbu.core import KbuError

OK, PROBLEM, UNDECIDED = 0, 1, 2
RESULT = {OK: "no problem", PROBLEM: "problem", UNDECIDED: "undecided"}

# Functions a kernel idles in once it has nothing left to do at boot
# (FreeBSD and the test kernel: cpu_idle; NetBSD: idle_loop). Linux is not
# listed: its boot CPU idles long before init finishes.
IDLE_FUNCTIONS = ("cpu_idle", "idle_loop")
RESET_VECTOR = 0xfff0
MAX_FRAMES = 12

# The last end state reached in this GDB session, so a second recipe on the
# same stop need not run the guest again. It holds while the vCPU stands where
# it stopped (CPUID injection single-steps but puts RIP back, so "the guest
# resumed" is not the test).
_last = {"end": None, "watches": {}, "at": None}


def _resumed(*unused):
    _last["end"] = None


def release_watches():
    """Disarms the watches recipes armed and no recipe took (end of `kbu recipe`)."""
    try:
        from kbu import watch as watchmod
    except ImportError:
        return
    for kind, w in list(_last["watches"].items()):
        if watchmod.watches.active.get(kind) is w:
            watchmod.watches.active.pop(kind, None)
            w.disarm()
    _last["watches"] = {}


gdb.events.exited.connect(_resumed)


def _stands_at():
    return (_cpu(), _pc())


class Run:
    """One run of a recipe: its options, evidence, problems and verdict."""

    def __init__(self, name, summary, timeout=20.0, here=False, console=None, also_watch=()):
        self.name = name
        self.summary = summary
        self.timeout = timeout
        self.here = here
        self.console_path = console
        self.also_watch = tuple(also_watch)   # watches other recipes of this run want
        self.watches = {}
        self.facts = {}
        self.evidence = []       # (label, text)
        self.problems = []
        self.end = None
        self.status = None
        self.cause = None
        self.next_step = None
        self._log = None
        self._prof = None

    # -- evidence -------------------------------------------------------------
    def fact(self, key, label, value, text=None):
        """Records a fact: value goes to JSON, text (default str(value)) to the report."""
        self.facts[key] = value
        if label:
            self.evidence.append((label, text if text is not None else _show(value)))
        return value

    def note(self, label, text):
        self.evidence.append((label, text))

    def problem(self, msg):
        if msg not in self.problems:
            self.problems.append(msg)

    def verdict(self, status, cause, next_step=None):
        self.status, self.cause, self.next_step = status, cause, next_step
        return self

    # -- the guest and the kernel ---------------------------------------------
    def profile(self):
        if self._prof is None:
            self._prof = profile.get()
        return self._prof

    def os_name(self):
        return self.profile().get("name") or "unknown"

    def kbu_json(self, argv):
        """A libkbu command's report as a dict (memory through GDB, fresh reads)."""
        c = session.ctx()
        c.flush()
        return c.run_json(argv)

    def symbol(self, name):
        return profile.lookup(name)

    def read_var(self, name, size, signed=False):
        """An integer kernel variable, or None if the kernel has no such symbol."""
        addr = profile.lookup(name)
        if addr is None:
            return None
        return profile.read_int(addr, size) if signed else profile.read_uint(addr, size)

    def kernel_facts(self):
        """The kernel's own variables through the OS profile, as libkbu's triage
        report reads them ({"x2apic", "timesource", "ncpus", ...}), or {}."""
        if getattr(self, "_kernel", None) is None:
            try:
                self._kernel = self.kbu_json(["triage"] + profile.profile_args()).get("kernel") or {}
            except KbuError:
                self._kernel = {}
        return self._kernel

    def ncpus(self):
        """(text, count) of the kernel's CPU count variable (profile role ncpus)."""
        k = self.kernel_facts()
        if k.get("ncpus") is not None:
            return k.get("ncpus_text") or "", k["ncpus"]
        sym, val = self.role_var("ncpus", 4)
        return ("%s = %s" % (sym, val) if sym else ""), val

    def role_var(self, role, size=4):
        """(symbol, value) of the variable the OS profile gives a role, or (None, None)."""
        sym = profile.role(self.profile(), role)
        if not sym:
            return None, None
        try:
            return sym, self.read_var(sym, size)
        except KbuError:
            return sym, None

    def kernel_log(self):
        """The kernel's message buffer (kbu dmesg), else the console log, else ''."""
        if self._log is None:
            self._log = ""
            try:
                res = self.kbu_json(["dmesg"] + profile.profile_args())
                self._log = res.get("text") or ""
            except KbuError:
                pass
            if not self._log and self.console_path:
                try:
                    with open(self.console_path, errors="replace") as f:
                        self._log = f.read()
                except OSError:
                    pass
        return self._log

    def log_lines(self, pattern):
        """Lines of the kernel log matching a regex, without the timestamp prefix."""
        rx = re.compile(pattern)
        out = []
        for line in self.kernel_log().splitlines():
            text = re.sub(r"^\[\s*\d+\.\d+\]\s*", "", line).rstrip()
            if rx.search(text) and text not in out:
                out.append(text)
        return out

    def forget_log(self):
        self._log = None
        self._kernel = None

    # -- driving the guest ------------------------------------------------------
    def end_state(self, watch=(), timeout=None):
        """Runs the guest to an end state and returns it (also self.end).

        An end state is a stop on one of the profile's assertion/panic entries
        (its message decoded by `kbu break assert`), the idle loop, or the
        timeout. If the guest is already in one (or --here) nothing runs.
        watch: kinds for `kbu watch` armed before the guest runs; the armed
        kbu.watch.Watch objects are in self.watches (empty if nothing ran).
        """
        core.need_live("kbu recipe")
        core.need_kernel("kbu recipe")
        if not (self.profile().get("identification") or {}).get("symbols", 1):
            # The OS may be known from the ELF's notes, but entries and variables are not.
            raise KbuError("the kernel has no symbols, so its panic entries and variables "
                           "cannot be found")
        if self.end is not None:
            return self.end
        if _last["end"] is not None and _last["at"] == _stands_at():
            self.end = dict(_last["end"], reused=True)
            self.watches = {k: w for k, w in _last["watches"].items() if k in watch}
            return self.end
        here = where_now(self.profile())
        if self.here or here["kind"] in ("panic", "idle"):
            self.end = here
            return self.end
        kinds = list(watch) + [k for k in self.also_watch if k not in watch]
        self.end = self._run(kinds, self.timeout if timeout is None else timeout)
        _last["end"] = self.end
        _last["at"] = _stands_at()
        _last["watches"] = dict(self.watches)
        self.watches = {k: w for k, w in self.watches.items() if k in watch}
        return self.end

    def _run(self, watch, timeout):
        from kbu import asserts
        log = []
        own_asserts = not asserts.breaks.bps
        if own_asserts:
            try:
                log.append(gdb.execute("kbu break assert", False, True))
            except gdb.error as e:
                log.append("(no assertion breakpoints: %s)" % e)
        for kind in watch:
            try:
                log.append(gdb.execute("kbu watch %s" % kind, False, True))
                from kbu import watch as watchmod
                self.watches[kind] = watchmod.watches.active.get(kind)
            except (gdb.error, ImportError) as e:
                self.note("watch %s" % kind, "could not be armed: %s" % e)
        idle = []
        for name in IDLE_FUNCTIONS:
            a = profile.lookup(name)
            if a is not None and hasattr(profile, "runtime"):
                a = profile.runtime(a)   # where the kernel runs (KASLR slide applied)
            if a is not None:
                idle.append((a, name, gdb.Breakpoint("*0x%x" % a, internal=True)))
        asserts.breaks.last = None
        try:
            how, text = continue_for(timeout)
        finally:
            for _, _, bp in idle:
                try:
                    bp.delete()
                except (RuntimeError, gdb.error):
                    pass
            last = asserts.breaks.last
            if own_asserts:
                asserts.breaks.disarm()
        log.append(text)
        self.debugger_log = "".join(log)
        memory.bridge.flush()
        session.ctx().flush()
        self.forget_log()
        if how == "exited":
            return {"kind": "exited", "where": None, "detail": "the guest exited (QEMU quit?)"}
        pc = _pc()
        if last is not None:
            end = {"kind": "panic", "entry": last["entry"], "message": last["message"],
                   "function": last["caller"], "cpu": _cpu()}
            end["backtrace"] = _backtrace()
            end["where"] = last["entry"]
            return end
        for a, name, _ in idle:
            if pc == a:
                return {"kind": "idle", "where": name, "cpu": _cpu(),
                        "backtrace": _backtrace()}
        if how == "timeout":
            return {"kind": "timeout", "where": profile.symbolize(pc), "pc": pc,
                    "cpu": _cpu(), "seconds": timeout, "backtrace": _backtrace()}
        return {"kind": "stopped", "where": profile.symbolize(pc), "pc": pc, "cpu": _cpu(),
                "detail": " ".join(text.split())[:200], "backtrace": _backtrace()}

    def end_text(self):
        e = self.end or {}
        k = e.get("kind")
        cpu = " on CPU %s" % e["cpu"] if e.get("cpu") not in (None, "?") else ""
        if k == "panic":
            msg = e.get("message")
            return "panic%s in %s%s%s" % (cpu, e.get("function") or e.get("where"),
                                          ': "%s"' % msg if msg else "",
                                          " (then let run on through the panic)"
                                          if e.get("ran_on") else "")
        if k == "idle":
            return "idle loop (%s)%s" % (e.get("where"), cpu)
        if k == "timeout":
            return "still running after %g s, interrupted in %s%s" % (
                e.get("seconds"), e.get("where"), cpu)
        if k == "reset":
            return "not started (at the reset vector)"
        if k == "here":
            return "stopped in %s%s (inspected where it stands)" % (e.get("where"), cpu)
        if k == "entry":
            return "at the %s (first instruction of the kernel)" % e.get("where")
        if k == "exited":
            return "the guest exited"
        return "stopped in %s%s" % (e.get("where"), cpu)

    # -- output -----------------------------------------------------------------
    def as_dict(self):
        status = UNDECIDED if self.status is None else self.status
        end = dict(self.end) if self.end else None
        return {"recipe": self.name, "summary": self.summary, "os": self._prof and
                self._prof.get("name"), "status": status,
                "verdict": {"result": RESULT[status], "cause": self.cause,
                            "next": self.next_step},
                "end_state": end, "facts": self.facts,
                "evidence": [{"label": l, "text": t} for l, t in self.evidence],
                "problems": self.problems}

    def render(self):
        status = UNDECIDED if self.status is None else self.status
        lines = ["%s: %s" % (self.name, self.summary)]
        if self.end:
            lines.append("end state   %s" % self.end_text())
            chain = chain_text(self.end.get("backtrace"))
            if chain:
                lines.append("            %s" % chain)
        if self.evidence:
            lines.append("")
            lines.append("Evidence")
            width = min(max(len(l) for l, _ in self.evidence), 28)
            for label, text in self.evidence:
                parts = str(text).split("\n")
                lines.append("  %-*s  %s" % (width, label, parts[0]))
                for p in parts[1:]:
                    lines.append("  %-*s  %s" % (width, "", p))
        for p in self.problems:
            lines.append("! %s" % p)
        lines.append("")
        head = {OK: "VERDICT: no problem: ", PROBLEM: "VERDICT: problem: ",
                UNDECIDED: "VERDICT: undecided: "}[status]
        lines.append(head + (self.cause or "(no cause given)"))
        if self.next_step:
            lines.append("next step: %s" % self.next_step)
        return "\n".join(lines) + "\n"


def _show(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "(unknown)"
    if isinstance(v, (list, tuple)):
        return ", ".join(_show(x) for x in v) or "(none)"
    return str(v)


def chain_text(frames):
    """'f <- g (file:line) <- h' from [{'function', 'source'}]."""
    if not frames:
        return ""
    parts = []
    for f in frames:
        s = f["function"]
        if f.get("source"):
            s += " (%s)" % f["source"]
        parts.append(s)
    return " <- ".join(parts)


def _pc():
    try:
        return gdb.selected_frame().pc() & 0xffffffffffffffff
    except gdb.error:
        return 0


def _cpu():
    """The selected vCPU's index as QEMU counts them (GDB's thread N is CPU N-1)."""
    try:
        if hasattr(core, "cpu_index"):
            return core.cpu_index()
        return gdb.selected_thread().num - 1
    except (gdb.error, AttributeError):
        return None


def _backtrace():
    """[{pc, function, source}] of the selected thread (kbu break assert's unwinder)."""
    from kbu import asserts
    try:
        frames = asserts.backtrace(gdb.newest_frame())
    except (gdb.error, KbuError):
        return []
    out = []
    for i, (pc, sym, src) in enumerate(frames):
        out.append({"pc": pc, "symbol": sym, "function": sym.split("+")[0],
                    "source": src})
    return out


def where_now(prof):
    """The state the guest stands in, without running it."""
    pc = _pc()
    if pc == RESET_VECTOR:
        return {"kind": "reset", "where": None, "pc": pc}
    frames = _backtrace()
    names = [f["function"] for f in frames] or [profile.symbolize(pc).split("+")[0]]
    entries = profile.role_words(prof, "asserts")
    for n in names:
        if n in entries:
            end = {"kind": "panic", "entry": n, "where": n, "cpu": _cpu(),
                   "backtrace": frames, "message": None}
            if frames and frames[0]["function"] == n and frames[0]["symbol"] == n:
                try:
                    from kbu import asserts
                    end["message"] = asserts.decode(prof, n, gdb.newest_frame())[0].rstrip("\n")
                    end["function"] = frames[1]["function"] if len(frames) > 1 else None
                except (gdb.error, KbuError):
                    pass
            return end
        if n in IDLE_FUNCTIONS:
            return {"kind": "idle", "where": n, "cpu": _cpu(), "backtrace": frames}
    return {"kind": "here", "where": names[0], "pc": pc, "cpu": _cpu(), "backtrace": frames}


def continue_for(seconds):
    """Continues the guest until it stops or `seconds` pass (then interrupts it).

    Returns (how, output): how is "stopped", "timeout" or "exited".
    """
    state = {"running": True, "fired": False}
    lock = threading.Lock()

    def interrupt():
        with lock:
            if state["running"]:
                state["fired"] = True
                os.kill(os.getpid(), signal.SIGINT)   # as Ctrl-C: GDB stops the target

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    text = ""
    quiet = _suppress_notifications(True)
    try:
        text = gdb.execute("continue", False, True)
    except KeyboardInterrupt:
        pass
    except gdb.error as e:
        text = str(e)
    finally:
        with lock:
            state["running"] = False
        timer.cancel()
        _suppress_notifications(quiet)
    try:
        alive = gdb.selected_inferior().pid != 0 and gdb.selected_thread() is not None
    except gdb.error:
        alive = False
    if not alive:
        return "exited", text
    # A SIGINT that arrives as the guest stops by itself leaves it stopped: fine.
    return ("timeout" if state["fired"] else "stopped"), text


def _suppress_notifications(on):
    """Sets GDB's suppress-cli-notifications (the stop lines a recipe reports itself);
    returns the previous value (None if this GDB has no such setting)."""
    try:
        old = gdb.parameter("suppress-cli-notifications")
        if on is not None:
            gdb.execute("set suppress-cli-notifications %s" % ("on" if on else "off"),
                        False, True)
        return old
    except gdb.error:
        return None


def continue_until_log(r, pattern, seconds, step=1.0):
    """Lets the guest run in steps until the kernel log matches pattern; True if it did."""
    deadline = time.monotonic() + seconds
    rx = re.compile(pattern)
    while True:
        r.forget_log()
        if rx.search(r.kernel_log()):
            return True
        if time.monotonic() >= deadline:
            return False
        end = dict(r.end or {}, ran_on=True)   # later readers: the guest moved past the stop
        how, _ = continue_for(step)
        memory.bridge.flush()
        session.ctx().flush()
        r.end = end
        _last["end"], _last["at"] = end, _stands_at()
        if how == "exited":
            return False


def hexs(v):
    return "0x%x" % v if isinstance(v, int) else _show(v)


def run_to(r, addr, timeout):
    """Runs the guest until it executes addr (a physical or current-mode address).

    Returns "hit", "timeout", "exited" or "stopped" (stopped elsewhere).
    """
    bp = gdb.Breakpoint("*0x%x" % addr, internal=True)
    try:
        how, _ = continue_for(timeout)
    finally:
        try:
            bp.delete()
        except (RuntimeError, gdb.error):
            pass
    memory.bridge.flush()
    session.ctx().flush()
    r.forget_log()
    if how in ("exited", "timeout"):
        return how
    return "hit" if _pc() == addr or (_pc() & 0xffffffff) == addr else "stopped"


def reg(name):
    """A register of the selected vCPU, or None if the stub does not give it."""
    try:
        return core.read_reg(name)
    except KbuError:
        return None

