"""kbu cpuid and kbu lapic inside GDB, against the test kernel and Linux.

CPUID runs for real on the paused vCPU (injected and single-stepped); the
results are checked against what the firmware and QEMU say independently
(the MP table's processor signature, QEMU's `info lapic`), and the guest's
registers and memory at the stop must be exactly as before.
"""
import json
import re
import time

import pytest

import kbutest

STATE = ["info registers", "x/32xb $pc", "x/16xg $sp"]
MARK = "=== kbu-state ==="


def no_traceback(out):
    assert "Traceback" not in out and "Python Exception" not in out, out


def states(out):
    """The text of each state dump between MARK lines."""
    parts = out.split(MARK)
    return [parts[i].strip() for i in range(1, len(parts), 2)]


def with_state(commands):
    """commands, with the registers and memory printed before and after them."""
    snap = ["echo %s\\n" % MARK] + STATE + ["echo %s\\n" % MARK]
    return snap + commands + snap


def first_json(text, start=0):
    i = text.index('{"command"', start)
    obj, end = json.JSONDecoder().raw_decode(text[i:])
    return obj, i + end


def mp_processor(q, index=0):
    """(APIC ID, APIC version, CPU signature) of the MP table's index-th processor
    entry, read with xp (independently of kbu)."""
    fp = q.monitor("xp /4wx 0x9fc00")
    words = [int(w, 16) for w in re.findall(r"0x[0-9a-f]{8}", fp.split(":", 1)[1])]
    entry = words[1] + 44 + 20 * index      # processor entries (20 bytes) follow the header
    text = q.monitor("xp /3wx 0x%x" % entry)
    w = [int(x, 16) for x in re.findall(r"0x[0-9a-f]{8}", text.split(":", 1)[1])]
    assert w[0] & 0xff == 0, "MP entry %d is not a processor: %s" % (index, text)
    return (w[0] >> 8) & 0xff, (w[0] >> 16) & 0xff, w[1]


def mp_cpu_signature(q):
    """The raw CPU signature of the MP table's first processor entry (read with xp)."""
    return mp_processor(q)[2]


def test_cpuid_matches_firmware_and_restores(qemu, guest_kernel):
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=ok", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["break lapic_init", "continue"] + with_state([
        "kbu cpuid --raw 1", "kbu cpuid 0x40000000", "kbu cpuid tsc", "kbu cpuid --all --raw",
        "kbu cpuid 1 --json"]), timeout=120)
    no_traceback(out)
    before, after = states(out)
    assert before == after, "state changed:\n%s\n---\n%s" % (before, after)
    eax = int(re.search(r"0x00000001\.0\s+eax=(0x[0-9a-f]+)", out).group(1), 16)
    assert eax == mp_cpu_signature(q)
    assert re.search(r"hypervisor signature:\s+TCGTCGTCGTCG", out)
    assert re.search(r"cpu_high >= 0x15\? \(tsc_freq_cpuid\)\s+cpu_high = 0xd", out)
    assert "no CPUID step gives the TSC frequency" in out
    j, _ = first_json(out, out.index("kbu cpuid 1 --json") if "kbu cpuid 1 --json" in out else 0)
    leaf1 = j["leaves"]["0x1.0"]
    assert leaf1["eax"] == eax and leaf1["hypervisor"] is True
    q.wait_serial(r"kbu-guest: idle", timeout=30)


def test_continue_after_cpuid_steps_over_the_breakpoint(qemu, guest_kernel):
    """After kbu cpuid at a breakpoint, `continue` leaves that breakpoint and
    runs on, as it would have without the injection (GDB's stop state is kept)."""
    q = qemu(guest_kernel, smp=1, append="console=ttyS0 kbu.scenario=ok", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "break lapic_init", "continue", "kbu cpuid 1", "break cpu_idle", "continue",
        "echo stopped-in:\n", "info symbol $pc"], timeout=120)
    no_traceback(out)
    after = out.split("stopped-in:", 1)[1]
    assert "cpu_idle" in after and "lapic_init" not in after, out


