"""kbu break / kbu reloc / kbu addr inside GDB, against real guests.

The test kernel and Debian's Linux kernel both start at their PVH entry in
32-bit mode with paging off, at a physical address, and later run high:
`kbu break` must trip in both phases from the ELF's (or System.map's)
symbols alone. Linux's bzImage boot moves the kernel (KASLR): `kbu reloc`
must find the slide the kernel prints as "Kernel Offset", and breakpoints
by name must trip at the relocated address after `kbu reloc apply`.
"""
import json
import os
import re
import shutil

import pytest

import kbutest


def elf_sym(kernel, name, symbols=None):
    args = ["sym", "--kernel", kernel] + (["--symbols", symbols] if symbols else []) + [name]
    rc, obj, err = kbutest.kbu_json(*args)
    assert rc == 0, err
    return obj["results"][0]["address"]


def hits(out):
    """Breakpoint numbers in the order GDB reported stops at them."""
    return [int(n) for n in re.findall(r"^(?:Thread \d+ hit )?Breakpoint (\d+), ", out, re.M)]


def reg(out, name):
    """Every value GDB printed for a register with `info registers NAME`."""
    return [int(v, 16) for v in re.findall(r"^%s\s+(0x[0-9a-f]+)" % name, out, re.M)]


def no_traceback(out):
    assert "Traceback" not in out and "Python Exception" not in out, out


def breakpoints_table(out):
    """{number: address} of GDB's `info breakpoints` rows (the last table printed)."""
    table = out.rsplit("Num     Type", 1)[1]
    return {int(n): int(a, 16) for n, a in
            re.findall(r"^(\d+)\s+breakpoint\s+keep\s+[yn]\s+(0x[0-9a-f]+)", table, re.M)}


def test_break_low_then_high_test_kernel(qemu, guest_kernel):
    entry = elf_sym(guest_kernel, "xen_start32")
    lapic_init = elf_sym(guest_kernel, "lapic_init")
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=tsc", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "kbu break xen_start32", "kbu break lapic_init --both",
        "continue", "info registers rip", "info registers cr0",
        "continue", "info registers rip", "info registers cr0"])
    no_traceback(out)
    phys_entry = entry - 0xffffffff80000000
    # At the reset vector nothing decides the alias yet: both are armed.
    assert ("kbu break: xen_start32 at physical 0x%x (breakpoint 1) and virtual 0x%x "
            "(breakpoint 2): CPU 0 is at its reset vector" % (phys_entry, entry)) in out, out
    assert ("lapic_init at physical 0x%x (breakpoint 3) and virtual 0x%x (breakpoint 4): asked"
            % (lapic_init - 0xffffffff80000000, lapic_init)) in out
    # The entry runs at its physical address, lapic_init at its virtual one.
    assert "xen_start32 tripped at its physical alias 0x%x" % phys_entry in out
    assert "lapic_init tripped at its virtual alias 0x%x" % lapic_init in out
    assert hits(out) == [1, 4], out
    rip, cr0 = reg(out, "rip"), reg(out, "cr0")
    assert rip == [phys_entry, lapic_init]
    assert not cr0[0] & 0x80000000 and cr0[1] & 0x80000000   # paging off, then on
    # GDB detached: the guest goes on to its normal end.
    q.wait_serial(r"panic: TSC not initialized", timeout=30)


def test_break_default_picks_the_phase(qemu, guest_kernel):
    q = qemu(guest_kernel, smp=1, append="console=ttyS0 kbu.scenario=ok", paused=True)
    hammer = elf_sym(guest_kernel, "hammer_time")
    tc_init = elf_sym(guest_kernel, "tc_init")
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "kbu break xen_start32 --low", "continue", "kbu addr hammer_time",
        "kbu addr hammer_time --json", "kbu break hammer_time", "continue",
        "info registers rip", "kbu break tc_init --json", "continue", "info registers rip"])
    no_traceback(out)
    # At the entry paging is off: the physical and the virtual alias both.
    assert ("hammer_time at physical 0x%x (breakpoint 2) and virtual 0x%x (breakpoint 3): "
            "paging is off (CR0.PG=0)" % (hammer - 0xffffffff80000000, hammer)) in out, out
    assert re.search(r"physical \(load\):\s+0x0*%x" % (hammer - 0xffffffff80000000), out)
    assert re.search(r"cut to 32 bits:\s+0x%08x" % (hammer & 0xffffffff), out)
    assert re.search(r"mapped now:\s+no", out)
    a = json.loads(re.search(r'^(\{"symbol": "hammer_time".*)$', out, re.M).group(1))
    assert a["link"] == hammer and a["physical_load"] == hammer - 0xffffffff80000000
    assert a["mapped"] is False and a["truncated"] == hammer & 0xffffffff
    # hammer_time runs high, once the kernel's page tables are on.
    assert "hammer_time tripped at its virtual alias 0x%x" % hammer in out
    assert reg(out, "rip")[0] == hammer
    # Once the high map exists the default is the virtual address alone.
    j = json.loads(re.search(r'^(\{"spec": "tc_init".*)$', out, re.M).group(1))
    assert j["decided"] is True and j["why"] == "the high address is mapped"
    assert [(x["kind"], x["address"]) for x in j["aliases"]] == [("high", tc_init)]
    assert reg(out, "rip")[-1] == tc_init
    q.wait_serial(r"kbu-guest: idle", timeout=30)


