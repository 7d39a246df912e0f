"""Triage recipes end to end on the test kernel: scripts/kbu-triage boots each
scenario paused, runs the recipe in GDB and must name the planted cause in its
JSON verdict and exit status (0 no problem, 1 problem, 2 undecided); one text
run per recipe checks what a porter reads. `kbu recipe` is also run inside an
attached GDB session."""
import json
import os
import re
import subprocess
import tempfile
import uuid

import kbutest
from kbutest import paths

TRIAGE = os.path.join(paths.ROOT, "scripts", "kbu-triage")
RECIPES = ["lapic-state", "mptable-walk", "panic-triage", "pvh-entry", "timecounter-stuck",
           "tsc-not-initialized", "where-are-my-cpus", "where-are-my-devices", "x2apic-mode"]


class Triage:
    def __init__(self, rc, out, err, tmp):
        self.rc, self.out, self.err, self.tmp = rc, out, err, tmp

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            raise AssertionError("kbu-triage gave no JSON (rc %d):\n%s\n%s" % (
                self.rc, self.out, self.err))


def triage(recipe, kernel, append="", json_out=True, smp=2, timeout=20, extra=(), opts=()):
    """Runs scripts/kbu-triage in a private TMPDIR; checks it left nothing behind."""
    tmp = tempfile.mkdtemp(prefix=kbutest.qemu.tmp_prefix("triage"))
    argv = [TRIAGE, recipe, "--smp", str(smp), "--timeout", str(timeout)] + list(opts)
    if json_out:
        argv.append("--json")
    argv += ["--", kernel] + (["-append", "console=ttyS0 " + append] if append else []) + list(extra)
    env = dict(os.environ, TMPDIR=tmp)
    try:
        p = kbutest.run(argv, timeout=240, env=env)
        left = os.listdir(tmp)
        assert left == [], "kbu-triage left %s in its TMPDIR" % left
        assert not _qemu_using(tmp), "a QEMU started by kbu-triage is still running"
    finally:
        subprocess.run(["rm", "-rf", tmp])
    return Triage(p.returncode, p.stdout, p.stderr, tmp)


def _qemu_using(path):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if path.encode() in f.read():
                    return True
        except OSError:
            pass
    return False


_cache = {}


def cached(recipe, kernel, scenario, json_out=True, smp=2):
    key = (recipe, scenario, json_out, smp)
    if key not in _cache:
        _cache[key] = triage(recipe, kernel, "kbu.scenario=" + scenario, json_out, smp)
    return _cache[key]


def verdict(t, rc):
    j = t.json()
    assert t.rc == rc, "exit %d, wanted %d: %s" % (t.rc, rc, j.get("verdict"))
    assert j["status"] == rc
    assert j["verdict"]["result"] == {0: "no problem", 1: "problem", 2: "undecided"}[rc]
    return j


# -- tsc-not-initialized ---------------------------------------------------------

def test_tsc_recipe_names_the_missing_tsc_leaf(guest_kernel):
    j = verdict(cached("tsc-not-initialized", guest_kernel, "tsc"), 1)
    cause = j["verdict"]["cause"]
    assert '"TSC not initialized"' in cause and "lapic_init" in cause
    assert "0x40000010 TSC leaf is absent" in cause and "stop at 0x40000001" in cause
    assert "cpu_high 0xd is below 0x15" in cause
    assert j["facts"]["hv_high"] == 0x40000001 and j["facts"]["cpu_high"] == 0xd
    assert j["facts"]["tsc_hz"] == 0 and j["facts"]["cpuid_tsc_hz"] is None
    assert "-cpu host,+invtsc" in j["verdict"]["next"] and "calibrate" in j["verdict"]["next"]
    assert j["end_state"]["kind"] == "panic" and j["end_state"]["function"] == "lapic_init"


def test_tsc_recipe_text(guest_kernel):
    t = cached("tsc-not-initialized", guest_kernel, "tsc", json_out=False)
    assert t.rc == 1
    assert re.search(r"^VERDICT: problem: lapic_init asserted .*\"TSC not initialized\"", t.out, re.M)
    assert re.search(r"^  hv_high \(0x40000000 EAX\) +0x40000001 ", t.out, re.M)
    assert "next step: " in t.out


