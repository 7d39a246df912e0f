"""kbu watch: x2APIC mode and the time source watched without stopping the
guest, armed at the PVH entry while paging is off, summarised in a sentence;
nothing left behind afterwards."""
import json
import re

import pytest

import kbutest

PVH_ENTRY = 0x200000   # the test kernel's XEN_ELFNOTE_PHYS32_ENTRY (xen_start32)


def watch_run(qemu, kernel, scenario, extra=()):
    """Boots paused, stops at the PVH entry (paging off), arms both watches,
    runs to the scenario's end (idle, or the panic) and reports."""
    q = qemu(kernel, memory="128M", smp=2, paused=True,
             append="console=ttyS0 kbu.scenario=%s" % scenario)
    out = kbutest.gdb_kbu(kernel, q.port, [
        "break *0x%x" % PVH_ENTRY, "continue", "delete",
        "print/x $cr0",
        "kbu watch x2apic", "kbu watch timecounter",
        "kbu break msg kbu-guest: idle",
        "continue",
        "kbu watch report"] + list(extra))
    return q, out


def test_arming_happens_with_paging_off(qemu, guest_kernel):
    q, out = watch_run(qemu, guest_kernel, "ok", extra=["kbu watch report --json"])
    cr0 = int(re.search(r"^\$1 = (0x[0-9a-f]+)", out, re.M).group(1), 16)
    assert not cr0 & 0x80000000, "expected CR0.PG=0 at the PVH entry"
    assert re.search(r"x2apic_mode = 0 \(xAPIC\), watching virtual 0xffffffff802[0-9a-f]{5}, "
                     r"physical 0x2[0-9a-f]{5};", out), out
    # ... and the changes after the switch to the high map are seen.
    assert re.search(r"^timecounter went 'dummy' -> 'i8254'; now 'i8254' \(1193182 Hz, "
                     r"tc_quality 0\); tc_init registered 1 \(i8254\)$", out, re.M), out
    assert re.search(r"^x2apic_mode stayed 0 \(xAPIC\) through \d+ writes?$", out, re.M), out
    j = json.loads(re.search(r'^(\{"watches".*)$', out, re.M).group(1))
    by = {w["kind"]: w for w in j["watches"]}
    tc = by["timecounter"]
    # The values: the pointer went from the placeholder's structure to i8254's.
    rc, syms, err = kbutest.kbu_json("sym", "--kernel", guest_kernel, "dummy_timecounter",
                                     "i8254_timecounter")
    addr = {r["symbol"]: r["address"] for r in syms["results"]}
    assert [(c["old"], c["new"]) for c in tc["changes"]] == [
        (addr["dummy_timecounter"], addr["i8254_timecounter"])]
    assert [(c["old_source"], c["new_source"]) for c in tc["changes"]] == [("dummy", "i8254")]
    assert tc["value"] == addr["i8254_timecounter"] and tc["source"] == "i8254"
    assert tc["registered"][0] == "i8254"
    n = int(re.search(r"^x2apic_mode stayed 0 \(xAPIC\) through (\d+) writes?$", out, re.M).group(1))
    assert by["x2apic"]["changes"] == [] and by["x2apic"]["writes"] == n
    assert by["x2apic"]["value"] == 0


def test_timecounter_never_left_dummy(qemu, guest_kernel):
    q, out = watch_run(qemu, guest_kernel, "timecounter")
    assert re.search(r"^timecounter never left 'dummy'; tc_init was never called$", out, re.M), out
    assert "kbu watch: timecounter" not in out.split("kbu watch report")[0].split(
        "watching")[-1]          # no change was logged while running
    assert "Statistical lapic calibration failed!" in q.serial_text()


def test_x2apic_switch_is_logged_with_its_call_site(qemu, guest_kernel):
    q, out = watch_run(qemu, guest_kernel, "x2apic")
    live = re.search(r"^kbu watch: x2apic_mode 0 \(xAPIC\) -> 1 \(x2APIC\) on CPU (\d+) at "
                     r"(lapic_x2apic_enable\+0x[0-9a-f]+)$", out, re.M)
    assert live, out
    assert re.search(r"^x2apic_mode changed: 0 \(xAPIC\) -> 1 \(x2APIC\) at %s on CPU %s "
                     r"\(1 write\)$" % (re.escape(live.group(2)), live.group(1)), out, re.M), out
    # The logged site is the store libkbu finds in the text.
    rc, obj, err = kbutest.kbu_json("msgrefs", "--kernel", guest_kernel, "--data", "x2apic_mode:4")
    stores = [r["where"] for r in obj["refs"] if r["access"] == "write"]
    assert stores == [live.group(2)]


