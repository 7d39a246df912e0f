"""A real FreeBSD 14.2 kernel, as kbu meets it (tests/targets/freebsd-14.2/).

The kernel itself cannot ship; its facts do: FACTS.md (layout, notes, names,
struct layouts, how it boots and fails), kernel.syms (its `nm -n`) and two
console logs. kbu must identify and read it without being told the OS, and
the test kernel must keep every trap listed there, so that what passes here
passes on the real kernel. Nothing here passes --os.
"""
import os
import re
import subprocess

import pytest

import kbutest

TARGET = os.path.join(os.path.dirname(__file__), "targets", "freebsd-14.2")
FACTS = os.path.join(TARGET, "FACTS.md")
SYMS = os.path.join(TARGET, "kernel.syms")
QBOOT_LOG = os.path.join(TARGET, "serial-qboot-smp2.log")
SEABIOS_LOG = os.path.join(TARGET, "serial-seabios-acpi-smp4.log")

# NetBSD/amd64 symbols, each from NetBSD's sources: kern_assert
# (sys/lib/libkern/kern_assert.c), panic, vpanic, panicstr (sys/kern/subr_prf.c),
# msgbufp (sys/kern/subr_log.c), timecounter, timecounters, tc_init
# (sys/kern/kern_tc.c), x2apic_mode (sys/arch/x86/x86/lapic.c), hvm_start_paddr
# (sys/arch/xen/xen/hypervisor.c), ncpu (sys/kern/subr_cpu.c), idle_loop
# (sys/kern/kern_idle.c), uvm_init (sys/uvm/uvm_init.c), start_pvh and start
# (sys/arch/amd64/amd64/locore.S), main (sys/kern/init_main.c).
NETBSD_SYMS = """\
ffffffff80200000 T start
ffffffff8020b440 T start_pvh
ffffffff80210000 T main
ffffffff80211000 T kern_assert
ffffffff80212000 T panic
ffffffff80212100 T vpanic
ffffffff80213000 T tc_init
ffffffff80214000 T idle_loop
ffffffff80215000 T uvm_init
ffffffff80a00000 B timecounter
ffffffff80a00008 b timecounters
ffffffff80a00010 B msgbufp
ffffffff80a00018 B panicstr
ffffffff80a00020 B ncpu
ffffffff80a00028 B x2apic_mode
ffffffff80a00030 B hvm_start_paddr
"""


def facts_text():
    with open(FACTS) as f:
        return f.read()


def facts_layout(struct):
    """{field: offset} of a struct as FACTS.md states it ("tc_name 32, ...")."""
    text = " ".join(facts_text().split())
    m = re.search(r"`struct %s` is (\d+) bytes — (.*?)\." % struct, text)
    assert m, "FACTS.md has no layout for struct %s" % struct
    fields = dict((name, int(off)) for name, off in
                  re.findall(r"\b((?:tc|msg)_\w+) (\d+)", m.group(2)))
    assert len(fields) >= 9, fields
    return int(m.group(1)), fields


def test_os_picks_freebsd_from_the_real_symbols():
    rc, j, err = kbutest.kbu_json("os", "--symbols", SYMS)
    assert rc == 0, err
    assert j["name"] == "freebsd"
    cand = {c["name"]: c for c in j["candidates"]}
    # The local start_kernel does not make it Linux: Linux's roles do not resolve.
    assert not cand["linux"]["fits"] and cand["linux"]["roles_resolved"] <= 2
    assert cand["freebsd"]["roles_resolved"] == cand["freebsd"]["roles_named"]
    assert cand["freebsd"]["chosen"]
    rc, out, _ = kbutest.kbu("sym", "--symbols", SYMS, "start_kernel")
    assert rc == 0 and re.search(r"start_kernel\s+0xffffffff809000ac\s+start_kernel\s+\S+\s+t\b", out), out


def test_os_picks_netbsd_from_netbsd_symbols(tmp_path):
    p = tmp_path / "netbsd.syms"
    p.write_text(NETBSD_SYMS)
    rc, j, err = kbutest.kbu_json("os", "--symbols", str(p))
    assert rc == 0, err
    assert j["name"] == "netbsd"
    assert "9 of its 9 roles resolve" in j["decided_by"]