def test_tsc_recipe_calibrated_is_no_problem(guest_kernel):
    j = verdict(cached("tsc-not-initialized", guest_kernel, "ok"), 0)
    assert j["facts"]["tsc_hz"] > 100_000_000
    assert "calibrated" in j["verdict"]["cause"]


# -- timecounter-stuck -------------------------------------------------------------

def test_timecounter_recipe_never_left_dummy(guest_kernel):
    j = verdict(cached("timecounter-stuck", guest_kernel, "timecounter"), 1)
    cause = j["verdict"]["cause"]
    assert "never left 'dummy'" in cause and "tc_init was never called" in cause
    assert j["facts"]["now"] == "dummy" and j["facts"]["registered"] == []
    assert j["facts"]["changes"] == []
    # the guest's clockcalib usually fails on "dummy" and says so; the verdict quotes it then
    failed = [l for l in j["facts"]["log"] if "calibration failed" in l]
    if failed:
        assert '"%s"' % failed[-1] in cause


def test_timecounter_recipe_text_and_healthy_boot(guest_kernel):
    t = cached("timecounter-stuck", guest_kernel, "timecounter", json_out=False)
    assert t.rc == 1 and "VERDICT: problem: timecounter never left 'dummy'" in t.out
    j = verdict(cached("timecounter-stuck", guest_kernel, "ok"), 0)
    assert j["facts"]["now"] == "i8254" and j["facts"]["registered"] == ["i8254"]
    assert j["facts"]["changes"][0]["where"].startswith("tc_init")


# -- x2apic-mode ---------------------------------------------------------------------

def test_x2apic_recipe_names_the_switch(guest_kernel):
    j = verdict(cached("x2apic-mode", guest_kernel, "x2apic"), 1)
    cause = j["verdict"]["cause"]
    assert "x2apic_mode = 1" in cause and "lapic_x2apic_enable" in cause
    assert "CPUID.1:ECX.x2APIC is 0" in cause
    assert j["facts"]["kernel_x2apic"] == 1 and j["facts"]["cpuid_x2apic"] is False
    assert [c["where"].split("+")[0] for c in j["facts"]["changes"]] == ["lapic_x2apic_enable"]
    assert j["facts"]["apic_mode"] == "xAPIC"


def test_x2apic_recipe_text(guest_kernel):
    t = cached("x2apic-mode", guest_kernel, "x2apic", json_out=False)
    assert t.rc == 1
    assert re.search(r"^  changes +0 \(xAPIC\) -> 1 \(x2APIC\) on CPU \d+ at lapic_x2apic_enable\+",
                     t.out, re.M)
    assert re.search(r"^! .*x2apic_mode says x2APIC but CPUID has no x2APIC bit", t.out, re.M)


# -- where-are-my-cpus ---------------------------------------------------------------

def test_cpus_recipe_entry_count_zero(guest_kernel):
    j = verdict(cached("where-are-my-cpus", guest_kernel, "mptable"), 1)
    f = j["facts"]
    assert f["table_cpus"] == 2 and f["kernel_cpus"] == 0 and f["entry_count"] == 0
    cause = j["verdict"]["cause"]
    assert "holds 2 CPUs" in cause and "found 0" in cause and "entry_count is 0" in cause
    assert "base_table_length" in j["verdict"]["next"]


def test_cpus_recipe_text(guest_kernel):
    t = cached("where-are-my-cpus", guest_kernel, "mptable", json_out=False)
    assert t.rc == 1
    assert re.search(r"^  kernel's CPU count +mp_ncpus = 0$", t.out, re.M)
    assert re.search(r"^    processor +APIC id 1 ", t.out, re.M)


def test_cpus_recipe_four_cpus(guest_kernel):
    t = triage("where-are-my-cpus", guest_kernel, "kbu.scenario=mptable", smp=4)
    j = verdict(t, 1)
    assert j["facts"]["table_cpus"] == 4 and j["facts"]["kernel_cpus"] == 0
    assert "holds 4 CPUs (APIC ids 0 (BSP), 1, 2, 3)" in j["verdict"]["cause"]


# -- mptable-walk ------------------------------------------------------------------------