def test_the_guest_never_stops_for_a_watch(qemu, guest_kernel):
    q, out = watch_run(qemu, guest_kernel, "x2apic")
    stops = re.findall(r"^Thread \d+ (?:hit|received) (.*)$", out, re.M)
    # Only the PVH-entry breakpoint and the idle message breakpoint stopped it.
    assert len(stops) == 2 and all("Breakpoint" in s for s in stops), stops
    assert "SIGTRAP" not in out


def test_off_and_detach_leave_no_watchpoint(qemu, guest_kernel):
    q, out = watch_run(qemu, guest_kernel, "ok", extra=[
        "maint info breakpoints", "echo MARK-ARMED\\n",
        "kbu watch off", "maint info breakpoints", "echo MARK-OFF\\n",
        "kbu watch x2apic", "maint info breakpoints", "echo MARK-REARMED\\n", "detach",
        "maint info breakpoints",
        "python from kbu import watch; print('LEFT', len(watch.watches.active))"])
    armed = out.split("MARK-ARMED")[0].split("kbu watch report")[-1]
    off = out.split("MARK-ARMED")[1].split("MARK-OFF")[0]
    assert "hw watchpoint" in armed, armed
    assert "removed" in off
    table = off.split("breakpoint(s)")[-1]
    assert "watchpoint" not in table, off
    rearmed = out.split("MARK-OFF")[1].split("MARK-REARMED")[0]
    assert "hw watchpoint" in rearmed
    after_detach = out.split("MARK-REARMED")[1]
    assert "hw watchpoint" not in after_detach, after_detach
    assert "LEFT 0" in out


def test_watch_needs_a_live_target(guest_kernel):
    out = kbutest.gdb_kbu(guest_kernel, None, ["kbu watch x2apic", "kbu watch report"])
    assert "kbu watch: kbu watch needs a live target" in out
    assert "kbu watch: nothing is watched" in out
    assert "Traceback" not in out


@pytest.mark.linux
def test_linux_clocksource_switches_end_with_the_console_one(linux_qemu, linux_target):
    q = linux_qemu(paused=True)
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "set kbu symbols %s" % linux_target.system_map,
        "kbu watch timecounter", "kbu break assert", "continue", "kbu watch report",
        "kbu watch off"], timeout=240)
    switched = re.findall(r"clocksource: Switched to clocksource (\S+)", q.serial_text())
    assert switched, q.serial_text()
    logged = re.findall(r"^kbu watch: curr_clocksource .* -> '([^']+)'", out, re.M)
    assert logged, out
    # Every switch the console announced was logged, in order, and the last
    # logged one is the one the console names last.
    it = iter(logged)
    assert all(any(s == l for l in it) for s in switched), (switched, logged)
    assert logged[-1] == switched[-1]
    assert re.search(r"^curr_clocksource went .* now '%s'" % re.escape(switched[-1]), out, re.M)


SKEWED_PROFILE = """[profile]
name = skewed
detect = kassert_panic
[roles]
x2apic = x2apic_mode
x2apic_type = int
timesource = timecounter
timesource_pointer = 1
time_register = tc_init
asserts = kassert_panic vpanic panic
printf_entries = kassert_panic panic
[layout.timesource]
struct = timecounter
frequency = 16 8 tc_frequency
name = 40 8 tc_name
quality = 48 4 tc_quality
"""


def test_user_profile_is_used_and_dwarf_wins_over_its_offsets(qemu, guest_kernel, tmp_path):
    prof = tmp_path / "skewed.ini"
    prof.write_text(SKEWED_PROFILE)
    q = qemu(guest_kernel, memory="128M", smp=2, paused=True,
             append="console=ttyS0 kbu.scenario=ok")
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "set kbu profile %s" % prof, "kbu os", "kbu watch timecounter",
        "kbu break msg kbu-guest: idle", "continue", "kbu watch report"])
    assert re.search(r"^os:\s+skewed$", out, re.M), out            # the file's profile
    assert "DWARF puts timecounter.tc_name at offset 32 (size 8), the skewed profile at 40" in out
    assert re.search(r"^timecounter went 'dummy' -> 'i8254'", out, re.M), out


