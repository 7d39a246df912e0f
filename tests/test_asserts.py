"""kbu break assert and kbu asserts: stop on the assertion and panic entries
with the decoded message, the asserting function and a backtrace; list the
call sites in the kernel text."""
import re

import pytest

import kbutest


def boot_paused(qemu, kernel, scenario):
    return qemu(kernel, memory="128M", smp=2, paused=True,
                append="console=ttyS0 kbu.scenario=%s" % scenario)


def console_check(q, text):
    """A GDB command printing whether the console holds text at that moment."""
    return ("python print('CONSOLE-HAS-IT', %r in open(%r, errors='replace').read())"
            % (text, q.serial_path))


def stop_report(out):
    """The block kbu printed at the stop: {'entry','cpu','message','format','asserting',
    'frames'}."""
    m = re.search(r"^kbu: (\S+) on CPU (\S+)\n((?:  .*\n)+)", out, re.M)
    assert m, "no kbu stop report in:\n" + out
    rep = {"entry": m.group(1), "cpu": m.group(2), "frames": []}
    for line in m.group(3).splitlines():
        f = re.match(r"^  (message|format|asserting):\s+(.*)$", line)
        if f:
            rep[f.group(1)] = f.group(2)
        b = re.match(r"^    #\d+\s+0x([0-9a-f]+)\s+(\S+)", line)
        if b:
            rep["frames"].append((int(b.group(1), 16), b.group(2)))
    return rep


def test_tsc_stops_in_panic_from_lapic_init(qemu, guest_kernel):
    q = boot_paused(qemu, guest_kernel, "tsc")
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["kbu break assert", "continue",
                                                 console_check(q, "TSC not initialized")])
    rep = stop_report(out)
    # FreeBSD 14.2 has no kassert_panic: KASSERT calls panic.
    assert rep["entry"] == "panic"
    assert rep["message"] == "TSC not initialized"
    assert rep["asserting"].split()[0] == "lapic_init"
    assert "local_apic.c:" in rep["asserting"]         # the guest has DWARF
    assert rep["frames"][0][1] == "panic"
    assert rep["frames"][1][1].startswith("lapic_init+")
    # Stopped before the kernel printed its panic line.
    assert "CONSOLE-HAS-IT False" in out


def test_mpcorrupt_stops_with_the_entry_type(qemu, guest_kernel):
    q = boot_paused(qemu, guest_kernel, "mpcorrupt")
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["kbu break assert", "continue",
                                                 console_check(q, "Unknown MP Config")])
    rep = stop_report(out)
    assert rep["entry"] == "panic"
    assert rep["format"] == "%s: Unknown MP Config Entry %d"
    assert rep["message"] == "mptable_walk_table: Unknown MP Config Entry 68"
    # The walker is inlined: no symbol names it, DWARF does.
    assert re.match(r"mptable_walk_table \(inlined in mptable_probe_cpus\)\s+mptable\.c:\d+",
                    rep["asserting"]), rep["asserting"]
    assert "CONSOLE-HAS-IT False" in out


def test_break_assert_off_removes_every_breakpoint(qemu, guest_kernel):
    q = boot_paused(qemu, guest_kernel, "tsc")
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "kbu break assert", "maint info breakpoints", "kbu break assert --off",
        "maint info breakpoints", "echo MARK\\n"])
    before, after = out.split("assertion breakpoint(s) removed")
    assert before.count("0xffffffff80") >= 2          # vpanic, panic (no kassert_panic)
    assert not re.search(r"breakpoint\s+keep\s+y\s+0x", after.split("MARK")[0]), after


def test_asserts_lists_call_sites_with_formats(guest_kernel):
    rc, obj, err = kbutest.kbu_json("asserts", "--kernel", guest_kernel)
    assert rc == 0, err
    assert obj["os"].startswith("freebsd")
    sites = obj["sites"]
    by_fmt = {s["format"]: s for s in sites if s["format"]}
    tsc = by_fmt['TSC not initialized']
    assert tsc["function"] == "lapic_init" and tsc["entry"] == "panic"
    # The inlined walker's panic appears once per function it is inlined into.
    mp = [s for s in sites if s["format"] == "%s: Unknown MP Config Entry %d\\n"]
    assert {s["function"] for s in mp} >= {"mptable_probe_cpus", "mptable_setup_local"}
    assert all(s["entry"] == "panic" for s in mp)
    # Every site really is a call to the entry it names.
    rc, text, err = kbutest.kbu("asserts", "--kernel", guest_kernel, "lapic_init")
    assert rc == 0 and "lapic_init" in text and "mptable_probe_cpus" not in text


