"""Failures made the way a porter makes them on a real kernel: from GDB.

The test kernel's default boot follows the real FreeBSD 14.2 kernel on
QEMU's qboot (tests/targets/freebsd-14.2/FACTS.md); a failure it does not have
by itself is made here as a porter makes it on the real kernel, by writing guest
memory or a kernel variable from GDB, and kbu's verdict on the result is
checked. Nothing in the guest knows it is being tested.

- seeds/000: FreeBSD's Firecracker port panics with "mptable_walk_table:
  Unknown MP Config Entry 68". Firecracker cannot run here, so its MP table is
  written over qboot's at the PVH entry, before the kernel reads it: an
  entry_count one past the entries the table holds, a checksum that holds (as a
  VMM writes it), and the byte after the table reading 0x44. The unmodified
  kernel then walks it as FreeBSD does.
- seeds/001: the porter stops in lapic_init and gives the kernel a TSC
  frequency (`set var tsc_freq = ...`) to get past "panic: TSC not
  initialized"; the kernel then boots on, and the TSC question is answered for
  what the kernel holds now.
- A port that forces x2APIC on a CPU without it: Debian's Linux is stopped at
  start_kernel and given `x2apic_mode = 1` (QEMU's TCG has no x2APIC). Linux
  then skips mapping the xAPIC page, reads the APIC through it and dies before
  its console is up (without earlyprintk, an empty serial log).
"""
import json
import re

import pytest

import kbutest

# Run inside GDB at the PVH entry: give the firmware's MP table Firecracker's
# count (one past the entries walked by length), keep its checksum valid, and
# put 0x44 right after it. Prints what it changed as one JSON line.
FIRECRACKER_POKE = r'''
import gdb, json
rep = json.loads(gdb.execute("kbu mptable --json", to_string=True))
h = rep["header"]
table, length, walked = h["address"], h["base_table_length"], h["entries_walked"]
inf = gdb.selected_inferior()
body = bytearray(inf.read_memory(table, length))
count = walked + 1
body[34:36] = count.to_bytes(2, "little")
body[7] = 0
body[7] = (-sum(body)) & 0xff
inf.write_memory(table, bytes(body))
inf.write_memory(table + length, b"\x44")
print("POKED " + json.dumps({"table": table, "length": length, "walked": walked,
                             "entry_count": count}))
'''


def set_from_gdb(kernel, port, where, var, value, then, timeout):
    """The porter's session: break at `where`, see that `var` is still 0 there,
    set it, then run the `then` commands. GDB's output."""
    out = kbutest.gdb_kbu(kernel, port, ["kbu break %s" % where, "continue", "print %s" % var,
                                         "set var %s = %s" % (var, value)] + then, timeout=timeout)
    assert "Traceback" not in out
    assert re.search(r"^\$1 = 0$", out, re.M), out
    return out


def _json_line(out, prefix):
    for line in out.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix):] if prefix.startswith("POKED") else line)
    raise AssertionError("no %r line in GDB's output:\n%s" % (prefix, out))


def test_firecrackers_count_written_from_gdb_is_named(qemu, guest_kernel, tmp_path):
    script = tmp_path / "firecracker_mptable.py"
    script.write_text(FIRECRACKER_POKE)
    q = qemu(guest_kernel, smp=2, memory="128M", paused=True, append="console=ttyS0")
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "kbu recipe pvh-entry",               # the firmware wrote its tables; the kernel has not run
        "source %s" % script,
        "kbu recipe mptable-walk --json"], timeout=180)
    assert "Traceback" not in out
    poked = _json_line(out, "POKED ")
    assert poked["walked"] >= 17 and poked["entry_count"] == poked["walked"] + 1
    # the unmodified kernel walked it as FreeBSD does, and died as seeds/000 did
    q.wait_serial(r"panic: mptable_walk_table: Unknown MP Config Entry 68")
    j = _json_line(out, '{"command": "verdict"')
    assert j["status"] == 1, j["verdict"]
    assert j["verdict"]["code"] == "mptable.count_walk_unknown_type"
    f = j["facts"]
    assert f["firmware_table"] == poked["table"]
    assert f["entry_count"] == poked["entry_count"] and f["entries"] == poked["walked"]
    assert f["count_walk"]["stop_type"] == 68
    assert f["count_walk"]["stop_addr"] == poked["table"] + poked["length"]
    cause = j["verdict"]["cause"]
    assert ("entry_count %d counts one entry more than the %d-byte table holds"
            % (poked["entry_count"], poked["length"])) in cause
    assert '"mptable_walk_table: Unknown MP Config Entry 68"' in cause
    assert "off-by-one" in j["verdict"]["next"]


