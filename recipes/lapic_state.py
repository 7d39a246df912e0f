"""lapic-state: what state is each local APIC in when the kernel stops?

libkbu's lapic report per CPU (QEMU's `info lapic`, the trustworthy source
under TCG), with CPUID leaf 1 run on the vCPU so the mode is known; the
recipe reads the enable bit, the timer and the error status from it.
"""
from kbu import cpuid, memory
from kbu.core import KbuError

from ._common import OK, PROBLEM, UNDECIDED

NAME = "lapic-state"
SUMMARY = "each local APIC at the end state: enabled?, mode, timer (mode, vector, mask, count), errors"


def _regs(lap):
    return {x["name"]: x for x in lap.get("lapic", {}).get("registers", [])}


def run(r):
    end = r.end_state()
    argv_cpuid = []
    try:
        eax, ebx, ecx, edx = cpuid.run_leaves([(1, 0)])[(1, 0)]
        argv_cpuid = ["--cpuid1", "0x%x,0x%x,0x%x,0x%x" % (eax, ebx, ecx, edx)]
    except KbuError as e:
        r.note("CPUID.1", "not run: %s" % e)
    try:
        import gdb
        ncpus = len(gdb.selected_inferior().threads())
    except Exception:
        ncpus = 1
    findings, states, seen = [], [], set()
    # A panic let run on (panic-triage reading the kernel's call trace) has been
    # through the kernel's own shutdown of the APIC: say so rather than blame boot.
    ran_on = ("read after the panic was let run on, and a panicking kernel disables its "
              "local APIC (run lapic-state before panic-triage, or on its own)"
              if end.get("ran_on") else None)
    for cpu in range(max(1, ncpus)):
        try:
            lap = r.kbu_json(["lapic", str(cpu)] + argv_cpuid)
        except KbuError as e:
            r.note("CPU %d" % cpu, "not read: %s" % e)
            continue
        regs = _regs(lap)
        svr = regs.get("SVR", {})
        timer = regs.get("LVT timer", {})
        esr = regs.get("ESR", {})
        init = regs.get("Initial count", {}).get("value")
        cur = regs.get("Current count", {}).get("value")
        dcr = regs.get("DCR", {}).get("decoded")
        mode = lap.get("mode", {}).get("mode")
        enabled = bool(svr.get("value", 0) & 0x100) if svr.get("value") is not None else None
        masked = bool(timer.get("value", 0) & 0x10000) if timer.get("value") is not None else None
        st = {"cpu": cpu, "mode": mode, "enabled": enabled, "svr": svr.get("value"),
              "timer": timer.get("decoded"), "timer_masked": masked, "initial_count": init,
              "current_count": cur, "divide": dcr, "esr": esr.get("decoded")}
        states.append(st)
        r.note("CPU %d" % cpu, "%s; SVR 0x%x: %s" % (
            mode or "mode unknown", svr.get("value") or 0, svr.get("decoded")))
        r.note("  timer", "%s; initial count %s, current %s, %s" % (
            timer.get("decoded"), init, cur, dcr))
        if esr.get("value"):
            r.note("  ESR", esr.get("decoded"))
        for p in lap.get("problems", []):
            # The kernel's own flags are global: report them once, not per CPU.
            if p.get("severity") != "note" and p["message"] not in seen:
                seen.add(p["message"])
                r.problem(p["message"] if p.get("path") == "mode" else
                          "CPU %d: %s" % (cpu, p["message"]))
                findings.append(p["message"])
        if cpu == 0 and enabled is False:
            findings.insert(0, "the boot CPU's local APIC is software-disabled (SVR 0x%x, bit 8 "
                            "clear): %s" % (svr.get("value") or 0, ran_on or
                                            "the kernel has not enabled it"))
        if cpu == 0 and masked and not init and not ran_on:
            findings.append("the boot CPU's APIC timer is not running (LVT masked, initial "
                            "count 0): the kernel has not set it up, or has shut it down")
        if cpu > 0 and enabled is False:
            r.note("", "(CPU %d is as after reset: an AP the kernel has not started)" % cpu)
        if esr.get("value"):
            findings.append("CPU %d has APIC errors: %s" % (cpu, esr.get("decoded")))
    r.fact("cpus", None, states)
    lines = r.log_lines(r"(?i)(\bx?apic\b|lapic)")
    if lines:
        r.fact("log", "kernel log", lines, "\n".join(lines[-8:]))
    memory.bridge.flush()
    if not states:
        r.verdict(UNDECIDED, "no local APIC could be read (needs QEMU's monitor through the stub)")
        return
    bsp = states[0]
    if ran_on and bsp["enabled"] is False:
        r.verdict(UNDECIDED, "the boot CPU's local APIC is software-disabled, but it was read "
                  "after the panic was let run on, and a panicking kernel disables its local "
                  "APIC itself%s" % ("; also: " + "; ".join(findings[1:3]) if len(findings) > 1
                                     else ""),
                  "run lapic-state on its own, or before panic-triage, to read it at the panic")
        return
    if findings:
        where = ""
        if end.get("kind") == "panic":
            where = ' (the kernel stopped in a panic in %s: "%s")' % (
                end.get("function") or end.get("where"), end.get("message"))
        r.verdict(PROBLEM, findings[0] + where + ("; also: " + "; ".join(findings[1:3])
                                                  if len(findings) > 1 else ""),
                  "see `kbu lapic` for every register and the kernel log lines above; "
                  "kbu recipe x2apic-mode for the mode, panic-triage for the panic")
        return
    timer = "timer %s" % ("masked" if bsp["timer_masked"] else bsp["timer"])
    if not bsp["timer_masked"] and bsp["initial_count"]:
        timer += ", counting (%s of %s)" % (bsp["current_count"], bsp["initial_count"])
    r.verdict(OK, "the boot CPU's local APIC is software-enabled in %s mode, %s%s" % (
        bsp["mode"] or "an unknown", timer,
        "; %d other CPU(s) read" % (len(states) - 1) if len(states) > 1 else ""))