def test_mptable_recipe_finds_entry_68(guest_kernel):
    """seeds/000: entry_count one past the 21 entries; the walker that trusts it
    reads the byte after the 236-byte table, 0x44, and panics. One line says so."""
    j = verdict(cached("mptable-walk", guest_kernel, "mpcorrupt"), 1)
    f = j["facts"]
    assert f["entry_count"] == 22 and f["entries"] == 21 and f["base_table_length"] == 236
    cw = f["count_walk"]
    assert cw["outcome"] == "unknown_type" and cw["stop_type"] == 68
    assert cw["stop_addr"] == f["firmware_table"] + 236
    assert f["kernel_table"] == f["firmware_table"]     # FreeBSD's mpct points at it
    cause = j["verdict"]["cause"]
    assert ("entry_count 22 counts one entry more than the 236-byte table holds; a walker that "
            "trusts it reads byte 0x44 (68) after the table") in cause
    assert '"mptable_walk_table: Unknown MP Config Entry 68"' in cause
    assert j["verdict"]["code"] == "mptable.count_walk_unknown_type"
    assert "off-by-one" in j["verdict"]["next"]


def test_mptable_recipe_text_and_entry_count(guest_kernel):
    t = cached("mptable-walk", guest_kernel, "mpcorrupt", json_out=False)
    assert t.rc == 1
    assert re.search(r"^! firmware table: entry_count 22 counts one entry more than the 236-byte "
                     r"table holds; .*'Unknown MP Config Entry 68'$", t.out, re.M)
    j = verdict(cached("mptable-walk", guest_kernel, "mptable"), 1)
    assert "entry_count is 0" in j["verdict"]["cause"]


# -- pvh-entry ---------------------------------------------------------------------------

def test_pvh_recipe_shows_our_command_line(guest_kernel):
    token = "kbu.token=%s" % uuid.uuid4().hex[:12]
    j = verdict(triage("pvh-entry", guest_kernel, "kbu.scenario=ok " + token), 0)
    f = j["facts"]
    assert token in f["cmdline"]
    rc, notes, _ = kbutest.kbu_json("notes", "--kernel", guest_kernel)
    entry = [n["number"] for n in notes["notes"] if n["name"] == "PHYS32_ENTRY"][0]
    assert f["phys32_entry"] == entry and f["rip"] == entry
    assert f["ebx"] == f["start_info"] and f["cr0"] & 1 and not f["cr0"] >> 31
    assert token in j["verdict"]["cause"]
    assert sum(m["size"] for m in f["memmap"] if m["type"] == 1) == f["ram_bytes"] > 0


def test_pvh_recipe_text(guest_kernel):
    token = "kbu.token=%s" % uuid.uuid4().hex[:12]
    t = triage("pvh-entry", guest_kernel, "kbu.scenario=ok " + token, json_out=False)
    assert t.rc == 0
    assert re.search(r'^  command line +".*%s"$' % re.escape(token), t.out, re.M)
    assert "VERDICT: no problem: entered at 0x" in t.out


# -- panic-triage and lapic-state -------------------------------------------------------

def test_panic_recipe_tsc_chain(guest_kernel):
    j = verdict(cached("panic-triage", guest_kernel, "tsc"), 1)
    assert j["facts"]["message"] == "TSC not initialized"
    # The chain FACTS.md gives for the real FreeBSD 14.2 kernel, with DWARF.
    chain = ["panic", "lapic_init", "mptable_setup_local", "apic_setup_local", "mi_startup",
             "start_kernel"]
    assert j["facts"]["call_chain"][:6] == chain
    with open(os.path.join(os.path.dirname(__file__), "targets", "freebsd-14.2", "FACTS.md")) as f:
        assert " ← ".join(chain) in " ".join(f.read().split())
    assert "tsc-not-initialized" in j["verdict"]["next"]


def test_panic_recipe_page_fault_text(guest_kernel):
    t = triage("panic-triage", guest_kernel, "kbu.scenario=pagefault", json_out=False)
    assert t.rc == 1
    assert re.search(r"^VERDICT: problem: panic \"page fault\" .*trapped in uart_bus_attach.*"
                     r"fault virtual address = 0x40000020", t.out, re.M)


