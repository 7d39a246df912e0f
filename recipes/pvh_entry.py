"""pvh-entry: what the kernel is handed at its PVH entry point.

From the reset vector, runs the guest to the first instruction of the kernel
(the Xen note PHYS32_ENTRY, which libkbu reads from the ELF) and records RIP,
EBX and CR0 there; libkbu decodes the hvm_start_info EBX points at (or finds
it through the kernel's saved pointer when the guest is past its entry) and
checks what the PVH boot protocol promises.
"""
from kbu import runtime
from kbu.core import KbuError

NAME = "pvh-entry"


def gather(r):
    try:
        entry = r.kbu_json(["notes"]).get("pvh_entry")
    except KbuError:
        entry = None
    facts = r.live.setdefault("entry", {})
    now = runtime.where_now(r.profile())
    at_entry = False
    if entry is not None and now["kind"] == "reset" and not r.here:
        how = runtime.run_to(entry, r.timeout)
        facts["reached"] = how
        if how != "hit":
            r.live["end"] = {"kind": how, "where": None}
            return
        at_entry = True
    elif entry is not None and (runtime.reg("rip") or 0) & 0xffffffff == entry:
        at_entry = True
    facts["at_entry"] = at_entry
    if at_entry:
        r.live["end"] = {"kind": "entry", "where": "PVH entry 0x%x" % entry,
                         "pc": runtime.reg("rip")}
        for name in ("rip", "rbx", "cr0"):
            v = runtime.reg(name)
            if v is not None:
                facts["ebx" if name == "rbx" else name] = v
    else:
        r.live["end"] = dict(now, kind="here") if now["kind"] not in ("panic", "idle") else now