# How a porter loads a FreeBSD kernel into Debian's GDB, which has no FreeBSD OS
# ABI: every way, before or after `target remote`, with or without `set osabi none`.
LOADS = {
    "devlog-target-remote-then-add-symbol-file": ["@remote", "add-symbol-file @K"],
    "add-symbol-file-then-target-remote": ["add-symbol-file @K", "@remote"],
    "file-then-target-remote": ["file @K", "@remote"],
    "target-remote-then-symbol-file": ["@remote", "symbol-file @K"],
    "add-symbol-file-at-its-address": ["@remote", "add-symbol-file @K 0x@TEXT"],
    "osabi-none-first": ["set osabi none", "@remote", "add-symbol-file @K"],
}


@pytest.mark.parametrize("load", sorted(LOADS))
def test_devlog_session_breaks_in_the_inlined_walker(qemu, guest_kernel, load):
    # seeds/000: `b mptable_walk_table` -> "0x809659bf ... (7 locations)" while the
    # CPU ran at 0xffffffff80966240. kbu repairs GDB's cut addresses and breaks
    # at the walker's high addresses, found through the debug information.
    text = elf_sym(guest_kernel, "xen_start32")
    lapic_init = elf_sym(guest_kernel, "lapic_init")
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=tsc", paused=True)
    steps = [c.replace("@remote", "target remote 127.0.0.1:%d" % q.port)
             .replace("@K", guest_kernel).replace("@TEXT", "%x" % text) for c in LOADS[load]]
    out = kbutest.gdb_batch(None, None, steps + [
        "kbu break mptable_walk_table", "continue", "info registers rip", "bt 2",
        "delete", "break lapic_init", "kbu break assert", "info breakpoints", "continue",
        "info registers rip"], load_kbu=True, osabi_none=False, timeout=120)
    no_traceback(out)
    if load != "osabi-none-first":
        # Seen when the file is loaded, said in one line, repaired before kbu's command.
        assert re.search(r"^kbu: GDB cut \S+'s 64-bit addresses to 32 bits .*lapic_init at "
                         r"0x%x, not 0x%x" % (lapic_init & 0xffffffff, lapic_init), out, re.M), out
        assert "kbu: reloaded %s with osabi none: lapic_init at 0x%x" % (guest_kernel, lapic_init) \
            in out, out
    m = re.search(r"kbu break: mptable_walk_table has (\d+) locations", out)
    assert m and int(m.group(1)) >= 5, out
    rip = reg(out, "rip")
    # Stopped inside the walker, at its high address.
    assert rip[0] >= 0xffffffff80000000, out
    assert re.search(r"#0\s+mptable_walk_table", out), out
    # GDB's own breakpoint, after kbu's repair, is at the full address and trips.
    assert re.search(r"Breakpoint \d+ at 0x%x: file local_apic.c" % lapic_init, out), out
    assert rip[1] == lapic_init, out
    # No breakpoint anyone planted is a cut address.
    table = breakpoints_table(out)
    assert table and not [a for a in table.values() if 0x80000000 <= a < 1 << 32], table
    # kbu break assert, armed with the high map on: panic's full virtual address.
    assert re.search(r"breaking on .*panic \(0xffffffff802[0-9a-f]+, breakpoint \d+\)", out), out
    q.wait_serial(r"panic: TSC not initialized", timeout=30)


def test_reloc_at_the_reset_vector_and_the_pvh_entry(qemu, guest_kernel):
    q = qemu(guest_kernel, smp=1, append="console=ttyS0 kbu.scenario=ok", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "kbu reloc --json", "kbu reloc apply", "kbu break xen_start32 --low", "continue",
        "kbu reloc", "kbu reloc apply"])
    no_traceback(out)
    j = json.loads(out[out.index("{"):out.index("\n}\n") + 2])
    assert j["phase"] == "reset"
    assert j["virtual"]["found"] is False
    codes = [p["code"] for p in j["problems"]]
    assert "reloc.slide_not_yet" in codes
    # QEMU placed the PVH ELF before the firmware ran: its load address holds it.
    assert j["physical"]["found"] is True and j["physical"]["slide"] == 0
    assert "no runtime slide found" not in out
    assert out.count("a runtime slide (KASLR) is decided once") >= 3, out
    assert "CPU 0 is at its reset vector: the kernel's symbols are at the ELF's link" in out
    assert "paging is off (CR0.PG=0): the kernel's symbols are at the ELF's link" in out


