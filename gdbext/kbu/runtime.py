"""The recipe runtime: drives the guest for a recipe and hands what it saw to libkbu.

A recipe (recipes/NAME.py) only drives the guest: it runs it to an end state
(a panic or assertion entry, the idle loop, or a timeout), arms watches, runs
CPUID on the vCPU, stops at the PVH entry. Everything it sees goes into
`r.live`, and libkbu's `kbu verdict NAME --live JSON` judges it together with
what it reads in memory itself: the rules exist once, in C, for recipes and
for `kbu triage` alike.

Exit status of a recipe (also `$kbu_recipe_status` in GDB and the exit code
of scripts/kbu-triage):
  0  no problem found
  1  a problem was found (the verdict names it)
  2  the recipe could not run or could not decide ("undecided: ...")
"""
import json
import os
import re
import signal
import threading
import time

import gdb

from . import core, memory, profile, session
from .core import KbuError

OK, PROBLEM, UNDECIDED = 0, 1, 2
RESET_VECTOR = 0xfff0

# The last end state reached in this GDB session, so a second recipe on the
# same stop need not run the guest again. It holds while the vCPU stands where
# it stopped (CPUID injection single-steps but puts RIP back, so "the guest
# resumed" is not the test).
_last = {"end": None, "watches": {}, "at": None}


def _resumed(*unused):
    _last["end"] = None


gdb.events.exited.connect(_resumed)


def release_watches():
    """Disarms the watches recipes armed and no recipe took (end of `kbu recipe`)."""
    from . import watch as watchmod
    for kind, w in list(_last["watches"].items()):
        if watchmod.watches.active.get(kind) is w:
            watchmod.watches.active.pop(kind, None)
            w.disarm()
    _last["watches"] = {}


def questions():
    """{name: summary} of the questions libkbu answers."""
    res = session.bare().run_json(["verdict", "--list"])
    return {q["name"]: q["summary"] for q in res.get("questions", [])}


def _stands_at():
    return (_cpu(), _pc())