def test_cpuid_error_still_restores(qemu, guest_kernel):
    q = qemu(guest_kernel, smp=1, append="console=ttyS0 kbu.scenario=ok", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["break lapic_init", "continue"] + with_state([
        "kbu cpuid --raw --test-fail-after 1 1 7", "maint packet qqemu.sstep"]), timeout=120)
    no_traceback(out)
    assert "kbu cpuid: forced failure after 1 steps (test)" in out
    before, after = states(out)
    assert before == after
    assert 'received: "0x7"' in out
    q.wait_serial(r"kbu-guest: idle", timeout=30)


def test_cpuid_at_the_reset_vector(qemu, guest_kernel):
    # Real mode, CS base 0xffff0000: the injection goes to linear 0xfffffff0.
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=ok", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, with_state([
        "kbu inject-site --json", "kbu cpuid --raw 1", "kbu cpuid --cpu 1 --raw 1",
        "kbu cpuid --cpu all 1"]), timeout=120)
    no_traceback(out)
    before, after = states(out)
    assert before == after, "state changed:\n%s\n---\n%s" % (before, after)
    site, _ = first_json(out)
    assert site["mode"] == "real" and site["code"] == 0xfffffff0 and site["can_step"] is True
    eax = int(re.search(r"0x00000001\.0\s+eax=(0x[0-9a-f]+)", out).group(1), 16)
    # vCPU 1 waits for SIPI: it runs nothing, and vCPU 0 is named instead.
    assert "kbu cpuid: vCPU 1 is waiting for SIPI (its INIT state): it executes nothing until " \
        "the kernel starts it; vCPU 0 can run it now" in out, out
    assert re.search(r"^vCPU 0:\n", out, re.M) and "hypervisor" in out
    # The guest goes on to its normal end, and its MP table carries the same signature.
    q.wait_serial(r"kbu-guest: idle", timeout=30)
    assert eax == mp_cpu_signature(q)


def test_cpuid_in_the_idle_loop_answers(qemu, guest_kernel):
    # The test kernel idles as FreeBSD's cpu_idle_hlt does: sti; hlt, its LAPIC
    # timer ticking. The next tick wakes vCPU 0 for the step; the guest goes on.
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=ok")
    q.wait_serial(r"kbu-guest: idle", timeout=30)
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["print lapic_ticks"] + with_state([
        "kbu cpuid --raw 1"]), timeout=120)
    no_traceback(out)
    # GDB detached: the guest runs on; a second look finds more ticks
    q.wait_serial(r"kbu-guest: idle", timeout=30)
    time.sleep(0.5)
    out += kbutest.gdb_kbu(guest_kernel, q.port, ["print lapic_ticks"], timeout=60)
    eax = int(re.search(r"0x00000001\.0\s+eax=(0x[0-9a-f]+)", out).group(1), 16)
    assert eax == mp_cpu_signature(q)
    before, after = states(out)
    assert before == after, "state changed:\n%s\n---\n%s" % (before, after)
    ticks = [int(x) for x in re.findall(r"^\$\d+ = (\d+)$", out, re.M)]
    assert len(ticks) == 2 and ticks[1] > ticks[0] > 0, out     # still ticking afterwards


def test_cpuid_halted_with_interrupts_off_says_why(qemu, guest_kernel):
    # After its panic the test kernel halts in cli; hlt: nothing can wake vCPU 0 that
    # the kernel would not see, and vCPU 1 never started. Nothing is touched.
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=tsc")
    q.wait_serial(r"panic: TSC not initialized", timeout=30)
    out = kbutest.gdb_kbu(guest_kernel, q.port, with_state([
        "kbu cpuid 1", "kbu inject-site --json", "monitor info registers -a"]))
    no_traceback(out)
    assert ("kbu cpuid: vCPU 0 is halted with interrupts off (HLT with IF=0): only an NMI, INIT "
            "or SMI would wake it, and the kernel would see each of them; no other vCPU runs "
            "either") in out, out
    site, _ = first_json(out)
    assert site["halted"] is True and site["interrupts"] is False
    assert site["step"] == "never" and site["answer_from"] == []
    assert [v["state"] for v in site["vcpus"]] == ["halted", "wait-for-sipi"]
    assert [c["code"] for c in site["problems"]] == ["inject.cannot_step"]
    assert re.findall(r"HLT=(\d)", out) == ["1", "1"]     # still halted, both
    before, after = states(out)
    assert before == after


