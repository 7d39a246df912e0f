"""The MP table and the PVH start info of real boots of Debian's cloud kernel on
QEMU 7.2 microvm (qboot), read by `kbu mptable` and `kbu pvh` from a QEMU dump,
from a raw physical image of the same memory, and from the live GDB stub.

What a porter checks: every CPU of -smp N is listed although qboot leaves the
table's entry_count at 0 (and kbu says so), and the command line the VM was
started with (our token) is in the start info, found by scanning and through
Linux's pvh_start_info."""
import os
import struct

import pytest

import kbutest

pytestmark = pytest.mark.linux

KERNBASE = 0xffffffff80000000
TOKEN = "kbu-test-token"


def problems(obj, path_prefix=""):
    return [p["message"] for p in obj.get("problems", []) if p["path"].startswith(path_prefix)]


def core_to_raw(core, raw, size=256 << 20):
    """Writes the guest-physical bytes [0, size) of a plain QEMU ELF64 core to raw."""
    with open(core, "rb") as f:
        ehdr = f.read(64)
        assert ehdr[:4] == b"\x7fELF" and ehdr[4] == 2, "not an ELF64 core"
        phoff, = struct.unpack_from("<Q", ehdr, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", ehdr, 0x36)
        f.seek(phoff)
        phdrs = [struct.unpack("<IIQQQQQQ", f.read(phentsize)[:56]) for _ in range(phnum)]
        with open(raw, "wb") as out:
            out.truncate(size)
            for p_type, _fl, off, _va, pa, filesz, _ms, _al in phdrs:
                if p_type != 1 or pa >= size:
                    continue
                n = min(filesz, size - pa)
                f.seek(off)
                pos = pa
                while n:
                    chunk = f.read(min(n, 1 << 20))
                    if chunk.count(0) != len(chunk):  # zero chunks stay holes: a sparse file
                        out.seek(pos)
                        out.write(chunk)
                    pos += len(chunk)
                    n -= len(chunk)
    return raw


def run_json(*args):
    rc, obj, err = kbutest.kbu_json(*args)
    if rc == 2 and "not supported in this build yet" in err:
        pytest.skip(err.strip())
    assert rc == 0, err
    assert obj is not None
    return obj


@pytest.fixture(scope="module")
def raw_images(tmp_path_factory):
    """Per -smp: a raw physical image made from the dump (cached for the module)."""
    made = {}

    def make(dump, smp):
        if smp not in made:
            made[smp] = core_to_raw(dump.path, str(tmp_path_factory.mktemp("raw") / ("smp%d.raw" % smp)))
        return made[smp]

    yield make
    for path in made.values():
        if os.path.exists(path):
            os.unlink(path)


def check_mptable(obj, smp):
    procs = obj["entries"]["processors"]
    assert len(procs) == smp
    assert [p["apic_id"] for p in procs] == list(range(smp))
    assert [p["bsp"] for p in procs].count(True) == 1 and procs[0]["bsp"]
    assert all(p["enabled"] for p in procs)
    assert obj["summary"]["cpus"] == smp
    assert obj["summary"]["cpu_apic_ids"] == list(range(smp))
    assert obj["summary"]["bsp"] == 0
    assert obj["floating_pointer"]["address"] == 0x9fc00
    assert obj["floating_pointer"]["checksum_ok"] is True
    hdr = obj["header"]
    assert hdr["entry_count"] == 0
    assert hdr["entries_walked"] == smp + 1 + 1 + 15 + 2
    assert hdr["checksum_ok"] is True
    msgs = problems(obj, "header")
    assert any("entry count is 0 but the table holds %d entries" % hdr["entries_walked"] in m
               for m in msgs), msgs
    # qboot's I/O APIC id is ncpus + 1, and ISA IRQ 0 goes to its pin 2.
    assert [a["apic_id"] for a in obj["entries"]["ioapics"]] == [smp + 1]
    routing = {r["irq"]: r["pin"] for r in obj["summary"]["isa_irq_routing"]}
    assert routing[0] == 2 and routing[4] == 4


@pytest.mark.parametrize("smp", [2, 4])
def test_mptable_lists_every_cpu_of_a_dump(linux_dump, raw_images, smp):
    dump = linux_dump(smp=smp, token=TOKEN)
    check_mptable(run_json("mptable", "--core", dump.path), smp)
    check_mptable(run_json("mptable", "--phys", raw_images(dump, smp)), smp)


@pytest.mark.parametrize("smp", [2, 4])
def test_pvh_finds_the_command_line(linux_dump, linux_target, raw_images, smp):
    dump = linux_dump(smp=smp, token=TOKEN)
    pvh_sym = linux_target.symbol("pvh_start_info")
    assert pvh_sym is not None
    for source in (["--core", dump.path], ["--phys", raw_images(dump, smp)]):
        scanned = run_json("pvh", *source)["start_info"]
        assert "kbu.token=%s" % TOKEN in scanned["cmdline"]
        assert scanned["how"] == "found by scanning low memory"
        assert scanned["version"] == 1
        # qboot's memory map: RAM up to 0x9fc00, then RAM from 1 MiB to the end of 256 MiB.
        ram = [(e["addr"], e["end"]) for e in scanned["memmap"] if e["type_name"] == "RAM"]
        assert (0, 0x9fbff) in ram and (0x100000, (256 << 20) - 1) in ram

        saved = run_json("pvh", *source, "--symbols", linux_target.system_map)["start_info"]
        assert "kbu.token=%s" % TOKEN in saved["cmdline"]
        assert "pvh_start_info" in saved["how"] and "the variable is the structure" in saved["how"]
        assert saved["address"] == pvh_sym - KERNBASE


def test_text_output_flags_the_count(linux_dump):
    dump = linux_dump(smp=2, token=TOKEN)
    rc, out, err = kbutest.kbu("mptable", "--core", dump.path)
    if rc == 2 and "not supported in this build yet" in err:
        pytest.skip(err.strip())
    assert rc == 0, err
    assert "Processors" in out and "APIC ID" in out and "BSP, usable" in out
    assert "! entry count is 0" in out
    rc, _, _ = kbutest.kbu("mptable", "--core", dump.path, "--strict")
    assert rc == 1


def test_live_stub_cross_checks_the_ioapic(linux_qemu):
    """Over the GDB stub the monitor reads the I/O APIC's own ID register: 0,
    where qboot's table says ncpus + 1."""
    q = linux_qemu(image="elf", smp=2, append="kbu.token=live")
    obj = run_json("mptable", "--gdb", "127.0.0.1:%d" % q.port)
    assert len(obj["entries"]["processors"]) == 2
    msgs = problems(obj, "summary")
    assert any("the table says id 3, the I/O APIC's own ID register says 0" in m for m in msgs), msgs
    pvh = run_json("pvh", "--gdb", "127.0.0.1:%d" % q.port)["start_info"]
    assert "kbu.token=live" in pvh["cmdline"]


def test_pvh_at_the_entry_point_is_where_ebx_points(linux_qemu, linux_target, tmp_path):
    """Stopped on the kernel's PVH entry (PHYS32_ENTRY) by real GDB and dumped
    there: CPU 0's %ebx holds the start info's address, and kbu uses it."""
    q = linux_qemu(image="elf", smp=2, append="kbu.token=entry", paused=True)
    path = str(tmp_path / "entry.core")
    out = kbutest.gdb_batch(None, q.port, ["hbreak *%#x" % linux_target.pvh_entry, "continue",
                                           "printf \"ebx=%#x\\n\", $ebx",
                                           "monitor dump-guest-memory %s" % path], timeout=120)
    q.stop()
    assert "ebx=" in out, out
    ebx = int(out.split("ebx=")[1].split()[0], 16)
    pvh = run_json("pvh", "--core", path)["start_info"]
    assert pvh["address"] == ebx
    assert "%ebx" in pvh["how"]
    assert "kbu.token=entry" in pvh["cmdline"]
    # qboot wrote the MP table before jumping to the kernel: already complete here.
    assert len(run_json("mptable", "--core", path)["entries"]["processors"]) == 2


def test_inside_gdb_at_the_pvh_entry(linux_qemu, linux_target):
    """The same commands inside GDB (the extension's callback memory source):
    stopped on the PVH entry, `kbu pvh` uses %ebx and `kbu mptable` checks the
    I/O APIC through the monitor."""
    q = linux_qemu(image="elf", smp=2, append="kbu.token=ingdb", paused=True)
    out = kbutest.gdb_kbu(None, q.port, ["hbreak *%#x" % linux_target.pvh_entry, "continue",
                                         "kbu pvh", "kbu mptable"], timeout=120)
    assert "where CPU 0's %ebx points" in out, out
    assert "kbu.token=ingdb" in out
    assert "BSP, usable" in out and "AP, usable" in out
    assert "the table says id 3, the I/O APIC's own ID register says 0" in out
    assert "Traceback" not in out