class Run:
    """One run of a recipe: its options, the live facts it gathered, and the verdict."""

    def __init__(self, name, timeout=20.0, here=False, console=None, also_watch=()):
        self.name = name
        self.timeout = timeout
        self.here = here
        self.console_path = console
        self.also_watch = tuple(also_watch)   # watches other recipes of this run want
        self.watches = {}
        self.live = {}
        self.end = None
        self._prof = None
        self._log = None
        self.result = None                    # libkbu's verdict (JSON)
        self.text = None

    # -- the guest and the kernel ---------------------------------------------
    def profile(self):
        if self._prof is None:
            self._prof = profile.get()
        return self._prof

    def kbu_json(self, argv):
        """A libkbu command's report as a dict (memory through GDB, fresh reads)."""
        c = session.ctx()
        c.flush()
        return c.run_json(argv)

    def kernel_log(self):
        """The kernel's message buffer (kbu dmesg), else the console log, else ''."""
        if self._log is None:
            self._log = ""
            try:
                self._log = self.kbu_json(["dmesg"] + profile.profile_args()).get("text") or ""
            except KbuError:
                pass
            if not self._log and self.console_path:
                try:
                    with open(self.console_path, errors="replace") as f:
                        self._log = f.read()
                except OSError:
                    pass
        return self._log

    def forget_log(self):
        self._log = None

    # -- driving the guest ------------------------------------------------------
    def end_state(self, watch=(), timeout=None):
        """Runs the guest to an end state and returns it (also self.end and live["end"]).

        An end state is a stop on one of the profile's assertion/panic entries
        (its message decoded by `kbu break assert`), the idle loop, or the
        timeout. If the guest is already in one (or --here) nothing runs.
        watch: kinds for `kbu watch` armed before the guest runs; what they saw
        goes into live["watch"].
        """
        core.need_live("kbu recipe")
        core.need_kernel("kbu recipe")
        if not (self.profile().get("identification") or {}).get("symbols", 1):
            # The OS may be known from the ELF's notes, but entries and variables are not.
            raise KbuError("the kernel has no symbols, so its panic entries and variables "
                           "cannot be found")
        if self.end is None:
            if _last["end"] is not None and _last["at"] == _stands_at():
                self.end = dict(_last["end"], reused=True)
                self.watches = {k: w for k, w in _last["watches"].items() if k in watch}
            else:
                here = where_now(self.profile())
                if self.here or here["kind"] in ("panic", "idle"):
                    self.end = here
                else:
                    kinds = list(watch) + [k for k in self.also_watch if k not in watch]
                    self.end = self._run(kinds, self.timeout if timeout is None else timeout)
                    _last["end"] = self.end
                    _last["at"] = _stands_at()
                    _last["watches"] = dict(self.watches)
                    self.watches = {k: w for k, w in self.watches.items() if k in watch}
        self.live["end"] = self.end
        for kind in watch:
            self._watch_facts(kind)
        return self.end

    def _run(self, watch, timeout):
        from . import asserts
        own_asserts = not asserts.breaks.bps
        if own_asserts:
            try:
                gdb.execute("kbu break assert", False, True)
            except gdb.error:
                pass
        for kind in watch:
            try:
                gdb.execute("kbu watch %s" % kind, False, True)
                from . import watch as watchmod
                self.watches[kind] = watchmod.watches.active.get(kind)
            except gdb.error as e:
                self.live.setdefault("watch_errors", {})[kind] = str(e)
        idle = []
        for name in profile.role_words(self.profile(), "idle"):
            a = profile.lookup(name)
            if a is not None:
                a = profile.runtime(a)   # where the kernel runs (KASLR slide applied)
                idle.append((a, name, gdb.Breakpoint("*0x%x" % a, internal=True)))
        asserts.breaks.last = None
        try:
            how, _ = continue_for(timeout)
        finally:
            for _, _, bp in idle:
                try:
                    bp.delete()
                except (RuntimeError, gdb.error):
                    pass
            last = asserts.breaks.last
            if own_asserts:
                asserts.breaks.disarm()
        memory.bridge.flush()
        session.ctx().flush()
        self.forget_log()
        if how == "exited":
            return {"kind": "exited", "where": None}
        pc = _pc()
        if last is not None:
            return {"kind": "panic", "entry": last["entry"], "message": last["message"],
                    "function": last["caller"], "cpu": _cpu(), "where": last["entry"],
                    "backtrace": _backtrace()}
        for a, name, _ in idle:
            if pc == a:
                return {"kind": "idle", "where": name, "cpu": _cpu(), "backtrace": _backtrace()}
        kind = "timeout" if how == "timeout" else "stopped"
        end = {"kind": kind, "where": profile.symbolize(pc), "pc": pc, "cpu": _cpu(),
               "backtrace": _backtrace()}
        if kind == "timeout":
            end["seconds"] = timeout
        return end

    def _watch_facts(self, kind):
        """What `kbu watch KIND` saw from boot, or the variable now when nothing watched it."""
        from . import watch as watchmod
        w = self.watches.get(kind)
        facts = {"watched": w is not None}
        if w is None:
            try:
                w = watchmod.Watch(kind, self.profile())   # read only: no watch from boot
            except KbuError as e:
                facts["error"] = str(e)
                self.live.setdefault("watch", {})[_WATCH_KEY[kind]] = facts
                return
        try:
            raw = w.read_raw()
            now = w.render(raw)
            facts.update(symbol=w.symbol, now_text=now)
            if kind == "timecounter":
                facts["now"] = w.source_name(raw)
                facts["register_entry"] = (w.register_entries[0] if w.register_entries
                                           else "the registration entry")
                regs = registrations(w, facts["watched"])
                facts["registered"] = regs
            if facts["watched"]:
                facts["start_text"] = w.log[0][1] if w.log else now
                facts["changes"] = [{"cpu": c, "old": o, "new": n, "where": wh}
                                    for c, o, n, wh in w.log]
                facts["summary"] = w.sentence()
        finally:
            if facts["watched"]:
                watchmod.watches.active.pop(kind, None)
                w.disarm()
        self.live.setdefault("watch", {})[_WATCH_KEY[kind]] = facts

    def cpuid(self, pairs):
        """Runs CPUID leaves on the stopped vCPU into live["cpuid"] (or live["cpuid_error"])."""
        from . import cpuid
        try:
            values = cpuid.run_leaves(pairs)
        except KbuError as e:
            self.live["cpuid_error"] = str(e)
            return None
        self.live.setdefault("cpuid", {}).update(
            {"0x%x.%d" % key: list(regs) for key, regs in values.items()})
        return values

    # -- the verdict --------------------------------------------------------------
    def ask(self, as_json):
        """libkbu's verdict on this run's live facts: (status, text or dict)."""
        self.live.setdefault("vcpus", _vcpus())
        sl = profile.slide()
        if sl:
            self.live["slide"] = sl
        if self.console_path and "log" not in self.live:
            try:
                with open(self.console_path, errors="replace") as f:
                    self.live["log"] = f.read()
            except OSError:
                pass
        argv = ["verdict", self.name, "--live", json.dumps(self.live)] + profile.profile_args()
        if self.here:
            argv.append("--here")
        c = session.ctx()
        c.flush()
        self.result = c.run_json(argv)
        if not as_json:
            _, self.text = c.run(argv)
        return self.result["status"]