@pytest.mark.linux
def test_break_low_then_high_linux_pvh(linux_qemu, linux_target):
    q = linux_qemu(image="elf", paused=True)
    start_kernel = linux_target.symbol("start_kernel")
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "set kbu symbols %s" % linux_target.system_map,
        "kbu break pvh_start_xen", "kbu break start_kernel --both",
        "continue", "info registers rip", "info registers cr0",
        "continue", "info registers rip", "info registers cr0"], timeout=120)
    no_traceback(out)
    assert hits(out) == [1, 4], out
    assert reg(out, "rip") == [linux_target.pvh_entry, start_kernel], out
    cr0 = reg(out, "cr0")
    assert not cr0[0] & 0x80000000 and cr0[1] & 0x80000000
    q.wait_serial(kbutest.PANIC_END, timeout=120)


@pytest.mark.linux
def test_break_at_pvh_entry_trips_high_linux(linux_qemu, linux_target):
    # Stopped at pvh_start_xen (paging off), `kbu break start_kernel` with no
    # option must trip where start_kernel runs: its high address.
    q = linux_qemu(image="elf", paused=True)
    start_kernel = linux_target.symbol("start_kernel")
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "set kbu symbols %s" % linux_target.system_map,
        "kbu break pvh_start_xen --low", "continue", "info registers rip", "info registers cr0",
        "kbu break start_kernel", "continue", "info registers rip", "info registers cr0"],
        timeout=120)
    no_traceback(out)
    assert reg(out, "rip") == [linux_target.pvh_entry, start_kernel], out
    assert start_kernel >= 0xffffffff80000000
    assert "start_kernel tripped at its virtual alias 0x%x" % start_kernel in out
    cr0 = reg(out, "cr0")
    assert not cr0[0] & 0x80000000 and cr0[1] & 0x80000000
    q.wait_serial(kbutest.PANIC_END, timeout=120)


@pytest.mark.linux
@pytest.mark.slow
def test_break_before_the_kaslr_slide_is_known(linux_qemu, linux_target):
    # The bzImage paused before its first instruction: the kernel is not in
    # memory and its slide is not chosen. The breakpoint still trips where
    # start_kernel runs after the decompressor slid it.
    q = linux_qemu(image="bzimage", paused=True)
    link = linux_target.symbol("start_kernel")
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "set kbu symbols %s" % linux_target.system_map, "kbu break start_kernel --json",
        "continue", "info registers rip", "info breakpoints"], timeout=300)
    no_traceback(out)
    j = json.loads(re.search(r'^(\{"spec".*)$', out, re.M).group(1))
    assert j["decided"] is False
    cand = [a for a in j["aliases"] if a["kind"] == "candidates"][0]
    assert cand["count"] == 511 and cand["step"] == 2 << 20
    q.wait_serial(r"Kernel Offset:", timeout=120)
    slide = kbutest.kernel_offset(q.serial_text())
    assert slide, "expected a KASLR offset on the console"
    assert reg(out, "rip")[-1] == link + slide, out
    assert "start_kernel tripped at its virtual alias 0x%x (runtime slide 0x%x, found now)" \
        % (link + slide, slide) in out
    # At that stop the candidates went and one breakpoint stays, at the slid address.
    assert list(breakpoints_table(out).values()) == [link + slide], out


@pytest.mark.linux
@pytest.mark.slow
def test_reloc_finds_kaslr_slide_and_apply_breaks(linux_qemu, linux_target):
    q = linux_qemu(image="bzimage")          # sits in the root-fs panic loop
    slide = kbutest.kernel_offset(q.serial_text())
    assert slide, "the bzImage boot printed no Kernel Offset"
    fn = "__const_udelay"                    # called over and over by the panic loop
    link = linux_target.symbol(fn)
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "set kbu symbols %s" % linux_target.system_map,
        "kbu reloc", "kbu reloc apply", "kbu addr %s" % fn, "kbu break %s" % fn,
        "continue", "info registers rip"], timeout=180)
    no_traceback(out)
    m = re.search(r"runtime virtual slide \(KASLR\)\n(?:.*\n)*?\s+slide:\s+(0x[0-9a-f]+)", out)
    assert m, out
    assert int(m.group(1), 16) == slide
    assert re.search(r"runtime \(virtual\):\s+0x%016x" % (link + slide), out)
    assert "%s at virtual 0x%x" % (fn, link + slide) in out
    assert hits(out), out
    assert reg(out, "rip")[-1] == link + slide