def test_timesource_cli_on_dumps(qemu, guest_kernel, tmp_path):
    # What kbu watch reads, as the CLI reads it from a dump: the active time
    # source and the registration list, through the FreeBSD profile's layout.
    dumps = {}
    for scenario in ("timecounter", "ok"):
        q = qemu(guest_kernel, memory="128M", smp=1,
                 append="console=ttyS0 kbu.scenario=%s" % scenario)
        q.wait_serial(r"kbu-guest: idle", timeout=30)
        dumps[scenario] = q.dump(str(tmp_path / ("%s.core" % scenario)))
        q.stop()
    rc, obj, err = kbutest.kbu_json("timesource", "--kernel", guest_kernel, "--core",
                                    dumps["timecounter"], "--list")
    assert rc == 0, err
    assert [r["name"] for r in obj["registered"]] == ["dummy"]
    rc, obj, err = kbutest.kbu_json("timesource", "--kernel", guest_kernel, "--core",
                                    dumps["ok"])
    assert rc == 0, err
    cur = obj["current"]
    assert cur["symbol"] == "timecounter" and cur["name"] == "i8254"
    assert cur["frequency"] == 1193182 and cur["quality"] == 0
    rc, obj, err = kbutest.kbu_json("timesource", "--kernel", guest_kernel, "--core",
                                    dumps["ok"], "--list")
    assert [r["name"] for r in obj["registered"]] == ["i8254", "dummy"]
    # The structure at an address, and a field moved as DWARF would say.
    rc, obj, err = kbutest.kbu_json("timesource", "--kernel", guest_kernel, "--core",
                                    dumps["ok"], "--at", "%d" % cur["addr"],
                                    "--field", "name=32:8")
    assert rc == 0 and obj["at"]["name"] == "i8254", err
    rc, out, err = kbutest.kbu("timesource", "--kernel", guest_kernel, "--core", dumps["ok"],
                               "--field", "color=1:2", asan=True)
    assert rc == 2 and "is not a time source field" in err


def test_stores_mode_reads_the_value_each_store_writes(qemu, guest_kernel):
    """--stores: a breakpoint on each store libkbu finds, no hardware watchpoint.
    The value comes from libkbu's decode of the store: the immediate of
    lapic_x2apic_enable's `mov [x2apic_mode], 1`, and for the timecounter
    pointer the register its store copies, read before it executes."""
    q = qemu(guest_kernel, memory="128M", smp=2, paused=True,
             append="console=ttyS0 kbu.scenario=x2apic")
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "break *0x%x" % PVH_ENTRY, "continue", "delete",
        "kbu watch x2apic --stores", "kbu watch timecounter --stores",
        "kbu break msg kbu-guest: idle",
        "continue",
        "kbu watch report --json"])
    assert "Traceback" not in out
    assert re.search(r"^kbu watch: x2apic_mode = 0 \(xAPIC\), watching 1 store instruction", out,
                     re.M), out
    j = json.loads(re.search(r'^(\{"watches".*)$', out, re.M).group(1))
    by = {w["kind"]: w for w in j["watches"]}
    x2 = by["x2apic"]
    assert [(c["old"], c["new"]) for c in x2["changes"]] == [(0, 1)], x2
    assert x2["changes"][0]["where"].startswith("lapic_x2apic_enable+")
    assert x2["value"] == 1
    # the timecounter's stores copy a register: its value at the store is the new pointer
    rc, obj, err = kbutest.kbu_json("msgrefs", "--kernel", guest_kernel, "--data", "timecounter:8")
    kinds = {r["stored"]["kind"] for r in obj["refs"] if r["access"] == "write" and r["stored"]}
    assert "register" in kinds, obj["refs"]
    rc, syms, err = kbutest.kbu_json("sym", "--kernel", guest_kernel, "dummy_timecounter",
                                     "i8254_timecounter")
    addr = {r["symbol"]: r["address"] for r in syms["results"]}
    tc = by["timecounter"]
    assert [(c["old"], c["new"]) for c in tc["changes"]] == [
        (addr["dummy_timecounter"], addr["i8254_timecounter"])], tc
