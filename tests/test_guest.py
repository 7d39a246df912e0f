"""The test kernel (build/guest/kernel) reproduces each seed's failure, and
plain GDB on QEMU's stub sees the end state a porter would look for."""
import os
import re
import shutil
import signal

import pytest

import kbutest

SCENARIOS = {
    # scenario: (a line FreeBSD prints in that boot, or None; its final line)
    "tsc": (r"^Event timer \"LAPIC\" quality 600", r"^panic: TSC not initialized"),
    "timecounter": (r"^Statistical \w+ calibration failed!", r"^kbu-guest: idle"),
    "x2apic": (r"^MPTable: <QBOOT    000000000000>$", r"^kbu-guest: idle"),
    "mptable": (None, r"^kbu-guest: idle"),
    "mpcorrupt": (None, r"^panic: mptable_walk_table: Unknown MP Config Entry 68"),
    "ok": (r"^Timecounter \"i8254\" frequency 1193182 Hz quality 0$", r"^kbu-guest: idle"),
}
FINAL = r"^(kbu-guest: idle|panic: .*)$"
START_INFO_MAGIC = 0x336ec578


def boot(qemu, kernel, scenario, paused=False, smp=1):
    return qemu(kernel, memory="128M", smp=smp, paused=paused,
                append="console=ttyS0 kbu.scenario=%s" % scenario)


def gdb_value(out, n=None):
    """The value GDB printed for `print` number n (the last one if n is None)."""
    values = re.findall(r"^\$(\d+) = (.*)$", out, re.M)
    assert values, "GDB printed no value:\n" + out
    if n is None:
        return values[-1][1]
    return dict(values)[str(n)]


def xp_bytes(q, addr, n):
    """n bytes of guest physical memory through the monitor's xp."""
    data = []
    for line in q.monitor("xp /%dbx %#x" % (n, addr)).splitlines():
        data += [int(v, 16) for v in line.split(":", 1)[1].split()]
    return bytes(data)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_console(qemu, guest_kernel, scenario):
    """Banner, the scenario's own evidence, and exactly one final line."""
    evidence, final = SCENARIOS[scenario]
    q = boot(qemu, guest_kernel, scenario)
    q.wait_serial(FINAL, timeout=60)
    text = q.serial_text()
    assert re.search(r"^kbu-guest: scenario %s$" % scenario, text, re.M), text
    assert evidence is None or re.search(evidence, text, re.M), text
    assert re.search(final, text, re.M), text
    assert len(re.findall(FINAL, text, re.M)) == 1, text


def test_tsc_breakpoint_on_panic(qemu, guest_kernel):
    """tsc: a breakpoint on panic trips (FreeBSD's KASSERT calls panic), called
    from lapic_init with "TSC not initialized"; released, the guest panics."""
    q = boot(qemu, guest_kernel, "tsc", paused=True)
    # Paging is off at the PVH entry: a hardware breakpoint takes us to where
    # the kernel's addresses are mapped, then a plain one does the job.
    out = kbutest.gdb_batch(guest_kernel, q.port, [
        "hbreak lapic_init", "continue", "break panic", "continue", "bt"])
    assert re.search(r"^Breakpoint 2, panic \(fmt=.*\"TSC not initialized\"", out, re.M), out
    assert re.search(r"^#1 .* in lapic_init ", out, re.M), out
    q.wait_serial(r"^panic: TSC not initialized", timeout=30)


def test_timecounter_stays_dummy(qemu, guest_kernel):
    q = boot(qemu, guest_kernel, "timecounter")
    q.wait_serial(r"^kbu-guest: idle", timeout=60)
    assert re.search(r"^Statistical \w+ calibration failed!", q.serial_text(), re.M)
    out = kbutest.gdb_batch(guest_kernel, q.port, ["print timecounter->tc_name"])
    assert re.fullmatch(r'0x[0-9a-f]+ "dummy"', gdb_value(out)), out


def test_x2apic_watchpoint_fires_in_lapic_x2apic_enable(qemu, guest_kernel):
    q = boot(qemu, guest_kernel, "x2apic", paused=True)
    out = kbutest.gdb_batch(guest_kernel, q.port, [
        "hbreak lapic_init", "continue", "watch x2apic_mode", "continue", "bt 2"])
    assert "Hardware watchpoint 2: x2apic_mode" in out, out
    assert re.search(r"Old value = 0\s+New value = 1", out), out
    assert re.search(r"^#0 .*lapic_x2apic_enable \(\)", out, re.M), out
    assert re.search(r"^#1 .* in lapic_init ", out, re.M), out