@pytest.mark.linux
def test_cpuid_in_linux_idle_hlt_loop(linux_target):
    # Linux waiting for its root device idles in sti; hlt. The next interrupt
    # wakes the vCPU for the step (QEMU holds it back and delivers it after).
    q = kbutest.boot_linux(linux_target, image="elf", paused=True,
                           append="root=/dev/vda rootwait")
    try:
        q.qmp("cont")
        q.wait_serial(r"Waiting for root device", timeout=120)
        jiffies = linux_target.symbol("jiffies")
        out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, ["x/gx 0x%x" % jiffies] + with_state([
            "kbu inject-site --json", "kbu cpuid --raw 1"]), timeout=120)
        no_traceback(out)
        site, _ = first_json(out)
        assert site["halted"] is True and site["interrupts"] is True
        assert site["step"] == "on_interrupt"
        assert "an interrupt woke it for the step" in out
        eax = int(re.search(r"0x00000001\.0\s+eax=(0x[0-9a-f]+)", out).group(1), 16)
        assert eax == mp_cpu_signature(q)
        # Registers, code and the stack as before (the vCPU goes on after its HLT).
        before, after = states(out)
        assert before == after
        start = int(re.search(r":\s+(0x[0-9a-f]+)", out).group(1), 16)

        def ticking():
            o = kbutest.gdb_batch(None, q.port, ["x/gx 0x%x" % jiffies])
            return int(re.search(r":\s+(0x[0-9a-f]+)", o).group(1), 16) > start
        # The guest keeps idling and taking its timer interrupts.
        kbutest.wait_until(ticking, "jiffies to advance after kbu cpuid", 60,
                           gone=lambda: None if q.alive() else "QEMU exited")
    finally:
        q.stop()


LAPIC_MARK = "=== info lapic ==="
LAPIC_CMDS = ["echo %s\\n" % LAPIC_MARK, "monitor info lapic 0", "echo %s\\n" % LAPIC_MARK]


def info_lapic_of(out):
    """The `monitor info lapic 0` text GDB printed between LAPIC_MARK lines."""
    return out.split(LAPIC_MARK)[1]


def parse_info_lapic(text):
    """QEMU's `info lapic` read independently of libkbu: {register offset: value}."""
    lvts = {"LVT0": 0x350, "LVT1": 0x360, "LVTPC": 0x340, "LVTERR": 0x370, "LVTTHMR": 0x330,
            "LVTT": 0x320, "SPIV": 0xf0, "ICR": 0x300, "ICR2": 0x310, "ESR": 0x280}
    regs = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)\t\s*0x([0-9a-f]{8})", line)
        if m and m.group(1) in lvts:
            regs[lvts[m.group(1)]] = int(m.group(2), 16)
        m = re.match(r"^Timer\t DCR=0x([0-9a-f]+) .* initial_count = (\d+)", line)
        if m:
            regs[0x3e0] = int(m.group(1), 16)
            regs[0x380] = int(m.group(2))
        m = re.match(r"^APR 0x(\w+) TPR 0x(\w+) DFR 0x(\w+) LDR 0x(\w+).* PPR 0x(\w+)", line)
        if m:
            apr, tpr, dfr, ldr, ppr = (int(x, 16) for x in m.groups())
            regs.update({0x90: apr, 0x80: tpr, 0xe0: dfr << 28 | 0x0fffffff, 0xd0: ldr << 24,
                         0xa0: ppr})
    return regs


