"""kbu break / kbu reloc / kbu addr inside GDB, against real guests.

The test kernel and Debian's Linux kernel both start at their PVH entry in
32-bit mode with paging off, at a physical address, and later run high:
`kbu break` must trip in both phases from the ELF's (or System.map's)
symbols alone. Linux's bzImage boot moves the kernel (KASLR): `kbu reloc`
must find the slide the kernel prints as "Kernel Offset", and breakpoints
by name must trip at the relocated address after `kbu reloc apply`.
"""
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
    assert "kbu break: xen_start32 at physical 0x%x (paging is off (CR0.PG=0))" % phys_entry in out
    assert "lapic_init at physical 0x%x" % (lapic_init - 0xffffffff80000000) in out
    assert "lapic_init at virtual 0x%x" % lapic_init in out
    assert hits(out) == [1, 3], out
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
        "kbu break xen_start32", "continue", "kbu addr hammer_time", "kbu break hammer_time",
        "delete 2", "kbu break hammer_time --high", "continue", "kbu break tc_init", "continue",
        "info registers rip"])
    no_traceback(out)
    # At the entry paging is off: the default is the physical alias.
    assert "hammer_time at physical 0x%x (paging is off" % (hammer - 0xffffffff80000000) in out
    assert re.search(r"physical \(load\):\s+0x0*%x" % (hammer - 0xffffffff80000000), out)
    assert re.search(r"cut to 32 bits:\s+0x%08x" % (hammer & 0xffffffff), out)
    assert re.search(r"mapped now:\s+no", out)
    # Once the high map exists the default is the virtual address.
    assert "tc_init at virtual 0x%x (the high address is mapped)" % tc_init in out
    assert reg(out, "rip")[-1] == tc_init
    q.wait_serial(r"kbu-guest: idle", timeout=30)


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
    assert hits(out) == [1, 3], out
    assert reg(out, "rip") == [linux_target.pvh_entry, start_kernel], out
    cr0 = reg(out, "cr0")
    assert not cr0[0] & 0x80000000 and cr0[1] & 0x80000000
    q.wait_serial(kbutest.PANIC_END, timeout=120)


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
    # The test kernel branded FreeBSD (EI_OSABI 9): Debian's GDB cuts its
    # 64-bit symbols to 32 bits, as in seeds/000 ("0x809659bf").
    fbsd = tmp_path / "kernel.freebsd"
    shutil.copy(guest_kernel, fbsd)
    with open(fbsd, "r+b") as f:
        f.seek(7)
        f.write(b"\x09")
    real = elf_sym(guest_kernel, "lapic_init")
    out = kbutest.gdb_batch(str(fbsd), None, [
        "p/x (unsigned long)&lapic_init", "break lapic_init", "kbu reloc",
        "kbu reloc apply", "p/x (unsigned long)&lapic_init", "info breakpoints"],
        load_kbu=True, osabi_none=False)
    no_traceback(out)
    vals = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.M)]
    assert vals == [real & 0xffffffff, real], out
    assert "is a FreeBSD kernel and GDB has no OS ABI" in out
    assert re.search(r"lapic_init\s+0x0*%x\s+0x%x\s+TRUNCATED" % (real & 0xffffffff, real), out)
    assert "with osabi none" in out
    assert re.search(r"^1\s+breakpoint\s+keep y\s+0x%x" % real, out, re.M), out


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