# `kbu watch` kinds and the names libkbu's verdict gives them.
_WATCH_KEY = {"timecounter": "timesource", "x2apic": "x2apic"}


def registrations(w, watched):
    """Names of the time sources registered while the guest ran (all listed now when
    it was not watched from boot), or None if the profile gives no way to know."""
    if not profile.role(w.prof, "timesource_list"):
        return None
    before = getattr(w, "listed_at_arm", []) if watched else []
    new = [p for p in w.registered_sources() if p not in before]
    return [w.source_name(p) or "0x%x" % p for p in reversed(new)]


def undecided(name, why):
    """A verdict for a recipe that could not run: what libkbu would print, built here."""
    return {"recipe": name, "status": UNDECIDED, "os": None,
            "verdict": {"result": "undecided", "cause": "could not run: %s" % why,
                        "next": None, "code": "recipe.could_not_run"},
            "end_state": None, "facts": {}, "evidence": [], "problems": []}


def undecided_text(name, summary, why):
    return "%s: %s\n\nVERDICT: undecided: could not run: %s\n" % (name, summary, why)


def _pc():
    try:
        return gdb.selected_frame().pc() & 0xffffffffffffffff
    except gdb.error:
        return 0


def _cpu():
    """The selected vCPU's index as QEMU counts them (GDB's thread N is CPU N-1)."""
    try:
        return core.cpu_index()
    except (gdb.error, AttributeError):
        return None


def _vcpus():
    try:
        return len(gdb.selected_inferior().threads())
    except gdb.error:
        return 1


def _backtrace():
    """[{pc, symbol, function, source}] of the selected thread (kbu break assert's unwinder)."""
    from . import asserts
    try:
        frames = asserts.backtrace(gdb.newest_frame())
    except (gdb.error, KbuError):
        return []
    return [{"pc": pc, "symbol": sym, "function": sym.split(" (inlined")[0].split("+")[0],
             "source": src} for pc, sym, src in frames]


def where_now(prof):
    """The state the guest stands in, without running it."""
    pc = _pc()
    if pc == RESET_VECTOR:
        return {"kind": "reset", "where": None, "pc": pc}
    frames = _backtrace()
    names = [f["function"] for f in frames] or [profile.symbolize(pc).split("+")[0]]
    entries = profile.role_words(prof, "asserts")
    idle = profile.role_words(prof, "idle")
    for n in names:
        if n in entries:
            end = {"kind": "panic", "entry": n, "where": n, "cpu": _cpu(),
                   "backtrace": frames, "message": None}
            if frames and frames[0]["function"] == n and frames[0]["symbol"] == n:
                try:
                    from . import asserts
                    end["message"] = asserts.decode(prof, n, gdb.newest_frame())[0].rstrip("\n")
                    end["function"] = frames[1]["function"] if len(frames) > 1 else None
                except (gdb.error, KbuError):
                    pass
            return end
        if n in idle:
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
    """Lets the guest run in steps until the kernel log matches pattern; True if it did.

    The kernel's own text decides when to stop driving (a call trace it prints
    while it panics): kbu's rules never see this pattern."""
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
        r.live["end"] = end
        _last["end"], _last["at"] = end, _stands_at()
        if how == "exited":
            return False


def run_to(addr, timeout):
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
    if how in ("exited", "timeout"):
        return how
    return "hit" if _pc() == addr or (_pc() & 0xffffffff) == addr else "stopped"


def reg(name):
    """A register of the selected vCPU, or None if the stub does not give it."""
    try:
        return core.read_reg(name)
    except KbuError:
        return None
