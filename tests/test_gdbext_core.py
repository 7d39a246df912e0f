"""The kbu GDB extension itself: the prefix command, one-line errors, libkbu
commands forwarded with the CLI's output, and the memory bridge (physical
reads through Qqemu.PhyMemMode, always switched back; monitor xp fallback;
page cache)."""
import re
import textwrap

import kbutest


def no_traceback(out):
    assert "Traceback" not in out and "Python Exception" not in out, out


def test_help_lists_every_subcommand():
    out = kbutest.gdb_batch(None, None, ["help kbu"], load_kbu=True)
    no_traceback(out)
    for sub in ("addr", "break", "cpuid", "cpuid-decode", "lapic", "load", "reloc", "mptable",
                "notes", "pvh", "sym"):
        assert re.search(r"^kbu %s -- \S" % re.escape(sub), out, re.M), sub
    assert "could not load" not in out


def test_errors_are_one_line():
    out = kbutest.gdb_batch(None, None, ["kbu lapic", "kbu cpuid 1", "kbu cpuid zz",
                                         "kbu nosuch", "kbu break lapic_init",
                                         "kbu reloc --align 3"], load_kbu=True)
    no_traceback(out)
    assert "kbu lapic: kbu lapic needs a live target" in out
    assert "kbu cpuid: kbu cpuid needs a live target" in out
    assert 'kbu cpuid: bad leaf "zz"' in out or "kbu cpuid: kbu cpuid needs a live" in out
    assert 'Undefined kbu command: "nosuch".  Try "help kbu".' in out
    assert "kbu break: kbu break needs a kernel ELF" in out
    for line in out.splitlines():
        if line.startswith("kbu ") and ":" in line:
            assert len(line) < 300


def test_forwarded_command_prints_the_cli_report(guest_kernel):
    rc, cli, err = kbutest.kbu("notes", "--kernel", guest_kernel)
    assert rc == 0, err
    out = kbutest.gdb_kbu(guest_kernel, None, ["kbu notes"])
    no_traceback(out)
    assert cli.strip() in out
    out = kbutest.gdb_batch(None, None, ["set kbu kernel %s" % guest_kernel,
                                         "kbu cpuid-decode 0x40000000=0x40000001,0x54474354,"
                                         "0x43544743,0x47435447"], load_kbu=True)
    assert re.search(r"hypervisor signature:\s+TCGTCGTCGTCG", out)


BRIDGE = textwrap.dedent('''
    from kbu import memory as M, native
    b = M.bridge
    def show(tag, v):
        print("RESULT %s %s" % (tag, v))
    p = b.read(M.PHYS, 0x200000, 64)
    show("phys", p.hex())
    show("method", b.phys_method())
    try:
        b.read(M.VIRT, 0xffffffff80200000, 64)
        show("virt_mapped", True)
    except native.Fault:
        show("virt_mapped", False)
    class XpOnly(M.GdbSource):
        packet = None            # no packets: libkbu reads physical memory with xp
    c = native.Ctx(source=XpOnly())
    show("xp_same", c.read(M.PHYS, 0x200000, 64) == p)
    show("xp_method", c.phys_method())
    c.close()
    class Interrupting(M.GdbSource):
        def read(self, addr, length):
            raise KeyboardInterrupt()
    c = native.Ctx(source=Interrupting())
    try:
        c.read(M.PHYS, 0x200000, 16)
        show("interrupted", False)
    except native.Interrupted:
        show("interrupted", True)
    c.close()
    show("mode_after_interrupt", M.phys_mode_now())
    try:
        b.read(M.PHYS, 0xfffffffffff00000, 0x100000)
        show("huge_read", "ok")
    except native.KbuError as e:
        show("huge_read", type(e).__name__)
    show("mode_after_read", M.phys_mode_now())
    b.read(M.PHYS, 0x200000, 16)
    before = b.stats["source_reads"]
    b.read(M.PHYS, 0x200000 + 8, 16)
    show("cached", b.stats["source_reads"] == before)
    gdb.execute("stepi", to_string=True)
    b.read(M.PHYS, 0x200000 + 8, 16)
    show("flushed_on_resume", b.stats["source_reads"] > before)
''')


def results(out):
    return dict(re.findall(r"^RESULT (\S+) (.*)$", out, re.M))


def test_memory_bridge_paging_off(qemu, guest_kernel, tmp_path):
    script = tmp_path / "bridge.py"
    script.write_text(BRIDGE)
    q = qemu(guest_kernel, smp=1, append="console=ttyS0 kbu.scenario=ok", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "break *0x200000", "continue", "python exec(open(%r).read())" % str(script),
        "maint packet qqemu.PhyMemMode"])
    no_traceback(out)
    r = results(out)
    with open(guest_kernel, "rb") as f:
        data = f.read()
    # The first PT_LOAD (link 0xffffffff80200000, load 0x200000) starts at file offset 0x1000.
    assert bytes.fromhex(r["phys"]) in data
    assert r["method"] == "packet"           # QEMU's stub: Qqemu.PhyMemMode
    assert r["virt_mapped"] == "False"       # paging off: the high address does not exist yet
    assert r["xp_same"] == "True"
    assert r["xp_method"] == "xp"
    assert r["interrupted"] == "True"        # Ctrl-C in a read: libkbu's code, not a message
    assert r["mode_after_interrupt"] == "0"  # and the stub is back in virtual mode
    assert r["huge_read"] in ("ok", "Fault")  # unbacked: a fault, or the zeros QEMU gives
    assert r["mode_after_read"] == "0"
    assert r["cached"] == "True"
    assert r["flushed_on_resume"] == "True"
    assert 'received: "0"' in out
    q.wait_serial(r"kbu-guest: idle", timeout=30)


def test_memory_bridge_paging_on(qemu, guest_kernel, tmp_path):
    script = tmp_path / "bridge.py"
    script.write_text(BRIDGE)
    q = qemu(guest_kernel, smp=1, append="console=ttyS0 kbu.scenario=ok", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "break hammer_time", "continue", "python exec(open(%r).read())" % str(script)])
    no_traceback(out)
    r = results(out)
    assert r["virt_mapped"] == "True"
    assert r["xp_same"] == "True"
    assert r["mode_after_read"] == "0"


def test_pvh_at_the_entry_uses_ebx(qemu, guest_kernel):
    q = qemu(guest_kernel, smp=1, append="console=ttyS0 kbu.scenario=ok kbu.token=pvh-ebx",
             paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["kbu break xen_start32", "continue",
                                                 "info registers rbx", "kbu pvh"])
    no_traceback(out)
    ebx = int(re.search(r"^rbx\s+(0x[0-9a-f]+)", out, re.M).group(1), 16)
    assert "kbu: at the PVH entry 0x200000: start info at EBX = 0x%x" % ebx in out
    assert re.search(r"location:\s+0x%x \(given address\)" % ebx, out)
    assert "kbu.token=pvh-ebx" in out
    q.wait_serial(r"kbu-guest: idle", timeout=30)