@pytest.mark.linux
def test_reloc_pvh_linux_runs_at_link_address(linux_qemu, linux_target):
    q = linux_qemu(image="elf")
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, ["kbu reloc --no-phys"], timeout=120)
    no_traceback(out)
    assert "the kernel runs where it was linked" in out


def test_truncated_symbols_are_repaired(tmp_path, guest_kernel):
    # The test kernel is branded FreeBSD (EI_OSABI 9): Debian's GDB cuts its
    # 64-bit symbols to 32 bits, as in seeds/000 ("0x809659bf"). kbu sees it
    # when the file is loaded and reloads it before its next command.
    real = elf_sym(guest_kernel, "lapic_init")
    out = kbutest.gdb_batch(guest_kernel, None, [
        "p/x (unsigned long)&lapic_init", "break lapic_init", "kbu reloc",
        "p/x (unsigned long)&lapic_init", "info breakpoints", "show osabi"],
        load_kbu=True, osabi_none=False)
    no_traceback(out)
    vals = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.M)]
    assert vals == [real & 0xffffffff, real], out
    assert re.search(r"^kbu: GDB cut %s's 64-bit addresses to 32 bits" % re.escape(guest_kernel),
                     out, re.M), out
    assert "kbu: reloaded %s with osabi none: lapic_init at 0x%x; 1 breakpoint(s) kept" \
        % (guest_kernel, real) in out, out
    # kbu reloc then reports GDB's addresses as whole.
    assert re.search(r"lapic_init\s+0x%016x\s+0x%016x\s+ok" % (real, real), out), out
    assert re.search(r"^1\s+breakpoint\s+keep y\s+0x%x" % real, out, re.M), out
    assert 'currently "none"' in out or '"none"' in out


def test_kbu_load_sets_osabi_none(tmp_path, guest_kernel):
    fbsd = tmp_path / "kernel.freebsd"
    shutil.copy(guest_kernel, fbsd)
    with open(fbsd, "r+b") as f:
        f.seek(7)
        f.write(b"\x09")
    out = kbutest.gdb_batch(None, None, ["kbu load %s" % fbsd, "p/x (unsigned long)&lapic_init",
                                         "show kbu kernel"], load_kbu=True, osabi_none=False)
    no_traceback(out)
    assert "= 0x%x" % elf_sym(guest_kernel, "lapic_init") in out
    assert str(fbsd) in out


@pytest.mark.linux
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_reloc_apply_reloads_debug_vmlinux_and_keeps_breakpoints(linux_qemu, linux_target):
    # GDB's file is the unstripped vmlinux: a breakpoint set by name lands at
    # the link address; after `kbu reloc apply` it must trip where the kernel runs.
    q = linux_qemu(image="bzimage")
    slide = kbutest.kernel_offset(q.serial_text())
    assert slide
    fn = "__const_udelay"
    link = linux_target.symbol(fn)
    out = kbutest.gdb_kbu(linux_target.vmlinux_dbg, q.port, [
        "break %s" % fn, "info breakpoints", "kbu reloc apply", "info breakpoints",
        "continue", "info registers rip"], timeout=500)
    no_traceback(out)
    assert "reloaded %s at offset 0x%x" % (linux_target.vmlinux_dbg, slide) in out, out
    assert "1 breakpoint(s) kept" in out
    assert re.search(r"^1\s+breakpoint\s+keep y\s+0x%016x" % (link + slide), out, re.M), out
    assert reg(out, "rip")[-1] == link + slide


@pytest.mark.linux
def test_break_by_name_on_kaslr_kernel_without_reloc_first(linux_qemu, linux_target):
    # No explicit `kbu reloc`: kbu break finds the slide itself once paging is on.
    q = linux_qemu(image="bzimage")
    slide = kbutest.kernel_offset(q.serial_text())
    fn = "touch_softlockup_watchdog"
    link = linux_target.symbol(fn)
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "set kbu symbols %s" % linux_target.system_map, "kbu break %s" % fn, "continue",
        "info registers rip", "kbu addr $pc"], timeout=180)
    no_traceback(out)
    assert "%s at virtual 0x%x" % (fn, link + slide) in out, out
    assert reg(out, "rip")[-1] == link + slide
    assert re.search(r"symbol:\s+%s\n" % fn, out)
    assert re.search(r"link \(virtual\):\s+0x%016x" % link, out)