def test_mptable_finds_what_entry_count_says(qemu, guest_kernel):
    """qboot's table describes both CPUs but its entry_count is 0: the walker
    that trusts entry_count ends with mp_ncpus == 0."""
    q = boot(qemu, guest_kernel, "mptable", smp=2)
    q.wait_serial(r"^kbu-guest: idle", timeout=60)
    fp = xp_bytes(q, 0x9fc00, 16)
    assert fp[:4] == b"_MP_", "no MP floating pointer at 0x9fc00: %r" % fp
    table = int.from_bytes(fp[4:8], "little")
    hdr = xp_bytes(q, table, 44)
    assert hdr[:4] == b"PCMP", "no PCMP table at %#x" % table
    assert int.from_bytes(hdr[4:6], "little") > 44 + 2 * 20, "the table holds no processor entries"
    entry_count = int.from_bytes(hdr[34:36], "little")
    assert entry_count == 0
    out = kbutest.gdb_batch(guest_kernel, q.port, ["print mp_ncpus"])
    assert gdb_value(out) == str(entry_count), out


def test_mpcorrupt_panics_in_the_walker(qemu, guest_kernel):
    """The walker is inlined (no symbol): GDB's backtrace still names it, inside
    mptable_probe_cpus, from DWARF."""
    q = boot(qemu, guest_kernel, "mpcorrupt", paused=True)
    out = kbutest.gdb_batch(guest_kernel, q.port, [
        "hbreak mptable_probe_cpus", "continue", "break panic", "continue", "bt"])
    assert re.search(r"^Breakpoint 2, panic ", out, re.M), out
    assert re.search(r"^#\d+ .*mptable_walk_table \(.*\n#\d+ +mptable_probe_cpus \(", out, re.M), out
    q.wait_serial(r"^panic: .*Unknown MP Config Entry 68$", timeout=30)


def test_ok_reaches_the_idle_loop(qemu, guest_kernel):
    """ok: the CPU sits in cpu_idle, a real timecounter is installed, and the
    static start_info points at the PVH start info (magic 0x336ec578) through
    the KERNBASE map."""
    q = boot(qemu, guest_kernel, "ok")
    q.wait_serial(r"^kbu-guest: idle", timeout=60)
    out = kbutest.gdb_batch(guest_kernel, q.port, [
        "info symbol $pc", "print timecounter->tc_name",
        "print/x (unsigned long)start_info - 0xffffffff80000000"])
    assert re.search(r"^cpu_idle( \+ \d+)? in section \.text", out, re.M), out
    assert not gdb_value(out, 1).endswith('"dummy"'), out
    start_info = int(gdb_value(out, 2), 16)
    assert 0 < start_info < 0x100000000
    magic = int.from_bytes(xp_bytes(q, start_info, 4), "little")
    assert magic == START_INFO_MAGIC, "start_info's physical %#x holds %#x" % (start_info, magic)


def _kv(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_launch_scripts(guest_kernel):
    """scripts/microvm --daemon starts the guest paused on a free port and says
    where everything is; scripts/kbu-gdb attaches to it and finds lapic_init."""
    microvm = os.path.join(kbutest.ROOT, "scripts", "microvm")
    kbu_gdb = os.path.join(kbutest.ROOT, "scripts", "kbu-gdb")

    dry = kbutest.run([microvm, "--dry-run", "--gdb", "4321", "--smp", "2", "-S", guest_kernel,
                       "--", "-d", "guest_errors"], timeout=30)
    assert dry.returncode == 0, dry.stderr
    for want in ("microvm,acpi=off", "-smp 2", "tcp:127.0.0.1:4321", " -S ", "-d guest_errors"):
        assert want in dry.stdout.replace("\\,", ","), dry.stdout

    p = kbutest.run([microvm, "--daemon", "--gdb", "auto", "--paused", "-m", "128M", guest_kernel,
                     "-a", "console=ttyS0 kbu.scenario=tsc"], timeout=60)
    assert p.returncode == 0, p.stderr
    kv = _kv(p.stdout)
    try:
        assert {"gdb_port", "serial", "monitor", "qmp", "run_dir", "pid"} <= set(kv), p.stdout
        assert os.path.exists(kv["monitor"]) and os.path.exists(kv["qmp"])
        g = kbutest.run([kbu_gdb, "--batch", "--no-kbu", "--port", kv["gdb_port"], guest_kernel, "--",
                         "-ex", "hbreak lapic_init", "-ex", "continue", "-ex", "info symbol $pc"],
                        timeout=60)
        assert re.search(r"^lapic_init in section \.text", g.stdout, re.M), g.stdout + g.stderr
    finally:
        try:
            os.kill(int(kv["pid"]), signal.SIGKILL)
        except (KeyError, ProcessLookupError, ValueError):
            pass
        if kv.get("run_dir", "").startswith("/tmp/kbu-microvm."):
            shutil.rmtree(kv["run_dir"], ignore_errors=True)
