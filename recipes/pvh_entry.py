"""pvh-entry: what the kernel is handed at its PVH entry point.

Stops the guest on the first instruction of the kernel (the Xen note
PHYS32_ENTRY, from `kbu notes`), checks the machine state the PVH boot
protocol promises (32-bit protected mode, paging off, EBX = start info) and
decodes the hvm_start_info with `kbu pvh`: command line, memory map, modules.
"""
from kbu.core import KbuError

from ._common import OK, PROBLEM, UNDECIDED, hexs, reg, run_to, where_now

NAME = "pvh-entry"
SUMMARY = "the start info and command line the kernel gets at its PVH entry point"

HVM_START_MAGIC = 0x336ec578


def run(r):
    try:
        notes = r.kbu_json(["notes"])
    except KbuError as e:
        r.verdict(UNDECIDED, "cannot read the kernel's notes: %s" % e)
        return
    entry = None
    for n in notes.get("notes", []):
        if n.get("name") == "PHYS32_ENTRY":
            entry = n.get("number")
    if entry is None:
        r.verdict(PROBLEM, "the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note: QEMU cannot boot it "
                  "through PVH", "add the note (type 18) with the 32-bit physical entry address")
        return
    r.fact("phys32_entry", "PHYS32_ENTRY note", entry, hexs(entry))
    at_entry = False
    now = where_now(r.profile())
    if now["kind"] == "reset" and not r.here:
        how = run_to(r, entry, r.timeout)
        if how != "hit":
            r.end = {"kind": how, "where": None}
            r.verdict(PROBLEM, "the guest never reached the PVH entry 0x%x (%s)" % (entry, how),
                      "check that QEMU boots the ELF through PVH (-kernel with the note, "
                      "-M microvm) and not as a multiboot or Linux image")
            return
        at_entry = True
    elif (reg("rip") or 0) & 0xffffffff == entry:
        at_entry = True
    rip, rbx, cr0 = reg("rip"), reg("rbx"), reg("cr0")
    if at_entry:
        r.end = {"kind": "entry", "where": "PVH entry 0x%x" % entry, "pc": rip}
        r.fact("rip", "RIP", rip, hexs(rip))
        r.fact("ebx", "EBX", rbx & 0xffffffff if rbx is not None else None,
               hexs(rbx & 0xffffffff) + "  (the start info, by the PVH protocol)"
               if rbx is not None else None)
        if cr0 is not None:
            r.fact("cr0", "CR0", cr0, "%s  (PE=%d PG=%d)" % (hexs(cr0), cr0 & 1, cr0 >> 31 & 1))
    else:
        r.end = dict(now, kind="here") if now["kind"] not in ("panic", "idle") else now
        r.note("entry", "the guest is past its entry: the start info is found through the "
               "kernel's saved pointer or by its magic")
    try:
        pvh = r.kbu_json(["pvh"] + (["0x%x" % (rbx & 0xffffffff)] if at_entry and rbx else []))
    except KbuError as e:
        r.verdict(PROBLEM if at_entry else UNDECIDED,
                  "no valid hvm_start_info %s: %s" % (
                      "at EBX 0x%x" % (rbx & 0xffffffff) if at_entry and rbx is not None else "found", e),
                  "the loader must pass the start info in EBX (magic 0x336ec578)")
        return
    si = pvh.get("start_info", {})
    r.fact("start_info", "start info", si.get("address"), "%s, version %s, magic %s" % (
        hexs(si.get("address")), si.get("version"), hexs(si.get("magic"))))
    r.fact("cmdline", "command line", si.get("cmdline"), '"%s"' % si.get("cmdline")
           if si.get("cmdline") is not None else "(none)")
    mm = si.get("memmap") or []
    real = [m for m in mm if m.get("size")]
    ram = sum(m["size"] for m in real if m.get("type") == 1)
    r.fact("memmap", "memory map", real, "\n".join(
        "0x%09x-0x%09x  %-9s %s" % (m["addr"], m["end"], m.get("type_name"), _size(m["size"]))
        for m in real) or "(none)")
    r.fact("ram_bytes", "RAM", ram, _size(ram))
    r.fact("modules", "modules", si.get("nr_modules"))
    r.fact("rsdp", "RSDP", si.get("rsdp_paddr"), si.get("rsdp"))
    errors, warnings = [], []
    for p in pvh.get("problems", []):
        (errors if p.get("severity") == "error" else warnings).append(p["message"])
        if p.get("severity") != "note":
            r.problem("start info: " + p["message"])
    bad = []
    if si.get("magic") != HVM_START_MAGIC:
        bad.append("magic %s is not 0x336ec578" % hexs(si.get("magic")))
    if at_entry and cr0 is not None and cr0 >> 31 & 1:
        bad.append("paging is on at the entry (CR0.PG=1): this is not a PVH entry")
    if at_entry and cr0 is not None and not cr0 & 1:
        bad.append("the CPU is in real mode at the entry (CR0.PE=0)")
    if not real:
        bad.append("the memory map is empty")
    bad += errors
    if bad:
        r.verdict(PROBLEM, "the PVH handover is wrong: " + "; ".join(bad),
                  "compare with the PVH boot protocol (xen/arch/x86 docs: hvm_start_info)")
        return
    where = ("entered at 0x%x in 32-bit protected mode with paging off, EBX = 0x%x -> "
             % (entry, rbx & 0xffffffff)) if at_entry else "start info "
    r.verdict(OK, '%shvm_start_info v%s at 0x%x: command line "%s", %d memory map entries '
              "(%s RAM), %s module(s)%s" % (
                  where, si.get("version"), si.get("address", 0), si.get("cmdline"), len(real),
                  _size(ram), si.get("nr_modules"),
                  "; note: " + "; ".join(w.split(":")[0] for w in warnings) if warnings else ""))


def _size(n):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return "%.1f %s" % (n / div, unit) if n % div else "%d %s" % (n // div, unit)
    return "%d bytes" % n
