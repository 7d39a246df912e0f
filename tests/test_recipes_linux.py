"""Triage recipes on Debian's cloud kernel (the PVH vmlinux from scripts/linux-target,
its System.map passed with --symbols), booted on -M microvm,acpi=off to its
"VFS: Unable to mount root fs" panic. Two boots are shared by all tests:
scripts/kbu-triage with -smp 2 running every recipe that applies to Linux, and
a GDB session on -smp 4 running `kbu recipe` (text, then JSON on the same stop).
"""
import json
import re
import uuid

import pytest

import kbutest
from test_recipes import triage

pytestmark = [pytest.mark.linux, pytest.mark.slow, pytest.mark.timeout(400)]

# panic-triage is asked for early: it runs last all the same (it lets the panic run on)
LINUX_RECIPES = ["pvh-entry", "panic-triage", "timecounter-stuck", "where-are-my-cpus",
                 "tsc-not-initialized", "lapic-state", "x2apic-mode"]
TOKEN = "kbu.token=%s" % uuid.uuid4().hex[:12]
CHAIN = ["panic", "mount_block_root", "prepare_namespace", "kernel_init_freeable"]


@pytest.fixture(scope="module")
def smp2(linux_target):
    """scripts/kbu-triage --json --smp 2 with every Linux recipe on one boot."""
    t = triage(",".join(LINUX_RECIPES), linux_target.vmlinux, TOKEN, smp=2, timeout=120,
               opts=["--symbols", linux_target.system_map])
    j = t.json()
    assert [r["recipe"] for r in j["recipes"]] == LINUX_RECIPES
    return t.rc, j, {r["recipe"]: r for r in j["recipes"]}


@pytest.fixture(scope="module")
def smp4(linux_target):
    """kbu recipe in a GDB session attached to a paused -smp 4 guest."""
    q = kbutest.Qemu(linux_target.vmlinux, smp=4, memory="256M", acpi=False, paused=True,
                     append="console=ttyS0", name="recipes-linux")
    try:
        q.start()
        out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
            "set kbu symbols %s" % linux_target.system_map,
            "kbu recipe where-are-my-cpus,panic-triage --timeout 120",
            "print $kbu_recipe_status",
            "kbu recipe where-are-my-cpus,panic-triage --json"], timeout=300)
        serial = q.serial_text()
    finally:
        q.stop()
    assert "Traceback" not in out
    line = next((l for l in out.splitlines() if l.startswith('{"status"')), None)
    assert line, "no JSON from kbu recipe:\n" + out[-3000:]
    j = json.loads(line)
    return out, {r["recipe"]: r for r in j["recipes"]}, serial


def test_linux_where_are_my_cpus_smp2(smp2):
    rc, j, by = smp2
    r = by["where-are-my-cpus"]
    assert r["status"] == 1 and rc == 1
    f = r["facts"]
    assert f["table_cpus"] == 2 and f["kernel_cpus"] == 1 and f["mpparse"] is False
    cause = r["verdict"]["cause"]
    assert "holds 2 CPUs" in cause and "found 1" in cause
    # the reason in the kernel's own words
    assert '"smpboot: Allowing 1 CPUs, 0 hotplug CPUs"' in cause
    assert '"APIC: ACPI MADT or MP tables are not detected"' in cause
    assert "acpi=on" in r["verdict"]["next"] and "CONFIG_X86_MPPARSE" in r["verdict"]["next"]


def test_linux_where_are_my_cpus_smp4_text_and_json(smp4):
    out, by, serial = smp4
    r = by["where-are-my-cpus"]
    assert r["status"] == 1 and r["facts"]["table_cpus"] == 4 and r["facts"]["kernel_cpus"] == 1
    assert "holds 4 CPUs (APIC ids 0 (BSP), 1, 2, 3), the kernel found 1" in r["verdict"]["cause"]
    assert "smp: Brought up 1 node, 1 CPU" in serial   # what the recipe quotes is what Linux said
    assert '"smp: Brought up 1 node, 1 CPU"' in r["verdict"]["cause"]
    assert re.search(r"^  kernel's CPU count +__num_online_cpus = 1$", out, re.M)
    assert re.search(r"^VERDICT: problem: the MP table holds 4 CPUs", out, re.M)
    assert re.findall(r"^\$\d+ = (\d+)$", out, re.M) == ["1"]


def test_linux_panic_triage_names_vfs_and_chain(smp2, smp4):
    for r in (smp2[2]["panic-triage"], smp4[1]["panic-triage"]):
        assert r["status"] == 1
        assert r["facts"]["message"].startswith("VFS: Unable to mount root fs on ")
        assert r["facts"]["call_chain"][:4] == CHAIN
        assert "no root file system" in r["verdict"]["cause"]
        assert "-initrd" in r["verdict"]["next"] and "root=/dev/vda" in r["verdict"]["next"]
    out = smp4[0]
    assert re.search(r'^VERDICT: problem: panic "VFS: Unable to mount root fs on .*" raised in '
                     r"mount_block_root \(panic <- mount_block_root <- prepare_namespace <- "
                     r"kernel_init_freeable", out, re.M)