def test_break_assert_list_in_gdb(guest_kernel):
    out = kbutest.gdb_kbu(guest_kernel, None, ["kbu break assert --list lapic_init"])
    assert '"TSC not initialized"' in out
    assert "panic" in out and "kassert_panic" in out   # listed as not in this kernel


@pytest.mark.linux
def test_linux_panic_stops_before_the_console_prints_it(linux_qemu, linux_target):
    q = linux_qemu(paused=True)
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "set kbu symbols %s" % linux_target.system_map,
        "kbu break assert", "continue",
        console_check(q, "Unable to mount root")], timeout=240)
    rep = stop_report(out)
    assert rep["entry"] == "panic"
    assert rep["message"] == "VFS: Unable to mount root fs on unknown-block(0,0)"
    assert rep["asserting"].split()[0] == "mount_block_root"
    assert "CONSOLE-HAS-IT False" in out


@pytest.mark.linux
def test_linux_asserts_list_is_fast_and_finds_mount_block_root(linux_target):
    rc, obj, err = kbutest.kbu_json("asserts", "--kernel", linux_target.vmlinux,
                                    "--symbols", linux_target.system_map, "mount_block_root")
    assert rc == 0, err
    fmts = {s["format"] for s in obj["sites"]}
    assert 'VFS: Unable to mount root fs on %s' in fmts


def interrupt_when(serial_path, text):
    """A GDB command that interrupts the guest once the console shows text."""
    return ("python\n"
            "import threading, time, gdb\n"
            "def _kbu_poll(path=%r, text=%r):\n"
            "    while True:  # until the console shows it; the GDB session has the limit\n"
            "        if text in open(path, errors='replace').read():\n"
            "            gdb.post_event(lambda: gdb.execute('interrupt'))\n"
            "            return\n"
            "        time.sleep(0.05)\n"
            "threading.Thread(target=_kbu_poll, daemon=True).start()\n" % (serial_path, text))


@pytest.mark.linux
def test_linux_kaslr_panic_breakpoint_follows_the_slide(linux_qemu, linux_target):
    """The bzImage boots with KASLR: the breakpoint goes to panic's runtime address."""
    q = linux_qemu(image="bzimage", paused=True)
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "set kbu symbols %s" % linux_target.system_map,
        interrupt_when(q.serial_path, "Linux version"), "continue",
        "kbu break assert", "continue", console_check(q, "Unable to mount root")], timeout=240)
    # The kernel prints its offset while it panics, after GDB has let it go.
    q.wait_serial(r"Kernel Offset:", timeout=120)
    offset = kbutest.kernel_offset(q.serial_text())
    assert offset, "expected a KASLR offset on the console"
    armed = re.search(r"breaking on panic \(0x([0-9a-f]+), breakpoint \d+\)", out)
    assert armed and int(armed.group(1), 16) == linux_target.symbol("panic") + offset, out
    rep = stop_report(out)
    assert rep["message"] == "VFS: Unable to mount root fs on unknown-block(0,0)"
    assert rep["asserting"].split()[0] == "mount_block_root"
    assert "CONSOLE-HAS-IT False" in out


def test_printf_cli_formats_the_panic_message(qemu, guest_kernel, tmp_path):
    # panicstr points at the message panic() formatted; --fmt-at follows it.
    q = qemu(guest_kernel, memory="128M", smp=1, append="console=ttyS0 kbu.scenario=mpcorrupt")
    q.wait_serial(r"panic: mptable_walk_table", timeout=30)
    dump = q.dump(str(tmp_path / "mpcorrupt.core"))
    q.stop()
    rc, obj, err = kbutest.kbu_json("printf", "--kernel", guest_kernel, "--core", dump,
                                    "--fmt-at", "panicstr")
    assert rc == 0, err
    assert obj["message"] == "mptable_walk_table: Unknown MP Config Entry 68"
    rc, out, err = kbutest.kbu("printf", "--kernel", guest_kernel, "--core", dump, asan=True)
    assert rc == 2 and "give the format's address" in err
    rc, out, err = kbutest.kbu("printf", "--kernel", guest_kernel, "--core", dump,
                               "--fmt", "0x10000000000", asan=True)
    assert rc == 2 and "the format" in err
