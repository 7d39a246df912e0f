"""kbu triage's verdicts on dumps of real boots, where a rule could be right on
the test kernel's happy path and wrong elsewhere: a panic that came before
what a question judges, a kernel without an MP-table reader, a panic that took
CPUs offline, a KASLR kernel, a bzImage that was never handed a PVH start
info, a stripped kernel, the FreeBSD kernel's own CPUID reads, and a DSDT that
describes no device. Each asserts what a porter reads in the verdict section."""
import pytest

import kbutest

SEABIOS = "/usr/share/seabios/bios-microvm.bin"


def questions(dump, kernel, *opts):
    rc, j, err = kbutest.kbu_json("triage", "--core", dump, "--kernel", kernel, *opts)
    assert rc == 0, err
    return {q["question"]: q for q in j["verdict"]["questions"]}, j


@pytest.fixture(scope="module")
def guest_dumps(tmp_path_factory):
    """Dumps of the test kernel, made once: {scenario: path}."""
    made = {}
    out = tmp_path_factory.mktemp("guest-dumps")

    def dump(scenario, until):
        if scenario not in made:
            q = kbutest.Qemu(kbutest.GUEST_KERNEL, smp=2, memory="128M",
                             append="console=ttyS0 kbu.scenario=%s" % scenario)
            try:
                q.start()
                q.wait_serial(until, timeout=60)
                made[scenario] = q.dump(str(out / (scenario + ".core")))
            finally:
                q.stop()
        return made[scenario]
    return dump


def test_freebsds_own_cpuid_reads_explain_the_tsc_panic(guest_dumps):
    # No CPUID can run on a dump; FreeBSD's cpu_high and hv_high hold what it read.
    qs, j = questions(guest_dumps("tsc", r"^panic: "), kbutest.GUEST_KERNEL)
    tsc = qs["tsc-not-initialized"]
    assert tsc["status"] == 1 and tsc["code"] == "tsc.asserted_unset"
    assert "the kernel read cpu_high 0xd" in tsc["cause"]
    assert "hv_high 0x40000001 (below 0x40000010: no TSC leaf)" in tsc["cause"]
    # the timecounter was never reached: a consequence of the panic, not a second problem
    tc = qs["timecounter-stuck"]
    assert tc["status"] == 2 and "the kernel panicked first" in tc["cause"]
    assert j["verdict"]["problems"] == 2        # the panic, and why the TSC was 0


def test_an_earlier_panic_is_not_counted_twice(guest_dumps):
    qs, j = questions(guest_dumps("mpcorrupt", r"^panic: "), kbutest.GUEST_KERNEL)
    assert qs["mptable-walk"]["code"] == "mptable.count_walk_unknown_type"
    for name in ("tsc-not-initialized", "timecounter-stuck"):
        assert qs[name]["status"] == 2, qs[name]
        assert 'panicked first ("mptable_walk_table: Unknown MP Config Entry 68")' in \
            qs[name]["cause"]
    assert j["verdict"]["problems"] == 2        # the panic and the table that caused it


def test_a_calibrated_tsc_is_not_said_to_come_from_cpuid(guest_dumps):
    qs, _ = questions(guest_dumps("ok", r"^kbu-guest: idle"), kbutest.GUEST_KERNEL)
    cause = qs["tsc-not-initialized"]["cause"]
    assert qs["tsc-not-initialized"]["status"] == 0
    assert "not from CPUID" in cause and "from CPUID," not in cause, cause


def test_x2apic_flag_is_judged_by_the_kernels_own_cpuid_read(guest_dumps):
    # No CPUID can run on a dump; FreeBSD's cpu_feature2 holds leaf 1's ECX as identcpu read it.
    dump = guest_dumps("x2apic", r"^kbu-guest: idle")
    qs, j = questions(dump, kbutest.GUEST_KERNEL)
    x2 = qs["x2apic-mode"]
    assert x2["status"] == 1 and x2["code"] == "x2apic.flag_without_cpu", x2
    # the same rule asked alone gives its facts
    rc, v, err = kbutest.kbu_json("verdict", "x2apic-mode", "--core", dump,
                                  "--kernel", kbutest.GUEST_KERNEL)
    assert rc == 0 and v["status"] == 1, (err, v["verdict"])
    f = v["facts"]
    assert f["cpuid_from"] == "cpu_feature2" and f["kernel_x2apic"] == 1
    ecx = f["cpuid_1_ecx"]
    # QEMU's CPUID.1:ECX: the hypervisor bit and SSE3, no x2APIC under TCG
    assert ecx >> 31 & 1 and ecx & 1 and not ecx >> 21 & 1, hex(ecx)
    assert "the kernel's own CPUID.1:ECX (cpu_feature2 = 0x%08x) has no x2APIC bit" % ecx \
        in x2["cause"]