def test_linux_pvh_entry(smp2, linux_target):
    r = smp2[2]["pvh-entry"]
    assert r["status"] == 0
    assert r["facts"]["phys32_entry"] == r["facts"]["rip"] == linux_target.pvh_entry
    assert TOKEN in r["facts"]["cmdline"]
    assert r["facts"]["ebx"] == r["facts"]["start_info"]


def test_linux_tsc_is_calibration(smp2):
    r = smp2[2]["tsc-not-initialized"]
    f = r["facts"]
    assert f["tsc_var"] == "tsc_khz"
    assert any(l.startswith("tsc: ") for l in f["log"])
    assert "Linux calibrates the TSC itself" in r["verdict"]["cause"] or \
        "Linux has a TSC frequency, calibrated" in r["verdict"]["cause"]
    if f["tsc_hz"] == 0:
        assert r["status"] == 1 and "tsc_early_khz" in r["verdict"]["next"]
    else:
        assert r["status"] == 0


def test_linux_tsc_from_the_command_line(linux_target):
    t = triage("tsc-not-initialized", linux_target.vmlinux, "tsc_early_khz=2500000", smp=1,
               timeout=120, opts=["--symbols", linux_target.system_map])
    j = t.json()
    assert t.rc == 0 and j["status"] == 0, j["verdict"]
    assert j["facts"]["tsc_hz"] == 2_500_000_000
    assert "given on the command line (tsc_early_khz=)" in j["verdict"]["cause"]
    # The kernel's own line is quoted; its MHz figure can differ in the last
    # digits from the given frequency when the host is loaded.
    assert re.search(r'"tsc: Detected 2\d{3}\.\d{3} MHz processor"', j["verdict"]["cause"])


def test_linux_clocksource(smp2):
    r = smp2[2]["timecounter-stuck"]
    f = r["facts"]
    assert f["variable"] == "curr_clocksource"
    assert f["now"] in ("refined-jiffies", "jiffies", "tsc", "tsc-early", "hpet", "acpi_pm")
    assert f["registered"], "no clocksource registration seen"
    assert any("Switched to clocksource %s" % f["now"] in l for l in f["log"])
    assert r["status"] == (1 if "jiffies" in f["now"] else 0)


def test_linux_lapic_state(smp2):
    r = smp2[2]["lapic-state"]
    assert r["status"] in (0, 1)
    # read at the panic entry, before panic-triage let the panic go on (Linux's panic
    # ends with disable_local_APIC, which would clear the SVR enable bit)
    end = {k: v for k, v in r["end_state"].items() if k != "backtrace"}
    assert end["kind"] == "panic" and end.get("reused") is True, end
    assert not end.get("ran_on"), end
    assert smp2[2]["panic-triage"]["end_state"].get("ran_on") is True
    cpus = r["facts"]["cpus"]
    assert len(cpus) == 2 and cpus[0]["mode"] == "xAPIC"


def test_linux_x2apic_mode_watched_from_the_first_instruction(smp2):
    r = smp2[2]["x2apic-mode"]
    f = r["facts"]
    # TCG has no x2APIC and Linux never sets its flag: watched from the reset
    # vector to the panic, it stays 0 (tests/test_porter_pokes.py sets it)
    assert r["status"] == 0, r["verdict"]
    assert (f["variable"], f["kernel_x2apic"], f["cpuid_x2apic"]) == ("x2apic_mode", 0, False)
    assert f["changes"] == []
    assert r["verdict"]["cause"].startswith("xAPIC mode: x2apic_mode = 0 and it never changed")


def test_interrupted_triage_stops_qemu(linux_target, tmp_path):
    """SIGTERM to kbu-triage mid-boot: exit 2, its QEMU and run directory are gone."""
    import os
    import signal
    import subprocess
    from test_recipes import TRIAGE, _qemu_using
    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.Popen([TRIAGE, "panic-triage", "--timeout", "120", "--symbols",
                          linux_target.system_map, "--", linux_target.vmlinux],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # mid-boot: QEMU runs and the guest has begun to print (events, not delays)
    gone = lambda: p.poll() is not None and "kbu-triage exited (%d): %s" % (p.returncode, p.stderr.read())
    kbutest.wait_until(lambda: _qemu_using(str(tmp_path)), "QEMU started by kbu-triage", 120, gone)
    kbutest.wait_until(lambda: any(os.path.getsize(os.path.join(d, f)) > 0
                                   for d, _s, fs in os.walk(tmp_path) for f in fs
                                   if f == "serial.log"), "the guest's first console output", 120, gone)
    p.send_signal(signal.SIGTERM)
    out, err = kbutest.load.communicate(p, 60)
    assert p.returncode == 2
    assert "interrupted: stopping QEMU" in err and "Traceback" not in err
    kbutest.wait_until(lambda: not _qemu_using(str(tmp_path)), "QEMU gone after kbu-triage", 30)
    assert os.listdir(tmp_path) == []


def test_linux_without_system_map_says_what_is_missing(linux_target):
    t = triage("panic-triage", linux_target.vmlinux, smp=1, json_out=False)
    assert t.rc == 2
    assert re.search(r"^VERDICT: undecided: could not run: .*needs its System.map: .*--symbols",
                     t.out, re.M), t.out