@pytest.mark.linux
def test_os_picks_linux_from_debians_system_map(linux_target):
    rc, j, err = kbutest.kbu_json("os", "--symbols", linux_target.system_map)
    assert rc == 0, err
    assert j["name"] == "linux"
    rc, j, err = kbutest.kbu_json("os", "--kernel", linux_target.vmlinux)
    assert rc == 0, err
    assert j["name"] == "linux" and j["identification"]["xen_guest_os"] == "linux"


def test_os_that_fits_nothing_says_what_was_checked(tmp_path):
    p = tmp_path / "other.syms"
    p.write_text("ffffffff80200000 T main\nffffffff80200100 T panic\n")
    rc, out, err = kbutest.kbu("os", "--symbols", str(p))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1
    assert "fits no known OS profile" in err
    for name in ("freebsd", "netbsd", "linux"):
        assert re.search(r"%s \d+/\d+ roles" % name, err), err


def test_every_freebsd_role_resolves_in_the_real_symbols():
    rc, j, err = kbutest.kbu_json("os", "--symbols", SYMS)
    assert rc == 0, err
    by_role = {}
    for s in j["symbols"]:
        by_role.setdefault(s["role"], []).append(s)
    assert set(by_role) >= {"x2apic", "timesource", "timesource_list", "time_register",
                            "asserts", "msgbuf", "start_info", "ncpus", "panicstr"}
    for role, syms in by_role.items():
        assert any(s["addr"] is not None for s in syms), "role %s: none of %s resolves" % (
            role, [s["name"] for s in syms])
    names = {s["name"]: s["addr"] for s in j["symbols"]}
    # Static names (local b/d symbols) resolve too.
    assert names["start_info"] == 0xffffffff81078500
    assert names["timecounters"] == 0xffffffff80e49068
    # FreeBSD 14.2 has no kassert_panic: the profile falls back to panic/vpanic.
    assert names["kassert_panic"] is None and names["vpanic"] == 0xffffffff805b5360


@pytest.mark.parametrize("struct,layout,cnames", [
    ("timecounter", "timesource", {"frequency": "tc_frequency", "name": "tc_name",
                                   "quality": "tc_quality", "next": "tc_next"}),
    ("msgbuf", "msgbuf", {"ptr": "msg_ptr", "magic": "msg_magic", "size": "msg_size",
                          "wseq": "msg_wseq", "rseq": "msg_rseq", "seqmod": "msg_seqmod"}),
])
def test_freebsd_profile_layouts_are_the_real_ones(struct, layout, cnames):
    _, want = facts_layout(struct)
    rc, j, err = kbutest.kbu_json("os", "--symbols", SYMS)
    assert rc == 0, err
    lay = j["layouts"][layout]
    assert lay["struct"] == struct
    got = {f["key"]: (f["cname"], f["offset"]) for f in lay["fields"]}
    for key, cname in cnames.items():
        assert got[key] == (cname, want[cname]), (key, got.get(key), want)


# ---- the test kernel keeps every trap the real kernel sets ----

