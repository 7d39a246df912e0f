"""panic-triage: where did the kernel panic, with what message, through which calls.

Runs to the end state (the profile's panic entries are breakpoints). Without
unwind information for the kernel (no DWARF) the call chain is short: the
guest is then let run on until the kernel has printed its own call trace,
which libkbu reads with the rest.
"""
from kbu import runtime

NAME = "panic-triage"
LAST = True   # may let the panic run on to read the kernel's own call trace


def gather(r):
    end = r.end_state()
    if end.get("kind") == "panic" and len(end.get("backtrace") or []) < 3:
        trace = kernel_call_trace(r)
        if trace:
            r.live["kernel_trace"] = trace


def kernel_call_trace(r, seconds=15):
    """The 'Call Trace:' lines the kernel logs for its panic (Linux prints them)."""
    if not runtime.continue_until_log(r, r"Call Trace:[\s\S]*(</TASK>|end Kernel panic|---\[ end)",
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