@pytest.mark.parametrize("scenario", ["ok", "tsc"])
def test_lapic_agrees_with_info_lapic(qemu, guest_kernel, scenario):
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=%s" % scenario)
    q.wait_serial(r"kbu-guest: idle|panic: ", timeout=30)
    out = kbutest.gdb_kbu(guest_kernel, q.port, with_state(["kbu lapic 0 --json", "kbu lapic 1"]
                                                            + LAPIC_CMDS))
    no_traceback(out)
    j, _ = first_json(out)
    want = parse_info_lapic(info_lapic_of(out))
    assert len(want) == 17
    got = {r["offset"]: r["value"] for r in j["lapic"]["registers"]}
    for off, val in want.items():
        assert got[off] == val, "register 0x%x: kbu %r, info lapic 0x%x" % (off, got[off], val)
    if scenario == "tsc":
        # Halted with interrupts off after its panic: the vCPU cannot read itself, and says why.
        assert j["lapic"]["source"] == "monitor"
        assert j["sources"]["vcpu"]["read"] is False
        assert "halted with interrupts off" in j["sources"]["vcpu"]["note"]
        assert j["sources"]["page"]["read"] is False and j["sources"]["page"]["all_zero"] is True
    else:
        # Idle with its timer ticking: the vCPU reads its own registers.
        assert j["lapic"]["source"] == "vcpu" and j["sources"]["vcpu"]["read"] is True
    # Every register is shown with its xAPIC offset and x2APIC MSR.
    rows = {r["name"]: r for r in j["lapic"]["registers"]}
    assert rows["Initial count"]["offset"] == 0x380 and rows["Initial count"]["msr"] == 0x838
    if scenario == "tsc":
        assert rows["ID"]["value"] is None              # QEMU does not print it: not invented
    else:
        assert rows["ID"]["value"] == 0 and rows["Version"]["value"] & 0xff == 0x14
    assert "Local APIC of CPU 1 (source: QEMU info lapic)" in out
    before, after = states(out)
    assert before == after


def lvt_count(text):
    """How many LVTs QEMU's `info lapic` shows."""
    return len(re.findall(r"^LVT\w*\t", text, re.M))


@pytest.mark.parametrize("smp", [1, 2])
def test_lapic_read_by_the_vcpu(qemu, guest_kernel, smp):
    # seeds/000 patched printf into the kernel for lapic_read32(LAPIC_VERSION).
    q = qemu(guest_kernel, smp=smp, append="console=ttyS0 kbu.scenario=ok", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["break lapic_calibrate_timer", "continue"]
                          + with_state(["kbu lapic --json"] + LAPIC_CMDS + ["kbu lapic"]),
                          timeout=120)
    no_traceback(out)
    before, after = states(out)
    assert before == after, "state changed:\n%s\n---\n%s" % (before, after)
    j, _ = first_json(out)
    assert j["lapic"]["source"] == "vcpu" and j["sources"]["vcpu"]["read"] is True
    assert j["sources"]["vcpu"]["note"].startswith("read by vCPU 0 itself (loads from its APIC page")
    got = {r["offset"]: r["value"] for r in j["lapic"]["registers"]}
    monitor = info_lapic_of(out)
    apic_id, mp_version, _sig = mp_processor(q)
    # ID and version, which QEMU's monitor does not show, from the vCPU itself.
    assert got[0x20] >> 24 == apic_id == 0
    assert got[0x30] & 0xff == mp_version == 0x14
    assert ((got[0x30] >> 16) & 0xff) + 1 == lvt_count(monitor) == 6
    assert "& 0x00ff00ff = 0x00050014: version 0x14, 6 LVT entries (max LVT 5)" in out
    # Every register the monitor shows agrees, and nothing is flagged.
    for off, val in parse_info_lapic(monitor).items():
        assert got[off] == val, "register 0x%x: vCPU %r, info lapic 0x%x" % (off, got[off], val)
    assert j["mptable"]["apic_id"] == apic_id and j["mptable"]["version"] == mp_version
    codes = [p["code"] for p in j["problems"]]
    assert not [c for c in codes if c in ("lapic.sources_disagree", "lapic.mp_version_mismatch",
                                          "lapic.mp_no_entry", "lapic.lvt_count_mismatch")]
    assert "QEMU info lapic agrees with the vCPU's own reads on every register both show" in out
    q.wait_serial(r"kbu-guest: idle", timeout=30)