def nm(path):
    out = subprocess.run(["nm", path], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = parts[1]
    return syms


def test_test_kernel_is_branded_freebsd(guest_kernel):
    hdr = subprocess.run(["readelf", "-h", guest_kernel], capture_output=True, text=True).stdout
    assert re.search(r"OS/ABI:\s+UNIX - FreeBSD", hdr), hdr
    assert "EI_OSABI = FreeBSD (9)" in facts_text()
    rc, j, err = kbutest.kbu_json("os", "--kernel", guest_kernel)
    assert rc == 0, err
    assert j["name"] == "freebsd"
    assert j["identification"]["elf_osabi"] == 9
    assert j["identification"]["xen_guest_os"] == "FreeBSD"


def test_test_kernel_notes_are_the_real_kernels(guest_kernel):
    rc, j, err = kbutest.kbu_json("notes", guest_kernel)
    assert rc == 0, err
    notes = {n["name"]: n for n in j["notes"] if n["owner"] == "Xen"}
    text = " ".join(facts_text().split())
    for name, value in (("GUEST_OS", "FreeBSD"), ("GUEST_VERSION", "0x156490"),
                        ("XEN_VERSION", "xen-3.0"), ("LOADER", "generic"), ("PAE_MODE", "yes"),
                        ("BSD_SYMTAB", "yes")):
        assert '%s "%s"' % (name, value) in text, "FACTS.md changed: %s" % name
        assert notes[name]["value"] == value, notes[name]
    feats = "writable_descriptor_tables|auto_translated_physmap|supervisor_mode_kernel|" \
            "hvm_callback_vector"
    assert feats in text
    assert notes["FEATURES"]["value"] == feats.replace("|", ", ")
    assert notes["PADDR_OFFSET"]["number"] == 0
    assert notes["VIRT_BASE"]["number"] == 0xffffffff80000000
    assert set(notes) >= {"HYPERCALL_PAGE", "HV_START_LOW", "L1_MFN_VALID", "SUSPEND_CANCEL",
                          "PHYS32_ENTRY"}
    assert notes["PHYS32_ENTRY"]["size"] == 4


def test_test_kernel_names_are_the_real_kernels(guest_kernel):
    syms = nm(guest_kernel)
    real = nm_file(SYMS)
    # A local text start_kernel, in the entry code, as FreeBSD's.
    assert syms.get("start_kernel") == "t" and real["start_kernel"] == "t"
    # No kassert_panic: KASSERT calls panic -> vpanic.
    assert "kassert_panic" not in syms and "kassert_panic" not in real
    assert syms["panic"] == "T" and syms["vpanic"] == "T"
    # The walker is inlined: no symbol, in either.
    assert "mptable_walk_table" not in syms and "mptable_walk_table" not in real
    # Static pointers and lists, as in FreeBSD.
    for name in ("start_info", "mpct", "mpfps"):
        assert syms.get(name) == "b" and real[name] == "b", name
    assert syms.get("timecounters") == "d" and real["timecounters"] == "d"
    for name in ("timecounter", "x2apic_mode", "msgbufp", "mp_ncpus", "tsc_freq", "cpu_high",
                 "hv_high", "vm_guest", "tc_init", "lapic_init", "mi_startup", "hammer_time",
                 "hammer_time_xen", "xen_start32", "msgbuf_addchar", "panicstr"):
        assert name in syms and name in real, name
    # NetBSD's names are not there.
    assert "hvm_start_paddr" not in syms and "hvm_start_paddr" not in real


def nm_file(path):
    syms = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                syms[parts[2]] = parts[1]
    return syms


def test_test_kernel_struct_layouts_are_the_real_ones(guest_kernel):
    out = kbutest.gdb_batch(guest_kernel, None, ["ptype /o struct timecounter",
                                                 "ptype /o struct msgbuf"])
    for struct in ("timecounter", "msgbuf"):
        size, fields = facts_layout(struct)
        block = out[out.index("type = struct %s {" % struct):]
        for name, off in fields.items():
            assert re.search(r"/\*\s+%d\s+\|\s+\d+ \*/\s+.*\b%s;" % (off, name), block) or \
                re.search(r"/\*\s+%d\s+\|\s+\d+ \*/\s+struct \w+ \{.*?\} %s;" % (off, name),
                          block, re.S), (struct, name, off)
        assert re.search(r"total size \(bytes\):\s+%d \*/\n\s*\}" % size, block), block[:2000]


def test_inlined_walker_and_gdbs_truncation(guest_kernel):
    """FACTS: `break mptable_walk_table` finds several inlined locations; without
    `set osabi none`, Debian's GDB cuts them to 32 bits (the devlog's 0x809659bf)."""
    cut = kbutest.gdb_batch(guest_kernel, None, ["break mptable_walk_table"], osabi_none=False)
    m = re.search(r"Breakpoint 1 at (0x[0-9a-f]+): mptable_walk_table. \((\d+) locations\)", cut)
    assert m, cut
    assert int(m.group(1), 16) < 1 << 32 and int(m.group(2)) >= 4
    full = kbutest.gdb_batch(guest_kernel, None, ["break mptable_walk_table"])
    m = re.search(r"Breakpoint 1 at (0x[0-9a-f]+): mptable_walk_table. \((\d+) locations\)", full)
    assert m and int(m.group(1), 16) >= 0xffffffff80000000, full


def real_lines(path):
    with open(path, errors="replace") as f:
        return [l.rstrip("\r\n") for l in f]


def test_test_kernel_console_has_the_real_lines(qemu, guest_kernel):
    """The lines a porter (and kbu) reads on the real console appear, verbatim, on
    the test kernel's: the MP table banner, the LAPIC event timer, the TSC panic."""
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=tsc")
    q.wait_serial(r"^time = 1$", timeout=60)
    ours = q.serial_text().replace("\r", "").splitlines()
    real = real_lines(QBOOT_LOG)
    for line in ('MPTable: <QBOOT    000000000000>', 'Event timer "LAPIC" quality 600',
                 "panic: TSC not initialized", "cpuid = 0", "time = 1",
                 'Hypervisor: Origin = "TCGTCGTCGTCG"'):
        assert line in real, "the real log lost %r" % line
        assert line in ours, "the test kernel does not print %r:\n%s" % (line, "\n".join(ours))
    # In the real order: MP table, LAPIC, panic.
    for seq in (real, ours):
        i = [seq.index(l) for l in ('MPTable: <QBOOT    000000000000>',
                                    'Event timer "LAPIC" quality 600', "panic: TSC not initialized")]
        assert i == sorted(i)
    # identcpu's CPUID lines in FreeBSD's %b form, VALUE<NAME,...>: the set bits,
    # lowest first, are the names in order, and a name both kernels print is the
    # same bit on both.
    for key in ("Features", "Features2"):
        bits = {}
        for who, seq in (("real", real), ("test", ours)):
            line = next((l for l in seq if l.startswith("  %s=0x" % key)), None)
            m = re.match(r"^  %s=0x([0-9a-f]+)<([^>]*(?:<b\d+>[^>]*)*)>$" % key, line or "")
            assert m, "%s kernel: no %s line in FreeBSD's form: %r" % (who, key, line)
            value, names = int(m.group(1), 16), m.group(2).split(",")
            set_bits = [b for b in range(32) if value >> b & 1]
            assert len(set_bits) == len(names), (who, key, hex(value), names)
            bits[who] = dict(zip(names, set_bits))
        common = set(bits["real"]) & set(bits["test"])
        assert common, (key, bits)
        assert {n: bits["test"][n] for n in common} == {n: bits["real"][n] for n in common}


def test_test_kernel_start_info_is_a_static_kernbase_pointer(qemu, guest_kernel):
    """`start_info` holds the start info's KERNBASE address (0xffffffff800f31e0 with
    qboot), and FreeBSD's in-place entry_count rewrite leaves the checksum bad."""
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=tsc", paused=True)
    out = kbutest.gdb_batch(guest_kernel, q.port, [
        "break vpanic", "continue", "print/x (unsigned long)start_info",
        "print ((struct mpct *)mpct)->entry_count"], timeout=120)
    assert "0xffffffff800f31e0" in out, out
    assert "0xffffffff800f31e0" in facts_text()
    m = re.search(r"^\$2 = (\d+)$", out, re.M)
    assert m and int(m.group(1)) == 21, out
    assert "(21 for\n  -smp 2)" in facts_text() or "21 for -smp 2" in " ".join(facts_text().split())


def test_gdbs_cut_addresses_are_named_on_the_real_symbols():
    # FACTS.md: Debian's GDB, without a FreeBSD OS ABI, printed lapic_init at
    # 0x8093ffc0 and `break mptable_walk_table` at 0x80944bc8.
    rc, j, err = kbutest.kbu_json("sym", "--symbols", SYMS, "0x8093ffc0", "0x80944bc8")
    assert rc == 0, err
    found = {p["fields"]["full_address"]: p["fields"]["symbol"]
             for p in j["problems"] if p["code"] == "sym.truncated"}
    assert found[0xffffffff8093ffc0] == "lapic_init"
    # the walker is inlined: its cut address falls in the function that holds that copy
    assert found[0xffffffff80944bc8] == "mptable_pci_probe_table"
