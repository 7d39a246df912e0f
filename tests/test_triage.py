"""Post-mortem triage: `kbu dump` in a live GDB session, then `kbu triage --core`
on the file, must report what the live session saw on the same boot: the CPUs
and their modes, the MP table's processors, the command line, the kernel's
x2APIC flag and time source (read by GDB through DWARF, not by kbu's profile),
and the panic message the console printed. Bad dumps and the wrong kernel give
one clear line."""
import json
import os
import re
import shutil
import struct
import tempfile

import pytest

import kbutest

RECIPES = "kbu recipe panic-triage,where-are-my-cpus,timecounter-stuck,x2apic-mode --here --json"
LIVE_COMMANDS = ["kbu cpus --json", "kbu mptable --json", "kbu pvh --json", "kbu triage --json",
                 RECIPES]


@pytest.fixture
def tmpdir_():
    d = tempfile.mkdtemp(prefix=kbutest.qemu.tmp_prefix("triage"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def live_session(kernel, port, dump_path, gdb_exprs, extra_setup=(), timeout=180):
    """One GDB session: the live kbu commands, GDB's own reading of the kernel's
    variables, then `kbu dump`. Returns ({command: output}, whole output)."""
    cmds = list(extra_setup)
    keys = LIVE_COMMANDS + ["print " + e for e in gdb_exprs] + ["kbu dump " + dump_path]
    for i, c in enumerate(keys):
        cmds += ["echo @@%d\\n" % i, c]
    cmds.append("echo @@end\\n")
    out = kbutest.gdb_kbu(kernel, port, cmds, timeout=timeout)
    parts = {}
    for i, c in enumerate(keys):
        m = re.search(r"^@@%d\n(.*?)^@@" % i, out, re.S | re.M)
        assert m, "no output for %r in:\n%s" % (c, out[-3000:])
        parts[c] = m.group(1).strip()
    return parts, out


def live_json(parts, cmd):
    text = parts[cmd]
    start = text.find("{")
    assert start >= 0, "%s gave no JSON: %s" % (cmd, text[:500])
    return json.loads(text[start:])


def gdb_string(text):
    """The string of `print p` output: $1 = 0x... "dummy"."""
    m = re.search(r'"((?:[^"\\]|\\.)*)"', text)
    assert m, "GDB printed no string: %r" % text
    return m.group(1)


def gdb_int(text):
    m = re.search(r"= (-?\d+|true|false)$", text, re.M)
    assert m, "GDB printed no number: %r" % text
    return {"true": 1, "false": 0}.get(m.group(1)) if m.group(1) in ("true", "false") \
        else int(m.group(1))


def triage(core, *args, asan=False):
    rc, obj, err = kbutest.kbu_json("triage", "--core", core, *args, asan=asan, timeout=240)
    assert rc == 0 and obj, "kbu triage failed (%d): %s" % (rc, err)
    return obj


def compare_facts(t, parts, x2apic_text, ts_text, append, console_panic):
    """The dump's triage against the live commands and GDB on the same boot."""
    cpus = live_json(parts, "kbu cpus --json")
    assert len(t["cpus"]) == cpus["ncpus"] == len(cpus["cpus"])
    for dead, alive in zip(t["cpus"], cpus["cpus"]):
        assert dead["cpu"] == alive["cpu"]
        assert dead["paging"] == alive["paging"], (dead, alive)
        assert dead["rip"] == alive["gpr"]["rip"], (dead, alive)

    mp = live_json(parts, "kbu mptable --json")
    live_ids = [p["apic_id"] for p in mp["entries"]["processors"]]
    assert [c["apic_id"] for c in t["mptable"]["cpus"]] == live_ids
    assert t["mptable"]["address"] == mp["floating_pointer"]["address"]

    pvh = live_json(parts, "kbu pvh --json")
    assert t["start_info"]["cmdline"] == pvh["start_info"]["cmdline"]
    assert append in t["start_info"]["cmdline"]

    assert t["kernel"]["x2apic"] == gdb_int(x2apic_text)
    assert t["kernel"]["timesource"] == gdb_string(ts_text)

    if console_panic is None:
        assert t["panic"]["message"] is None
    else:
        assert t["panic"]["message"] == console_panic

    # The same command live (memory read through GDB) says the same things.
    live = live_json(parts, "kbu triage --json")
    for key in ("cpus", "reloc", "mptable", "start_info", "kernel", "panic"):
        assert live[key] == t[key], key
    assert live["dmesg"]["tail"] == t["dmesg"]["tail"]
    assert live["source"]["kind"] != t["source"]["kind"] == "core"


def compare_recipes(t, parts):
    """The live recipes, inspecting the same stop (--here), found the same facts."""
    recipes = {r["recipe"]: r for r in live_json(parts, RECIPES)["recipes"]}
    facts = {name: r.get("facts") or {} for name, r in recipes.items()}
    recipe_panic = facts["panic-triage"].get("message")
    cpus_facts = facts["where-are-my-cpus"]
    assert cpus_facts.get("table_cpus") == t["mptable"]["ncpus"], cpus_facts
    assert cpus_facts.get("entry_count") == t["mptable"]["entry_count"], cpus_facts
    assert cpus_facts.get("kernel_cpus") == t["kernel"]["ncpus"], cpus_facts
    assert facts["timecounter-stuck"].get("now") == t["kernel"]["timesource"], \
        recipes["timecounter-stuck"]
    assert facts["x2apic-mode"].get("kernel_x2apic") == t["kernel"]["x2apic"], \
        recipes["x2apic-mode"]

    assert recipe_panic == t["panic"]["message"], recipes["panic-triage"]


GUEST_CASES = {
    # scenario: (planted time source, x2apic, console panic, a verdict that must be there)
    "tsc": ("dummy", 0, "TSC not initialized", "the kernel panicked: TSC not initialized"),
    "timecounter": ("dummy", 0, None, "timecounter-stuck: timecounter is still dummy"),
    "mpcorrupt": ("dummy", 0, "mptable_walk_table: Unknown MP Config Entry 68",
                  "Unknown MP Config Entry 68"),
    "x2apic": ("i8254", 1, None, "x2apic-mode: x2apic_mode = 1 but the kernel's own CPUID.1:ECX "
               "(cpu_feature2 = 0x"),
    "mptable": (None, 0, None, "where-are-my-cpus: the MP table holds 2 CPUs (APIC ids 0 (BSP), "
                "1), the kernel found 0"),
    "pagefault": (None, 0, "page fault", "the kernel panicked: page fault (Fatal trap 12: page "
                  "fault while in kernel mode in uart_bus_attach+0x"),
}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(GUEST_CASES))
def test_guest_dump_triage_matches_live(qemu, guest_kernel, tmpdir_, scenario):
    want_ts, want_x2, want_panic, want_verdict = GUEST_CASES[scenario]
    append = "console=ttyS0 kbu.scenario=%s" % scenario
    q = qemu(guest_kernel, smp=2, memory="128M", append=append)
    end = q.wait_serial(r"^(panic: (.*)|kbu-guest: idle)$", timeout=60)
    console_panic = end.group(2)
    assert console_panic == want_panic
    core = os.path.join(tmpdir_, "guest.core")
    parts, out = live_session(guest_kernel, q.port, core,
                              ["x2apic_mode", "timecounter->tc_name"])
    assert "kbu dump: wrote %s" % core in out
    assert "triage --core %s --kernel %s" % (core, os.path.abspath(guest_kernel)) in out
    q.stop()  # the dump stands alone now

    t = triage(core, "--kernel", guest_kernel)
    compare_facts(t, parts, parts["print x2apic_mode"], parts["print timecounter->tc_name"],
                  append, console_panic)
    if want_ts:
        assert t["kernel"]["timesource"] == want_ts
    assert t["kernel"]["x2apic"] == want_x2
    assert t["reloc"]["virt_found"] and t["reloc"]["virt_slide"] == 0
    verdicts = [p["message"] for p in t["problems"] if p["path"] == "verdict"]
    assert any(want_verdict in v for v in verdicts), verdicts

    rc, text, err = kbutest.kbu("triage", "--core", core, "--kernel", guest_kernel, "--strict",
                                asan=True)
    problems = t["verdict"]["problems"]
    assert rc == (1 if problems else 0), (rc, err)
    assert "verdict" in text and ("! " in text) == bool(problems)
    compare_recipes(t, parts)


@pytest.mark.linux
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_linux_dump_triage_matches_live(linux_qemu, linux_target, tmpdir_):
    q = linux_qemu(smp=2)
    serial = q.serial_text()
    m = re.search(r"Kernel panic - not syncing: (.*)$", serial, re.M)
    assert m, serial[-2000:]
    console_panic = m.group(1).strip()
    assert console_panic.startswith("VFS: Unable to mount root fs")
    panic_cpu = int(re.search(r"^(?:\[[ .\d]+\] )?CPU: (\d+) PID:", serial, re.M).group(1))
    core = os.path.join(tmpdir_, "linux.core")
    # GDB reads the variables through vmlinux-dbg's DWARF; kbu through its profile.
    parts, out = live_session(linux_target.vmlinux_dbg, q.port, core,
                              ["x2apic_mode", "curr_clocksource->name"],
                              extra_setup=["set kbu symbols %s" % linux_target.system_map,
                                           # the recipes look at the selected vCPU: the panicking one
                                           "thread %d" % (panic_cpu + 1)],
                              timeout=300)
    assert "--symbols %s" % linux_target.system_map in out
    append = "console=ttyS0"
    q.stop()

    t = triage(core, "--kernel", linux_target.vmlinux, "--symbols", linux_target.system_map)
    compare_facts(t, parts, parts["print x2apic_mode"], parts["print curr_clocksource->name"],
                  append, console_panic)
    assert [c["apic_id"] for c in t["mptable"]["cpus"]] == [0, 1]
    assert all(c["started"] for c in t["cpus"])
    assert "Kernel panic - not syncing" in t["dmesg"]["tail"]
    verdicts = [p["message"] for p in t["problems"] if p["path"] == "verdict"]
    assert any("the kernel panicked: VFS: Unable to mount root fs" in v for v in verdicts)

    # The DWARF vmlinux alone (its own symbol table) gives the same facts.
    t2 = triage(core, "--kernel", linux_target.vmlinux_dbg)
    for key in ("cpus", "mptable", "start_info", "panic"):
        assert t2[key] == t[key], key
    for key in ("x2apic", "timesource", "ncpus"):
        assert t2["kernel"][key] == t["kernel"][key], key
    compare_recipes(t, parts)


# ---- bad input -----------------------------------------------------------------

@pytest.fixture(scope="module")
def guest_core(guest_kernel):
    """One test-kernel dump (tsc scenario) shared by the bad-input tests."""
    d = tempfile.mkdtemp(prefix=kbutest.qemu.tmp_prefix("triage-bad"))
    q = kbutest.Qemu(guest_kernel, smp=2, memory="64M",
                     append="console=ttyS0 kbu.scenario=tsc", gdb=False)
    try:
        q.start()
        q.wait_serial(r"^panic: ", timeout=60)
        path = q.dump(os.path.join(d, "tsc.core"))
    finally:
        q.stop()
    yield path
    shutil.rmtree(d, ignore_errors=True)


def one_line_error(args, what):
    rc, out, err = kbutest.kbu("triage", *args, asan=True, timeout=240)
    assert rc == 2, (rc, out, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("kbu: triage: ")
    assert re.search(what, lines[0]), lines[0]
    assert out == ""
    return lines[0]


def test_truncated_dump(guest_core, guest_kernel, tmpdir_):
    cut = os.path.join(tmpdir_, "cut.core")
    with open(guest_core, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(os.path.getsize(guest_core) // 2))
    one_line_error(["--core", cut, "--kernel", guest_kernel], r"past the end of the file.*truncated")


def test_dump_without_notes(guest_core, guest_kernel, tmpdir_):
    bare = os.path.join(tmpdir_, "nonotes.core")
    data = bytearray(open(guest_core, "rb").read())
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        o = phoff + i * phentsize
        ptype, _f, off, _v, _p, filesz = struct.unpack_from("<IIQQQQ", data, o)
        if ptype == 4:  # PT_NOTE: drop it and wipe what it held
            data[off:off + filesz] = bytes(filesz)
            struct.pack_into("<I", data, o, 0)
    open(bare, "wb").write(data)
    one_line_error(["--core", bare, "--kernel", guest_kernel], r"no CPU notes")


def test_wrong_kernel(guest_core, linux_target):
    line = one_line_error(["--core", guest_core, "--kernel", linux_target.vmlinux,
                           "--symbols", linux_target.system_map],
                          r"does not match this dump")
    assert "wrong kernel" in line and linux_target.vmlinux in line


def test_not_a_dump(guest_kernel):
    one_line_error(["--core", guest_kernel, "--kernel", guest_kernel], r"core|dump|ELF")


@pytest.mark.linux
def test_linux_without_symbols_says_so(linux_dump, linux_target):
    """Debian's stripped vmlinux without System.map: the hardware facts still come
    out, and the report says the kernel's variables were not read and why."""
    d = linux_dump(smp=1)
    rc, t, err = kbutest.kbu_json("triage", "--core", d.path, "--kernel", linux_target.vmlinux,
                                  asan=True, timeout=240)
    assert rc == 0 and t, err
    assert t["source"]["symbols"] == 0
    assert t["kernel"]["x2apic"] is None and t["kernel"]["timesource"] is None
    assert "no symbol table" in t["kernel"]["os_error"] or "--symbols" in t["kernel"]["os_error"]
    assert t["start_info"]["cmdline"].startswith("console=ttyS0")
    assert len(t["cpus"]) == 1 and t["cpus"][0]["paging"] == "4-level paging"


@pytest.mark.linux
@pytest.mark.slow
def test_linux_kaslr_dump(linux_qemu, linux_target, tmpdir_):
    """The bzImage boot slides the kernel: triage finds the slide the console
    prints, and still reads the message buffer and the kernel's variables there."""
    q = linux_qemu(image="bzimage")
    serial = q.serial_text()
    offset = kbutest.kernel_offset(serial)
    assert offset is not None, serial[-1500:]
    core = q.dump(os.path.join(tmpdir_, "kaslr.core"))
    q.stop()
    t = triage(core, "--kernel", linux_target.vmlinux, "--symbols", linux_target.system_map)
    assert t["reloc"]["virt_found"] and t["reloc"]["virt_slide"] == offset
    console_panic = re.search(r"Kernel panic - not syncing: (.*)$", serial, re.M).group(1).strip()
    assert t["panic"]["message"] == console_panic
    assert t["kernel"]["timesource"]  # read at link + slide
    assert t["cpus"][0]["where"] != "-" and "init_scratch" not in t["cpus"][0]["where"]
    verdicts = [p["message"] for p in t["problems"] if p["path"] == "verdict"]
    assert any("0x%x above its link address" % offset in v for v in verdicts) or offset == 0


def phys_offset(data, paddr):
    """File offset of guest physical paddr in a plain ELF64 dump."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        ptype, _f, off, _v, pa, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if ptype == 1 and pa <= paddr < pa + filesz:
            return off + paddr - pa
    raise AssertionError("physical 0x%x is not in the dump" % paddr)


def test_scrambled_kernel_data_never_crashes(guest_core, guest_kernel, tmpdir_):
    """The kernel's data segment (msgbuf, timecounter, panicstr, start_info...)
    overwritten with random bytes: triage reports what it can or refuses in one
    line, never a sanitizer report, and never invents a panic."""
    import random
    data = bytearray(open(guest_core, "rb").read())
    # the test kernel's rw segment: link 0xffffffff80204000, loaded at 0x204000, 0x11000 bytes
    base = phys_offset(data, 0x204000)
    path = os.path.join(tmpdir_, "scrambled.core")
    clean = triage(guest_core, "--kernel", guest_kernel)
    changed = 0
    for seed in range(12):
        rnd = random.Random(seed)
        d = bytearray(data)
        for _ in range(rnd.choice([8, 64, 512])):
            off = base + rnd.randrange(0x11000)
            d[off] = rnd.randrange(256)
        if seed % 3 == 0:  # also point every 8-byte slot of a region somewhere random
            start = base + rnd.randrange(0x11000 - 0x400)
            for o in range(start, start + 0x400, 8):
                struct.pack_into("<Q", d, o, rnd.getrandbits(64))
        open(path, "wb").write(d)
        rc, out, err = kbutest.kbu("triage", "--core", path, "--kernel", guest_kernel, "--json",
                                   asan=True, timeout=240)
        assert rc in (0, 2), "seed %d: exit %d\n%s" % (seed, rc, err[-3000:])
        if rc == 0:
            t = json.loads(out)
            msg = t["panic"]["message"]
            assert msg is None or isinstance(msg, str)
            changed += any(t[k] != clean[k] for k in ("kernel", "dmesg", "panic", "start_info"))
        else:
            changed += 1
        if rc == 2:
            assert len(err.strip().splitlines()) == 1, err
    assert changed >= 6, "the scrambling hardly reached what triage reads (%d of 12)" % changed


def test_kbu_dump_refuses_clearly(qemu, guest_kernel, tmpdir_):
    """Without a target, to a missing directory, over an existing file: one line each,
    and the guest is not disturbed (the later dump still works)."""
    out = kbutest.gdb_kbu(guest_kernel, None, ["kbu dump %s/x.core" % tmpdir_])
    assert "kbu dump: kbu dump needs a live target" in out
    q = qemu(guest_kernel, smp=1, memory="64M", append="console=ttyS0 kbu.scenario=tsc")
    q.wait_serial(r"^panic: ", timeout=60)
    existing = os.path.join(tmpdir_, "exists.core")
    open(existing, "w").write("keep me")
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "kbu dump %s/no/such/dir/x.core" % tmpdir_,
        "kbu dump " + existing,
        "kbu dump -f " + existing])
    assert "kbu dump: no directory %s/no/such/dir" % tmpdir_ in out
    assert "kbu dump: %s exists (kbu dump -f FILE overwrites it)" % existing in out
    assert "kbu dump: wrote %s" % existing in out
    assert "Traceback" not in out
    t = triage(existing, "--kernel", guest_kernel)
    assert t["panic"]["message"] == "TSC not initialized"
    assert len(t["cpus"]) == 1


def test_early_dump_at_the_pvh_entry(qemu, guest_kernel, tmpdir_):
    """A dump taken at the PVH entry (32-bit, paging off): the kernel is found
    physically only, the start info through %ebx, and the variables' initial
    values are noted, not judged."""
    q = qemu(guest_kernel, smp=2, memory="64M", append="console=ttyS0 kbu.scenario=tsc",
             paused=True)
    core = os.path.join(tmpdir_, "entry.core")
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["break *0x200000", "continue",
                                                 "kbu dump " + core])
    assert "kbu dump: wrote %s" % core in out, out
    q.stop()
    t = triage(core, "--kernel", guest_kernel, asan=True)
    assert t["cpus"][0]["mode"] == "protected mode, paging off"
    assert t["cpus"][0]["rip"] == 0x200000
    assert not t["reloc"]["virt_found"] and t["reloc"]["phys_found"]
    assert t["start_info"]["cmdline"] == "console=ttyS0 kbu.scenario=tsc"
    assert "%ebx" in t["start_info"]["how"]
    assert t["panic"]["message"] is None
    assert t["kernel"]["ncpus"] == 0
    assert t["verdict"]["problems"] == 0
    notes = [p["message"] for p in t["problems"] if p["path"] == "verdict"]
    assert any("an early dump" in n for n in notes), notes