def test_linux_x2apic_judged_by_boot_cpu_data(linux_dump, linux_target):
    # Linux keeps leaf 1's ECX in boot_cpu_data.x86_capability[4] (the profile's offset,
    # checked against DWARF): on a dump it is what says the CPU has no x2APIC.
    rc, j, err = kbutest.kbu_json("verdict", "x2apic-mode", "--core", linux_dump().path,
                                  "--symbols", linux_target.system_map)
    assert rc == 0, err
    f = j["facts"]
    assert j["status"] == 0 and f["kernel_x2apic"] == 0, j["verdict"]
    assert f["cpuid_from"] == "boot_cpu_data+56"
    ecx = f["cpuid_1_ecx"]
    assert ecx >> 31 & 1 and ecx & 1 and not ecx >> 21 & 1, hex(ecx)
    assert j["verdict"]["cause"] == "xAPIC mode: x2apic_mode = 0; the CPU does not offer x2APIC"


@pytest.fixture(scope="module")
def seabios_guest_dump(tmp_path_factory):
    q = kbutest.Qemu(kbutest.GUEST_KERNEL, smp=1, memory="128M", append="console=ttyS0",
                     acpi=True, bios=SEABIOS)
    try:
        q.start()
        q.wait_serial(r"^kbu-guest: idle", timeout=60)
        return q.dump(str(tmp_path_factory.mktemp("seabios") / "seabios.core"))
    finally:
        q.stop()


def test_seabios_dsdt_with_no_device_is_no_device(seabios_guest_dump):
    qs, _ = questions(seabios_guest_dump, kbutest.GUEST_KERNEL)
    d = qs["where-are-my-devices"]
    assert d["status"] == 0 and d["code"] == "devices.none"
    assert "none in the ACPI DSDT" in d["cause"]


# -- Debian's Linux ----------------------------------------------------------------

@pytest.mark.linux
@pytest.mark.slow
def test_linux_without_an_mp_reader_does_not_walk_the_table(linux_qemu, linux_target, tmp_path):
    q = linux_qemu(image="elf", smp=2, acpi=False)
    dump = q.dump(str(tmp_path / "linux-qboot.core"))
    qs, _ = questions(dump, linux_target.vmlinux, "--symbols", linux_target.system_map)
    walk = qs["mptable-walk"]
    assert walk["status"] == 0 and "has no MP-table reader (CONFIG_X86_MPPARSE is off)" in \
        walk["cause"], walk
    assert "walked the table by entry_count" not in walk["cause"]
    assert qs["where-are-my-cpus"]["code"] == "cpus.no_mp_parser"
    # the clocksource was chosen before the root-fs panic: that is a verdict, not a note
    assert "panicked first" not in qs["timecounter-stuck"]["cause"]
    # stripped (no System.map): what cannot be read is undecided, never a problem
    qs, j = questions(dump, linux_target.vmlinux)
    assert qs["timecounter-stuck"]["status"] == 2, qs["timecounter-stuck"]


@pytest.mark.linux
@pytest.mark.slow
def test_cpus_a_panic_took_offline_still_count(linux_qemu, linux_target, tmp_path):
    # SeaBIOS: an MP table with one CPU, a MADT with four; Linux reads the MADT, brings
    # up four, and its panic takes three offline (__num_online_cpus drops to 1).
    q = linux_qemu(image="elf", smp=4, acpi=True, bios=SEABIOS)
    dump = q.dump(str(tmp_path / "linux-seabios.core"))
    qs, j = questions(dump, linux_target.vmlinux, "--symbols", linux_target.system_map)
    cpus = qs["where-are-my-cpus"]
    assert cpus["status"] == 0, cpus
    assert "the kernel found 4" in cpus["cause"]
    assert "a panic takes the other CPUs offline" in cpus["cause"]
    assert "enumerates CPUs from the MP table, so it found 1" not in cpus["cause"]


@pytest.mark.linux
@pytest.mark.slow
def test_kaslr_kernel_is_read_where_it_runs(linux_qemu, linux_target, tmp_path):
    q = linux_qemu(image="bzimage", smp=1)
    dump = q.dump(str(tmp_path / "linuxbz.core"))
    qs, j = questions(dump, linux_target.vmlinux, "--symbols", linux_target.system_map)
    assert j["reloc"]["virt_found"] and j["reloc"]["virt_slide"] != 0
    # the log is read through the slid symbols: the calibration is quoted
    tsc = qs["tsc-not-initialized"]
    assert "Linux" in tsc["cause"] and "tsc:" in tsc["cause"], tsc
    # a bzImage is booted by the Linux boot protocol: no start info, and no garbage decoded
    pvh = qs["pvh-entry"]
    assert pvh["status"] == 2 and "not booted through PVH" in pvh["cause"], pvh
    dev = qs["where-are-my-devices"]
    assert dev["status"] != 1, dev
