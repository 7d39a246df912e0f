"""tsc-not-initialized: why does the kernel have no TSC frequency?

Runs CPUID on the stopped vCPU (kbu cpuid's injection) and lets libkbu's
cpuid-decode --tsc walk the chain a kernel follows (hypervisor leaf
0x40000010, then leaves 0x15/0x16); reads the kernel's own TSC frequency;
for a kernel that calibrates instead (Linux), quotes its "tsc:" lines.
"""
from kbu import cpuid
from kbu.core import KbuError

from ._common import OK, PROBLEM, UNDECIDED, hexs

NAME = "tsc-not-initialized"
SUMMARY = "why the TSC frequency is 0: the CPUID leaves a kernel reads, calibration, the assertion"

# The kernel variable holding the TSC frequency: (symbol, size, unit in Hz).
TSC_VARS = (("tsc_freq", 8, 1), ("tsc_khz", 4, 1000))

NEXT_CPUID = ("give the VM a CPUID frequency leaf: under KVM `-cpu host,+invtsc,tsc-frequency=HZ` "
              "(QEMU then publishes leaf 0x40000010 with the TSC kHz); TCG has none, so "
              "otherwise calibrate the TSC against the i8254 before the first user of tsc_freq")


def run(r):
    end = r.end_state()
    freq = None
    for sym, size, unit in TSC_VARS:
        try:
            v = r.read_var(sym, size)
        except KbuError:
            v = None
        if v is not None:
            freq = v * unit
            r.fact("tsc_var", None, sym)
            r.fact("tsc_hz", "kernel's %s" % sym, freq,
                   "%d (%s)" % (v, "not set" if v == 0 else "%.3f MHz" % (freq / 1e6)))
            break
    chain = cpuid_chain(r)
    tsc_lines = r.log_lines(r"^(tsc|TSC)[: ]|clocksource.*tsc|TSC not initialized")
    if tsc_lines:
        r.fact("log", "kernel log", tsc_lines, "\n".join(tsc_lines))
    msg = end.get("message") or ""
    panicked = end["kind"] == "panic"
    if panicked:
        r.fact("panic", "panic", msg)
    no_cpuid = chain is not None and chain.get("tsc_hz") is None
    why = chain_reason(chain) if chain is not None else "CPUID could not be run"

    if "TSC not initialized" in msg or (freq == 0 and panicked and "TSC" in msg):
        r.verdict(PROBLEM, "%s asserted that the TSC frequency is known (\"%s\") before anything "
                  "set it: %s, and nothing calibrated the TSC first"
                  % (end.get("function") or end.get("where"), msg, why), NEXT_CPUID)
        return
    if r.os_name() == "linux" or (freq is not None and tsc_lines and
                                  any(l.startswith("tsc:") for l in tsc_lines)):
        linux_verdict(r, freq, tsc_lines, why, no_cpuid)
        return
    if freq:
        how = "from CPUID" if not no_cpuid else "not from CPUID (%s): the kernel calibrated it" % why
        r.verdict(OK, "the TSC frequency is set: %.3f MHz, %s" % (freq / 1e6, how))
        return
    if freq == 0:
        r.verdict(PROBLEM, "the kernel's TSC frequency is 0: %s" % why, NEXT_CPUID)
        return
    r.verdict(UNDECIDED, "this kernel has none of %s, so its TSC frequency cannot be read; %s"
              % (", ".join(s for s, _, _ in TSC_VARS), why),
              "name the kernel's TSC frequency variable and re-run")


def cpuid_chain(r):
    """libkbu's --tsc walk over the leaves run on the stopped vCPU, or None."""
    try:
        values = cpuid.run_leaves(cpuid.TSC_LEAVES)
        res = r.kbu_json(cpuid.decode_argv(values, tsc=True))
    except KbuError as e:
        r.fact("cpuid", "CPUID", None, "not run: %s" % e)
        return None
    leaves = res.get("leaves", {})
    max_leaf = leaves.get("0x0.0", {}).get("max_leaf")
    hv_max = leaves.get("0x40000000.0", {}).get("hv_max_leaf")
    r.fact("cpu_high", "cpu_high (leaf 0 EAX)", max_leaf, hexs(max_leaf) +
           ("  (leaves 0x15/0x16 exist)" if (max_leaf or 0) >= 0x15 else "  (below 0x15: no leaf 0x15/0x16)"))
    r.fact("hv_high", "hv_high (0x40000000 EAX)", hv_max, (hexs(hv_max) if hv_max else "none") +
           ("  (leaf 0x40000010 exists)" if (hv_max or 0) >= 0x40000010 else
            "  (stops below 0x40000010: no TSC leaf)"))
    sig = leaves.get("0x40000000.0", {}).get("hv_signature")
    if sig:
        r.fact("hypervisor", "hypervisor", sig)
    tsc = res.get("tsc", {})
    steps = tsc.get("steps", [])
    r.fact("cpuid_steps", "CPUID chain", steps,
           "\n".join("%d. %s %s -> %s" % (s["step"], s["check"], s["answer"], s["result"])
                     for s in steps))
    r.fact("cpuid_tsc_hz", "CPUID TSC frequency", tsc.get("tsc_hz"),
           "%d Hz" % tsc["tsc_hz"] if tsc.get("tsc_hz") else "none")
    return {"tsc_hz": tsc.get("tsc_hz"), "cpu_high": max_leaf, "hv_high": hv_max, "steps": steps}


def chain_reason(chain):
    if chain.get("tsc_hz"):
        return "CPUID gives %d Hz" % chain["tsc_hz"]
    parts = []
    hv = chain.get("hv_high")
    if hv is not None and hv < 0x40000010:
        parts.append("the hypervisor leaves stop at 0x%x so the 0x40000010 TSC leaf is absent" % hv)
    elif hv is None:
        parts.append("there are no hypervisor leaves")
    ch = chain.get("cpu_high")
    if ch is not None and ch < 0x15:
        parts.append("cpu_high 0x%x is below 0x15 (no leaves 0x15/0x16)" % ch)
    elif ch is not None:
        parts.append("leaves 0x15/0x16 give no frequency")
    return ", and ".join(parts) + ": no CPUID path gives a frequency"


def linux_verdict(r, freq, lines, why, no_cpuid):
    failed = [l for l in lines if any(w in l for w in ("failed", "Unable", "unstable", "No reference"))]
    detected = [l for l in lines if "Detected" in l or "Refined TSC" in l]
    if freq == 0 or (failed and not detected):
        r.verdict(PROBLEM, "Linux calibrates the TSC itself (%s) and failed: %s; tsc_khz = %s"
                  % (why, "; ".join('"%s"' % l for l in failed) or "no 'tsc: Detected' line",
                     freq // 1000 if freq is not None else "unknown"),
                  "give the frequency on the command line (tsc_early_khz=KHZ), or run under KVM "
                  "with `-cpu host,+invtsc,tsc-frequency=HZ` so leaf 0x40000010 carries it")
        return
    src = "; ".join('"%s"' % l for l in detected) or "tsc_khz is set"
    given = [l for l in r.log_lines(r"^Command line: ") if "tsc_early_khz=" in l]
    how = "given on the command line (tsc_early_khz=)" if given else "calibrated"
    unstable = [l for l in lines if "unstable" in l]
    r.verdict(OK, "Linux has a TSC frequency, %s: %s (%.3f MHz)%s%s"
              % (how, src, (freq or 0) / 1e6,
                 "; CPUID gives none (%s)" % why if no_cpuid else "",
                 '; note: it later logged "%s", so the TSC is not its clocksource' % unstable[-1]
                 if unstable else ""))
