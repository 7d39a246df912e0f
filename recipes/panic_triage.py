"""panic-triage: where did the kernel panic, with what message, through which calls."""
from ._common import OK, PROBLEM, UNDECIDED, continue_until_log

NAME = "panic-triage"
LAST = True   # may let the panic run on to read the kernel's own call trace
SUMMARY = "the panic message, the function that raised it and its call chain; what to look at next"

# Known panics of microVM bring-up: (text in the message, cause, next step).
KNOWN = [
    ("TSC not initialized",
     "the TSC frequency was still 0 when the local APIC code needed it",
     "run the tsc-not-initialized recipe: it shows why no CPUID leaf gives the frequency"),
    ("Unknown MP Config Entry",
     "the MP configuration table the kernel walked holds an entry of an unknown type",
     "run the mptable-walk recipe: it walks the firmware's table and the kernel's copy"),
    ("Unable to mount root fs",
     "the kernel found no root file system: no disk and no initramfs were given",
     "give it a root: an initramfs (-initrd FILE), or a disk (-drive file=IMG,if=none,id=d "
     "-device virtio-blk-device,drive=d) with root=/dev/vda on the command line"),
    ("page fault",
     "the kernel touched an address no page table maps",
     "look at the faulting address (CR2, the 'fault virtual address' line) with `kbu vtop` "
     "and the code that made it; device MMIO outside the mapped range is the usual cause"),
]


# Trap and exception entry frames (FreeBSD/NetBSD alltraps/calltrap, Linux exc_*).
TRAP_FRAMES = ("alltraps", "calltrap", "asm_exc_page_fault", "exc_page_fault",
               "asm_exc_general_protection", "exc_general_protection")


def run(r):
    end = r.end_state()
    kind = end["kind"]
    frames = end.get("backtrace") or []
    log_panic = r.log_lines(r"^(Kernel panic - not syncing|panic: |Fatal trap)")
    if kind == "panic":
        msg = end.get("message")
        if not msg and log_panic:
            msg = log_panic[-1].split(": ", 1)[-1]
        r.fact("message", "message", msg)
        r.fact("entry", "stopped at", end.get("entry"))
        r.fact("function", "raised by", end.get("function"))
        chain = [f["function"] for f in frames]
        if len(chain) < 3:
            # No unwind info for this kernel (no DWARF): the kernel prints its own
            # call trace while it panics; let it run until that is in its log.
            trace = kernel_call_trace(r)
            if trace:
                r.note("kernel's call trace", "\n".join(trace))
                names = [t.split("+")[0].strip() for t in trace if not t.startswith("?")]
                entry = end.get("entry")
                if entry in names:   # frames below the entry are its own printing
                    names = names[names.index(entry):]
                chain = _dedup(chain[:1] + names)
        r.fact("call_chain", "call chain", chain, " <- ".join(chain))
        trap = r.log_lines(r"(Fatal trap|fault virtual address|instruction pointer)")
        if trap:
            r.fact("trap", "trap report", trap, "\n".join(trap))
        cause, nxt = None, None
        for text, c, n in KNOWN:
            if msg and text in msg:
                cause, nxt = c, n
                break
        where = end.get("function") or (chain[1] if len(chain) > 1 else end.get("entry"))
        # A panic from a trap handler: the culprit is the frame the trap interrupted.
        traps = [i for i, f in enumerate(chain) if f in TRAP_FRAMES]
        if traps and traps[-1] + 1 < len(chain):
            r.fact("faulting_function", "trapped in", chain[traps[-1] + 1])
            where = "%s (trapped in %s)" % (where, chain[traps[-1] + 1])
        head = 'panic "%s" raised in %s (%s)' % (msg, where, " <- ".join(chain[:6]))
        fault = [l for l in r.facts.get("trap", []) if "fault virtual address" in l]
        if fault:
            head += "; %s" % " ".join(fault[-1].split())
        if cause:
            r.verdict(PROBLEM, "%s: %s" % (head, cause), nxt)
        else:
            src = next((f["source"] for f in frames[1:2] if f.get("source")), None)
            r.verdict(PROBLEM, head, "read the check in %s%s and why its condition failed"
                      % (where, " at " + src if src else ""))
        return
    if kind == "idle":
        r.verdict(OK, "no panic: the kernel reached its idle loop (%s)" % end.get("where"))
        return
    if log_panic:
        r.fact("log", "panic in the log", log_panic, "\n".join(log_panic))
        r.verdict(PROBLEM, "the kernel log says it panicked (%s) but the guest was not stopped "
                  "on the panic entry" % log_panic[-1],
                  "run it again from boot so the panic entry can be caught")
        return
    if kind == "timeout":
        r.verdict(UNDECIDED, "no panic within %g s; the guest was running in %s"
                  % (end.get("seconds"), end.get("where")),
                  "give it longer (--timeout), or use a recipe about what it waits for "
                  "(timecounter-stuck, where-are-my-cpus)")
        return
    r.verdict(UNDECIDED, "the guest is not at a panic (%s)" % r.end_text(),
              "run without --here so the recipe boots it to its end state")


def kernel_call_trace(r, seconds=15):
    """The 'Call Trace:' lines the kernel logs for its panic (Linux prints them)."""
    if not continue_until_log(r, r"Call Trace:[\s\S]*(</TASK>|end Kernel panic|---\[ end)",
                              seconds):
        return []
    lines, inside = [], False
    for line in r.kernel_log().splitlines():
        text = line.split("] ", 1)[-1].strip() if line.startswith("[") else line.strip()
        if text.startswith("Call Trace:"):
            inside, lines = True, []
            continue
        if inside:
            if text.startswith("</TASK>") or text.startswith("---[") or text.startswith("Kernel Offset"):
                break
            if text and not text.startswith("<"):
                lines.append(text)
    return lines


def _dedup(seq):
    out = []
    for x in seq:
        if x and (not out or out[-1] != x):
            out.append(x)
    return out
