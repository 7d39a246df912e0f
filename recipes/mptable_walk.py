"""mptable-walk: the firmware's MP table and the kernel's own copy of it, checked.

libkbu walks both (by base table length, every entry type, checksums); the
recipe compares them with what the kernel did: its CPU count, its panic.
"""
import re

from kbu.core import KbuError

from ._common import OK, PROBLEM, UNDECIDED

NAME = "mptable-walk"
SUMMARY = "walk the firmware's MP table and the kernel's copy: bad entries, entry_count, what the kernel saw"

# Kernel variables that point at the kernel's own copy of the config table (FreeBSD: mpct).
COPY_SYMBOLS = ("mpct",)
_UNKNOWN = re.compile(r"unknown entry type (\d+) \(0x[0-9a-f]+\) at offset (0x[0-9a-f]+)"
                      r"(?: \(phys (0x[0-9a-f]+)\))?")


def run(r):
    end = r.end_state()
    try:
        fw = r.kbu_json(["mptable"])
    except KbuError as e:
        r.verdict(UNDECIDED, "no MP table found: %s" % e,
                  "check the firmware: qboot puts it at 0x9fc00 on -M microvm,acpi=off")
        return
    fhdr = fw.get("header", {})
    fsum = fw.get("summary", {})
    r.fact("firmware_table", "firmware table", fhdr.get("address"),
           "config table at 0x%x: %s entries in %s bytes, entry_count %s, checksum %s" % (
               fhdr.get("address", 0), fhdr.get("entries_walked"), fhdr.get("base_table_length"),
               fhdr.get("entry_count"), {True: "ok", False: "BAD"}.get(fhdr.get("checksum_ok"),
                                                                    "not verified")))
    r.fact("firmware_cpus", "firmware CPUs", fsum.get("cpus"),
           "%s (APIC ids %s)" % (fsum.get("cpus"), ", ".join(str(i) for i in
                                                           fsum.get("cpu_apic_ids", []))))
    ioapics = fsum.get("ioapics") or []
    r.fact("firmware_ioapics", "firmware I/O APICs", ioapics,
           ", ".join("id %d at 0x%08x" % (a["apic_id"], a["address"]) for a in ioapics) or "none")
    fw_errors = [p["message"] for p in fw.get("problems", []) if p.get("severity") == "error"]
    for p in fw.get("problems", []):
        if p.get("severity") != "note":
            r.problem("firmware table: " + p["message"])

    copy = kernel_copy(r, fhdr.get("address"))
    text, kcpus = r.ncpus()
    if text:
        r.fact("kernel_cpus", "kernel's CPU count", kcpus, text)
    msg = end.get("message") if end.get("kind") == "panic" else None
    if msg:
        r.fact("panic", "panic", msg, '"%s" in %s' % (msg, end.get("function")))

    if copy and copy["errors"]:
        bad = copy["unknown"]
        what = ("an entry of unknown type %d at offset %s%s" % (
            bad["type"], bad["offset"], " (phys %s)" % bad["phys"] if bad.get("phys") else "")
                if bad else copy["errors"][0])
        same = copy["address"] == fhdr.get("address")
        cause = "the kernel's copy of the MP table (%s at 0x%x) holds %s" % (
            copy["symbol"], copy["address"], what)
        if not same and not fw_errors:
            cause += ", where the firmware's table at 0x%x is intact: the copy was changed " \
                     "after it was made" % fhdr.get("address", 0)
        if bad and copy.get("hint"):
            cause += " (%s)" % copy["hint"]
        if msg:
            cause += '; the kernel panicked on it: "%s"' % msg
        r.verdict(PROBLEM, cause,
                  "find the writer: watch the entry's type byte from boot (GDB `watch *(char *)"
                  "ADDR` at %s) or break where the kernel copies the table" % (
                      bad.get("phys") if bad and bad.get("phys") else "the entry"))
        return
    if fw_errors:
        r.verdict(PROBLEM, "the firmware's MP table is broken: %s" % fw_errors[0],
                  "fix the firmware table (or work around it in the kernel's walker)")
        return
    tcpus = fsum.get("cpus") or 0
    if kcpus is not None and kcpus < tcpus:
        ec = fhdr.get("entry_count")
        cause = "the table holds %d CPUs but the kernel found %d" % (tcpus, kcpus)
        if ec == 0:
            cause += ": the header's entry_count is 0 (QEMU's qboot) and the kernel walked " \
                     "the table by entry_count instead of its base table length (%s bytes, %s " \
                     "entries)" % (fhdr.get("base_table_length"), fhdr.get("entries_walked"))
        r.verdict(PROBLEM, cause, "walk the table by base_table_length, as kbu does")
        return
    if msg and re.search(r"(?i)\bMP\b|mptable|MP Config", msg):
        r.verdict(PROBLEM, 'the tables look sound but the kernel panicked about them: "%s"' % msg,
                  "compare the kernel's walker with the entries listed by `kbu mptable`")
        return
    quirks = [p["message"].split(";")[0] for p in fw.get("problems", [])
              if p.get("severity") == "warning"]
    r.verdict(OK, "the firmware's MP table is sound (%d CPUs%s)%s" % (
        tcpus, ", the kernel found %d" % kcpus if kcpus is not None else "",
        "; known QEMU quirks the kernel coped with: " + "; ".join(quirks) if quirks else ""))


def kernel_copy(r, fw_addr):
    """The kernel's own table copy walked by libkbu, or None if it keeps none."""
    for sym in COPY_SYMBOLS:
        if r.symbol(sym) is None:
            continue
        try:
            res = r.kbu_json(["mptable", "--table", sym])
        except KbuError as e:
            r.fact("kernel_copy", "kernel's copy", None, "%s: not walkable: %s" % (sym, e))
            return None
        hdr = res.get("header", {})
        errors = [p["message"] for p in res.get("problems", []) if p.get("severity") == "error"]
        unknown, hint = None, None
        for m in errors:
            mm = _UNKNOWN.search(m)
            if mm:
                unknown = {"type": int(mm.group(1)), "offset": mm.group(2), "phys": mm.group(3)}
                h = re.search(r"\(([^()]*wrong type byte[^()]*)\)", m)
                hint = h.group(1) if h else None
                break
        where = "the firmware's table itself" if hdr.get("address") == fw_addr else \
            "a copy at 0x%x" % hdr.get("address", 0)
        r.fact("kernel_copy", "kernel's copy (%s)" % sym, hdr.get("address"),
               "%s: %s entries walked, entry_count %s, %d CPUs" % (
                   where, hdr.get("entries_walked"), hdr.get("entry_count"),
                   res.get("summary", {}).get("cpus", 0)))
        if unknown:
            r.fact("unknown_entry", "unknown entry", unknown,
                   "type %d at offset %s%s" % (unknown["type"], unknown["offset"],
                                               " (phys %s)" % unknown["phys"] if unknown["phys"] else ""))
        for m in errors:
            r.problem("kernel's copy: " + m)
        return {"symbol": sym, "address": hdr.get("address"), "errors": errors,
                "unknown": unknown, "hint": hint}
    return None