def test_lapic_recipe(guest_kernel):
    j = verdict(cached("lapic-state", guest_kernel, "x2apic"), 1)
    assert "x2apic_mode says x2APIC but CPUID has no x2APIC bit" in j["verdict"]["cause"]
    t = cached("lapic-state", guest_kernel, "tsc", json_out=False)
    assert t.rc == 1
    assert re.search(r"^VERDICT: problem: the boot CPU's APIC timer is not running \(LVT masked, "
                     r"initial count 0\).* panic in lapic_init", t.out, re.M)
    assert re.search(r"^  CPU 0 +xAPIC; SVR 0x1ff", t.out, re.M)


# -- every recipe on a healthy boot, sharing it -----------------------------------------

def test_every_recipe_on_a_healthy_boot(guest_kernel):
    t = triage(",".join(RECIPES), guest_kernel, "kbu.scenario=ok")
    j = t.json()
    assert t.rc == 0 and j["status"] == 0
    assert [r["recipe"] for r in j["recipes"]] == RECIPES
    for r in j["recipes"]:
        assert r["status"] == 0, "%s: %s" % (r["recipe"], r["verdict"])
        assert r["verdict"]["result"] == "no problem"
    by = {r["recipe"]: r for r in j["recipes"]}
    assert by["where-are-my-cpus"]["facts"]["kernel_cpus"] == 2
    assert by["panic-triage"]["end_state"]["kind"] == "idle"


# -- the runner itself --------------------------------------------------------------------

def test_list_names_every_recipe():
    p = kbutest.run([TRIAGE, "--list"], timeout=60)
    assert p.returncode == 0
    names = [l.split()[0] for l in p.stdout.splitlines() if l.strip()]
    assert names == RECIPES
    assert all(len(l.split(None, 1)) == 2 for l in p.stdout.splitlines() if l.strip())


def test_timeout_is_undecided(guest_kernel):
    t = triage("panic-triage", guest_kernel, "kbu.scenario=ok", timeout=0.01)
    j = verdict(t, 2)
    assert j["end_state"]["kind"] == "timeout"
    assert "no panic within 0.01 s" in j["verdict"]["cause"]


def test_bad_inputs_fail_cleanly(guest_kernel, tmp_path):
    t = triage("no-such-recipe", guest_kernel, "kbu.scenario=ok", json_out=False)
    assert t.rc == 2 and 'no recipe "no-such-recipe"' in t.err and "Traceback" not in t.err
    assert len(t.err.strip().splitlines()) == 1, t.err   # refused before anything was booted
    junk = tmp_path / "junk"
    junk.write_bytes(b"MZ" + b"\0" * 100)
    t = triage("panic-triage", str(junk), json_out=False)
    assert t.rc == 2 and "is not an ELF" in t.err
    t = triage("panic-triage", str(tmp_path / "missing"), json_out=False)
    assert t.rc == 2 and "does not exist" in t.err


def test_kbu_recipe_in_an_attached_session(qemu, guest_kernel):
    q = qemu(guest_kernel, smp=2, memory="128M", paused=True,
             append="console=ttyS0 kbu.scenario=tsc")
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "kbu recipe panic-triage,tsc-not-initialized",
        "print $kbu_recipe_status",
        "kbu recipe tsc-not-initialized --json",
        "print $kbu_recipe_status",
        "kbu recipe no-such",
        "print $kbu_recipe_status",
        "kbu recipe --list",
        "complete kbu recipe pvh-entry,ti"], timeout=120)
    assert "Traceback" not in out
    assert 'VERDICT: problem: panic "TSC not initialized" raised in lapic_init' in out
    assert "VERDICT: problem: lapic_init asserted" in out
    assert re.findall(r"^\$\d+ = (\d+)$", out, re.M) == ["1", "1", "2"]
    j = json.loads(next(l for l in out.splitlines() if l.startswith('{"command": "verdict"')))
    assert j["status"] == 1 and j["end_state"]["reused"] is True
    assert 'kbu recipe: no recipe "no-such"' in out
    for name in RECIPES:
        assert re.search(r"^%s +\S" % re.escape(name), out, re.M)
    assert re.search(r"^kbu recipe pvh-entry,timecounter-stuck$", out, re.M)