def test_tsc_freq_set_from_gdb_gets_past_the_tsc_panic(qemu, guest_kernel):
    # kbu.scenario=tsc keeps the real kernel's order under TCG: lapic_init asserts
    # the TSC frequency before anything calibrates it.
    q = qemu(guest_kernel, smp=2, memory="128M", paused=True,
             append="console=ttyS0 kbu.scenario=tsc")
    out = set_from_gdb(guest_kernel, q.port, "lapic_init", "tsc_freq", 2500000000, [
        "kbu recipe tsc-not-initialized --json",
        "kbu recipe panic-triage --json"], timeout=180)
    tsc, panic = [json.loads(l) for l in out.splitlines() if l.startswith('{"command": "verdict"')]
    # the kernel booted on past the assertion to its idle loop
    assert tsc["end_state"]["kind"] == "idle", tsc["end_state"]
    q.wait_serial(r"kbu-guest: idle")
    assert "TSC not initialized" not in q.serial_text()
    assert tsc["status"] == 0, tsc["verdict"]
    assert tsc["facts"]["tsc_hz"] == 2500000000
    # kbu cannot tell a calibration from a value set by hand, and does not pretend to
    assert "2500.000 MHz, not from CPUID" in tsc["verdict"]["cause"]
    assert "set by hand" in tsc["verdict"]["cause"]
    assert panic["status"] == 0 and panic["end_state"]["kind"] == "idle", panic["verdict"]


@pytest.mark.linux
@pytest.mark.slow
def test_x2apic_mode_set_from_gdb_on_linux(linux_qemu, linux_target):
    assert linux_target.vmlinux_dbg, "Debian's -dbg vmlinux is part of the Linux target"
    q = linux_qemu(paused=True, smp=2)       # ACPI on: the MADT lists both CPUs
    out = set_from_gdb(linux_target.vmlinux_dbg, q.port, "start_kernel", "x2apic_mode", 1, [
        "kbu recipe x2apic-mode",
        "kbu recipe x2apic-mode --json",
        "kbu recipe where-are-my-cpus --json"], timeout=300)
    j, cpus = [json.loads(l) for l in out.splitlines() if l.startswith('{"command": "verdict"')]
    assert j["status"] == 1, j["verdict"]
    assert j["verdict"]["code"] == "x2apic.flag_without_cpu"
    f = j["facts"]
    assert (f["variable"], f["kernel_x2apic"], f["cpuid_x2apic"]) == ("x2apic_mode", 1, False)
    # Linux died on its own, reading the APIC page it skipped mapping (only the
    # harness's earlyprintk shows it; the real console never came up), and kbu
    # quotes that from the kernel's own log
    assert j["end_state"]["kind"] == "panic", j["end_state"]
    assert "RIP: 0010:native_apic_mem_read+" in q.serial_text()
    assert re.search(r"^  kernel log +RIP: 0010:native_apic_mem_read\+", out, re.M), out
    # the flag was set before the watch was armed: kbu does not say the kernel set it
    text_cause = re.search(r"^VERDICT: problem: (.*)$", out, re.M).group(1)
    assert text_cause.startswith("x2apic_mode = 1 (already 1 when the watch was armed"), text_cause
    assert "kernel set" not in text_cause
    # Linux died before smp_init: its online count (1) says nothing about the tables,
    # and where-are-my-cpus does not blame them
    f = cpus["facts"]
    assert (f["vcpus"], f["madt_cpus"], f["kernel_cpus"]) == (2, 2, 1), f
    assert cpus["status"] == 2, cpus["verdict"]
    assert cpus["verdict"]["cause"].startswith(
        'the kernel panicked first ("Attempted to kill the idle task!") before it brought its '
        'CPUs up'), cpus["verdict"]