@pytest.mark.linux
def test_linux_cpuid_and_lapic(linux_qemu, linux_target):
    q = linux_qemu(image="elf", smp=2, paused=True)
    start = linux_target.symbol("start_kernel")
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port, [
        "kbu break *0x%x --high" % start, "continue"] + with_state([
            "kbu cpuid --raw 1", "kbu cpuid 0x40000000", "kbu lapic --json"] + LAPIC_CMDS),
        timeout=120)
    no_traceback(out)
    before, after = states(out)
    assert before == after
    eax = int(re.search(r"0x00000001\.0\s+eax=(0x[0-9a-f]+)", out).group(1), 16)
    assert eax == mp_cpu_signature(q)
    assert "TCGTCGTCGTCG" in out
    j, _ = first_json(out, out.index('{"command": "lapic"'))
    assert j["mode"]["cpuid_x2apic"] is False
    want = parse_info_lapic(info_lapic_of(out))
    assert len(want) == 17
    got = {r["offset"]: r["value"] for r in j["lapic"]["registers"]}
    for off, val in want.items():
        assert got[off] == val, "register 0x%x" % off
    q.wait_serial(kbutest.PANIC_END, timeout=120)


def test_lapic_mode_flags_x2apic_without_cpu_support(qemu, guest_kernel):
    # seeds/000: the kernel believes in x2APIC (x2apic_mode = 1) on a vCPU whose
    # CPUID has no x2APIC bit (TCG 7.2): kbu lapic must say so.
    q = qemu(guest_kernel, smp=1, append="console=ttyS0 kbu.scenario=x2apic", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "break lapic_calibrate_timer", "continue", "kbu lapic", "kbu lapic --no-cpuid --json"])
    no_traceback(out)
    assert re.search(r"CPUID.1:ECX.x2APIC\[21\]:\s+0 \(no x2APIC", out), out
    assert re.search(r"kernel:\s+x2apic_mode = 1", out)
    assert "! the kernel's x2apic_mode says x2APIC but CPUID has no x2APIC bit" in out
    j, _ = first_json(out)
    assert j["mode"]["cpuid_x2apic"] is None
    assert j["mode"]["kernel_x2apic"] is True
    assert j["mode"]["mode"] == "x2APIC" and j["mode"]["decided_by"] == "kernel"
    q.wait_serial(r"kbu-guest: idle", timeout=30)


@pytest.mark.parametrize("stop", ["xen_start32", "lapic_init"])
def test_every_command_leaves_the_stop_untouched(qemu, guest_kernel, stop):
    # At the PVH entry (paging off) and in the high-mapped kernel.
    q = qemu(guest_kernel, smp=2, append="console=ttyS0 kbu.scenario=tsc", paused=True)
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["kbu break %s --both" % stop, "continue"] + with_state([
        "kbu reloc", "kbu addr %s" % stop, "kbu break mi_startup --both", "kbu cpuid tsc",
        "kbu cpuid --all", "kbu lapic", "kbu lapic 1 --no-cpuid", "kbu mptable", "kbu pvh",
        "kbu notes", "kbu sym lapic_init", "p $kbu_phys(\"lapic_init\")"]), timeout=120)
    no_traceback(out)
    before, after = states(out)
    assert before == after, "state changed:\n%s\n---\n%s" % (before, after)
    assert "Local APIC of CPU 1" in out and "PVH start info" in out
    # The guest then runs to its normal end (the breakpoints stay behind in GDB only).
    q.wait_serial(r"panic: TSC not initialized", timeout=30)
