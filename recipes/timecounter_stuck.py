"""timecounter-stuck: does the kernel's clock ever leave its placeholder?

Arms `kbu watch timecounter` from the first instruction (the profile's active
time source: FreeBSD/NetBSD timecounter, Linux curr_clocksource, and calls of
its registration entry), runs the guest to its end state and reads the log.
"""
from kbu import profile
from kbu.core import KbuError

from ._common import OK, PROBLEM, UNDECIDED

NAME = "timecounter-stuck"
WATCH = ("timecounter",)   # armed from the first instruction, before the guest runs
SUMMARY = "the active time source from boot to the end: stuck on a dummy, never registered, or fine"

# Names of the placeholder time sources kernels start on.
PLACEHOLDERS = ("dummy", "jiffies", "refined-jiffies")


def run(r):
    end = r.end_state(watch=WATCH)
    w = r.watches.get("timecounter")
    try:
        from kbu import watch as watchmod
    except ImportError as e:
        r.verdict(UNDECIDED, "could not run: kbu watch is not available (%s)" % e)
        return
    if w is None:
        try:
            w = watchmod.Watch("timecounter", r.profile())   # read only: no watch from boot
        except KbuError as e:
            r.verdict(UNDECIDED, "could not read the time source: %s" % e)
            return
        r.note("watched", "no: the guest had already stopped; only its state now is known")
        watched = False
    else:
        watched = True
    try:
        now = w.render(w.read_raw())
        name = w.source_name(w.read_raw())
        r.fact("variable", "variable", w.symbol)
        r.fact("now", "%s now" % w.symbol, name, now)
        # Read at the first instruction (paging off) the name may be unreadable;
        # the value before the first change, or the value now, is the start.
        start = w.log[0][1] if watched and w.log else now
        if watched:
            r.fact("at_start", "at the start", w.short(start), start)
            r.fact("changes", "changes", [{"cpu": c, "old": o, "new": n, "where": wh}
                                          for c, o, n, wh in w.log],
                   "\n".join("%s -> %s on CPU %s at %s" % (o, n, c, wh)
                             for c, o, n, wh in w.log) or "none")
        regs = registrations(w, watched)
        entry = w.register_entries[0] if w.register_entries else "the registration entry"
        if regs is not None:
            r.fact("registered", "registered" if watched else "registered now", regs,
                   ", ".join(regs) or "none (%s never called)" % entry)
        if watched:
            r.fact("summary", None, w.sentence())   # kbu watch report's sentence
    finally:
        if watched:
            watchmod.watches.active.pop("timecounter", None)
            w.disarm()
    lines = r.log_lines(r"(?i)(timecounter|clocksource|calibration failed|clocks might be)")
    if lines:
        r.fact("log", "kernel log", lines, "\n".join(lines[-8:]))
    stuck = name in PLACEHOLDERS or name is None
    failed = [l for l in lines if "ailed" in l]
    if r.os_name() == "linux":
        switched = [l for l in lines if "Switched to clocksource" in l]
        if name in ("jiffies", "refined-jiffies") or name is None:
            r.verdict(PROBLEM, "Linux's clocksource is %s: no hardware clocksource (tsc, hpet, "
                      "acpi_pm) was usable%s" % (name, "; it logged " + "; ".join(
                          '"%s"' % l for l in switched) if switched else ""),
                      "give the TSC a frequency (tsc_early_khz=KHZ, or a CPUID leaf under KVM) "
                      "or turn on a timer device (-M microvm,acpi=on for the ACPI PM timer/HPET)")
        else:
            r.verdict(OK, "Linux's clocksource is %s%s" % (name, " (%s)" % switched[-1]
                                                           if switched else ""))
        return
    if not stuck:
        r.verdict(OK, "the time source is %s%s" % (
            now, "; it changed %s" % " -> ".join([w.short(start)] + [w.short(n) for _, _, n, _
                                                                  in w.log]) if watched and w.log else ""))
        return
    if not watched:
        r.verdict(PROBLEM, "%s is still %s (not watched from boot, so whether the registration "
                  "entry was called is not known)" % (w.symbol, name or now),
                  "re-run from boot so kbu watch sees every change")
        return
    # Stopped by the timeout, the boot may not be over: say how long it ran.
    when = (" in %g s (then still running, in %s)" % (end.get("seconds"), end.get("where"))
            if end.get("kind") == "timeout" else "")
    if regs is None:
        r.verdict(PROBLEM, "%s never left %s%s; whether a time source was registered is not "
                  "known (the %s profile names no registration list)"
                  % (w.symbol, w.short(start), when, r.os_name()),
                  "break on %s to see whether a timer driver registers its counter" % entry)
        return
    if not regs:
        reg = entry
        r.verdict(PROBLEM, "%s never left %s%s: %s was never called, so no real time source "
                  "was ever registered%s" % (w.symbol, w.short(start), when, reg,
                                             "; the kernel logs: \"%s\"" % failed[-1]
                                             if failed else ""),
                  "make the timer driver register its counter (call %s from its attach/init; "
                  "on microvm the i8254 is there), and break on %s to see it happen" % (reg, reg))
        return
    r.verdict(PROBLEM, "%s never left %s although %s registered %s: none was selected (its "
              "quality must beat the placeholder's)" % (w.symbol, w.short(start), entry,
                                                      ", ".join(regs)),
              "check the registered counters' quality and the selection code")


def registrations(w, watched):
    """Names of the time sources registered while the guest ran (all listed now when
    it was not watched from boot), or None if the profile gives no way to know."""
    if hasattr(w, "registered_sources"):
        if not profile.role(w.prof, "timesource_list"):
            return None
        before = getattr(w, "listed_at_arm", []) if watched else []
        new = [p for p in w.registered_sources() if p not in before]
        return [w.source_name(p) or "0x%x" % p for p in reversed(new)]
    if hasattr(w, "registered_calls"):
        return [n for _, n in w.registered_calls]
    return None
