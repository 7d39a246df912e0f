"""where-are-my-cpus: the CPUs the firmware describes against those the kernel found.

The firmware side is libkbu's MP table walk (by base table length, so QEMU's
zero entry_count does not hide anything); the kernel side is the CPU count
variable the OS profile names, and the kernel's own log lines about SMP.
"""
from kbu.core import KbuError

from ._common import OK, PROBLEM, UNDECIDED

NAME = "where-are-my-cpus"
SUMMARY = "CPUs in the firmware's MP table vs CPUs the kernel found, and why they differ"

# What kernels log about finding CPUs (Linux smpboot/smp/APIC lines, BSD MPTable lines).
LOG_PATTERN = (r"(^smpboot: |^smp: |^APIC: |SMP disabled|SMP configuration|MP-BIOS|"
               r"^MPTable|mp_ncpus|^cpu\d+: |CPUs? (found|detected)|^FreeBSD/SMP|^ACPI: .*APIC)")


def run(r):
    r.end_state()
    table = firmware_table(r)
    text, kcpus = r.ncpus()
    r.fact("kernel_cpus", "kernel's CPU count" if text else None, kcpus, text)
    lines = r.log_lines(LOG_PATTERN)
    if lines:
        r.fact("log", "kernel log", lines, "\n".join(lines))
    tcpus = table.get("cpus") if table else None
    brought = _brought_up(lines)
    if brought is not None:
        r.fact("log_cpus", None, brought)
    found = kcpus if kcpus is not None else brought
    if tcpus is None:
        reason = r.log_lines(r"(no SMP configuration|MADT or MP tables are not detected|"
                             r"Allowing \d+ CPUs)")
        if found is not None:
            r.verdict(UNDECIDED if found <= 1 else OK,
                      "no MP table was found; the kernel runs %d CPU%s%s"
                      % (found, "" if found == 1 else "s",
                         " (it logs: %s)" % "; ".join('"%s"' % l for l in reason) if reason else ""),
                      "check the VM's firmware tables (ACPI MADT with -M microvm,acpi=on)")
        else:
            r.verdict(UNDECIDED, "neither an MP table nor the kernel's CPU count could be read")
        return
    if found is None:
        r.verdict(UNDECIDED, "the MP table lists %d CPU%s (APIC ids %s) but the kernel's CPU "
                  "count is not known (no ncpus role in the %s profile, no SMP line in its log)"
                  % (tcpus, "" if tcpus == 1 else "s", table["ids"], r.os_name()))
        return
    if found >= tcpus:
        r.verdict(OK, "the MP table lists %d CPU%s and the kernel found %d" %
                  (tcpus, "" if tcpus == 1 else "s", found))
        return
    # Fewer CPUs than the table holds: say why.
    ec = table.get("entry_count")
    head = "the MP table holds %d CPU%s (APIC ids %s), the kernel found %d" % (
        tcpus, "" if tcpus == 1 else "s", table["ids"], found)
    if r.os_name() == "linux":
        linux_reason(r, head, table)
        return
    if ec == 0 and found == 0:
        r.verdict(PROBLEM, "%s: the config table's entry_count is 0 (QEMU's qboot writes 0; "
                  "the table holds %d entries by its base table length %d) and the kernel "
                  "walked it by entry_count, so it saw no entry at all"
                  % (head, table["walked"], table["length"]),
                  "walk the table by base_table_length instead of entry_count (what FreeBSD's "
                  "and NetBSD's MP-table compatibility code do), or patch entry_count first")
        return
    r.verdict(PROBLEM, "%s%s" % (head, "; the kernel log says: " + "; ".join(
        '"%s"' % l for l in lines[-3:]) if lines else ""),
        "see how the kernel walks the MP table (kbu recipe mptable-walk)")


def firmware_table(r):
    try:
        res = r.kbu_json(["mptable"])
    except KbuError as e:
        r.fact("mptable", "MP table", None, "not found: %s" % e)
        return None
    hdr = res.get("header", {})
    fp = res.get("floating_pointer", {})
    procs = res.get("entries", {}).get("processors", [])
    ids = ", ".join("%d%s" % (p["apic_id"], " (BSP)" if p.get("bsp") else "") for p in procs)
    r.fact("table_cpus", "MP table CPUs", len(procs), "%d: APIC ids %s" % (len(procs), ids or "none"))
    for p in procs:
        r.note("  processor", "APIC id %-3d version 0x%02x  %s" % (p["apic_id"], p.get("version", 0),
                                                               p.get("state", "")))
    r.fact("table_at", "table", fp.get("config_table"),
           "floating pointer at 0x%x, config table at 0x%x (%s)" % (
               fp.get("address", 0), hdr.get("address", 0), hdr.get("oem_id", "?").strip("'")))
    r.fact("entry_count", "header entry_count", hdr.get("entry_count"),
           "%s (the table holds %s entries in %s bytes)" % (
               hdr.get("entry_count"), hdr.get("entries_walked"), hdr.get("base_table_length")))
    for p in res.get("problems", []):
        if p.get("severity") != "note":
            r.problem("MP table: " + p["message"])
    return {"cpus": len(procs), "ids": ids or "none", "entry_count": hdr.get("entry_count"),
            "walked": hdr.get("entries_walked"), "length": hdr.get("base_table_length")}


def _brought_up(lines):
    import re
    for l in lines:
        m = re.search(r"Brought up \d+ nodes?, (\d+) CPUs?", l)
        if m:
            return int(m.group(1))
    return None


def linux_reason(r, head, table):
    own = r.log_lines(r"(no SMP configuration found|MADT or MP tables are not detected|"
                      r"not listed by BIOS|SMP disabled|Allowing \d+ CPUs|Brought up)")
    has_parser = r.symbol("smp_scan_config") is not None or r.symbol("mpf_found") is not None
    r.fact("mpparse", "MP-table parser in kernel", has_parser,
           "yes" if has_parser else "no (no smp_scan_config/mpf_found symbol: CONFIG_X86_MPPARSE is off)")
    why = "; ".join('"%s"' % l for l in own) or "it logs nothing about it"
    if not has_parser:
        r.verdict(PROBLEM, "%s: this Linux has no MP-table parser (CONFIG_X86_MPPARSE is off) and "
                  "microvm with acpi=off gives it no MADT, so it runs on the boot CPU only. "
                  "The kernel says: %s" % (head, why),
                  "boot with ACPI (-M microvm,acpi=on) so the MADT lists the CPUs, or build the "
                  "kernel with CONFIG_X86_MPPARSE=y")
    else:
        r.verdict(PROBLEM, "%s. The kernel says: %s" % (head, why),
                  "check the kernel's MP-table parsing (mpparse) against the table above")
