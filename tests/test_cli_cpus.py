"""`kbu cpus`, `kbu vtop` and `kbu x` on real boots of Debian's cloud kernel: a
QEMU dump taken at the root-fs panic, a dump taken before the first
instruction, and the live GDB stub.

What a porter checks: the CPU is in long mode with the paging level the kernel
set up (booted through PVH, Linux builds 4-level tables: the decompressor that
would switch to 5-level is skipped), CR3 is the kernel's own top-level table,
RIP is inside a kernel function, and a kernel address translates to where the
image was loaded."""
import os
import shutil

import pytest

import kbutest

pytestmark = pytest.mark.linux

KERNBASE = 0xffffffff80000000


def run_json(*args, asan=False):
    rc, obj, err = kbutest.kbu_json(*args, asan=asan)
    assert rc == 0, err
    assert obj is not None
    return obj


def test_cpus_on_panic_dump(linux_dump, linux_target):
    d = linux_dump(smp=2)
    obj = run_json("cpus", "--core", d.path, "--symbols", linux_target.system_map, asan=True)
    assert obj["ncpus"] == 2
    assert len(obj["cpus"]) == 2
    cpu0 = obj["cpus"][0]
    assert (cpu0["mode"], cpu0["paging"]) == ("long", "4-level paging")
    assert cpu0["bits"] == 64
    # CR3 is the kernel's top-level table, at its load address (no KASLR on the ELF boot).
    assert cpu0["cr3"] & ~0xfff == linux_target.symbol("init_top_pgt") - KERNBASE
    assert cpu0["control"]["cr0_flags"] == ["PE", "MP", "ET", "NE", "WP", "AM", "PG"]
    assert "PAE" in cpu0["control"]["cr4_flags"]
    assert "LA57" not in cpu0["control"]["cr4_flags"]
    # RIP is in a kernel function, and its page is mapped by the CPU's own tables.
    assert cpu0["rip"] >= KERNBASE
    assert "+" in cpu0["rip_symbol"] or cpu0["rip_symbol"]
    assert cpu0["rip_phys"] == cpu0["rip"] - KERNBASE
    assert not [p for p in obj["problems"] if p["severity"] != "note"]


def test_cpus_text_reads_at_a_glance(linux_dump):
    d = linux_dump(smp=2)
    rc, out, err = kbutest.kbu("cpus", "--core", d.path)
    assert rc == 0, err
    assert "CPUs:   2" in out
    assert "long mode, 4-level paging" in out
    assert "cr0:            0x80050033  PE MP ET NE WP AM PG" in out


def test_vtop_and_x_on_panic_dump(linux_dump, linux_target):
    d = linux_dump(smp=1)
    banner = linux_target.symbol("linux_banner")
    obj = run_json("vtop", "--core", d.path, "--symbols", linux_target.system_map, "linux_banner")
    assert obj["virtual"] == banner
    assert obj["symbol"] == "linux_banner"
    assert [s["level"] for s in obj["walk"]][:3] == ["PML4", "PDPT", "PD"]
    assert obj["walk"][0]["index"] == (banner >> 39) & 0x1ff
    assert obj["physical"] == banner - KERNBASE
    x = run_json("x", "--core", d.path, "--symbols", linux_target.system_map, "linux_banner", "64")
    text = bytes.fromhex(x["bytes"])
    assert text.startswith(b"Linux version ")
    assert linux_target.version.encode() in text or b"cloud-amd64" in text
    # The same bytes through the physical address.
    xp = run_json("x", "-p", "--core", d.path, hex(obj["physical"]), "64")
    assert xp["bytes"] == x["bytes"]
    # The console said the same thing.
    assert text.split(b"\0")[0].decode().split(" (")[0] in d.serial


def test_cpus_before_the_first_instruction(linux_qemu, linux_target, tmp_path):
    q = linux_qemu(paused=True)
    path = q.dump(str(tmp_path / "early.core"))
    # QEMU marks a dump taken outside long mode as i386 (e_machine 3). On microvm the
    # firmware ROM ends at 4 GiB, so the container is still ELF64: the reader must take
    # the i386 register notes from an ELF64 file (pure ELF32 cores are unit-tested).
    with open(path, "rb") as f:
        ident = f.read(20)
    assert ident[4] in (1, 2) and ident[18] == 3
    obj = run_json("cpus", "--core", path, asan=True)
    cpu0 = obj["cpus"][0]
    # At reset: real mode, CS base 0xffff0000, IP 0xfff0; QEMU writes the 32-bit register form.
    assert cpu0["mode"] == "real"
    assert cpu0["paging"] == "paging off"
    assert cpu0["bits"] == 32
    assert cpu0["rip"] == 0xfff0
    cs = [s for s in cpu0["segments"] if s["name"] == "cs"][0]
    assert cs["selector"] == 0xf000 and cs["base"] == 0xffff0000
    notes = [p["message"] for p in obj["problems"] if p["path"] == "cpus[0]"]
    assert any("reset vector" in n for n in notes)
    # With Linux's map, the reset vector is not named after per-CPU data that
    # happens to be linked at a small address.
    obj = run_json("cpus", "--core", path, "--symbols", linux_target.system_map, asan=True)
    assert "rip_symbol" not in obj["cpus"][0], obj["cpus"][0]


def test_cpus_live_agrees_with_gdb(linux_qemu, linux_target):
    q = linux_qemu()
    rc, obj, err = kbutest.kbu_json("vtop", "--gdb", "127.0.0.1:%d" % q.port, hex(linux_target.symbol("linux_banner")))
    assert rc == 0, err
    assert obj["physical"] == linux_target.symbol("linux_banner") - KERNBASE
    out = kbutest.gdb_batch(None, q.port, ["info registers cr3"])
    gdb_cr3 = int(out.split("cr3")[1].split()[0], 16)
    assert obj["cr3"] == gdb_cr3


@pytest.mark.parametrize("cut", [100, 4096, 1 << 20])
def test_truncated_real_dump_is_one_clear_error(linux_dump, tmp_path, cut):
    d = linux_dump(smp=1)
    bad = tmp_path / "cut.core"
    with open(d.path, "rb") as f, open(bad, "wb") as out:
        out.write(f.read(cut))
    rc, out, err = kbutest.kbu("cpus", "--core", str(bad), asan=True)
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("kbu: cpus: ")
    assert "truncated" in err or "past the end" in err


def test_not_a_dump(linux_target, tmp_path):
    # A kernel image is not a dump; a directory is not a file.
    rc, out, err = kbutest.kbu("cpus", "--core", linux_target.vmlinux, asan=True)
    assert rc == 2 and "not a core dump" in err and "--kernel" in err
    rc, out, err = kbutest.kbu("cpus", "--core", str(tmp_path), asan=True)
    assert rc == 2 and "not a regular file" in err


def test_bzimage_boot_uses_5level_paging(linux_qemu, linux_target, tmp_path):
    """Booted through its decompressor on a CPU with LA57 (-cpu max), Linux switches
    to 5-level paging and slides itself (KASLR): the walker must follow both."""
    q = linux_qemu(image="bzimage")
    offset = kbutest.kernel_offset(q.serial_text())
    assert offset is not None
    gdb = kbutest.gdb_batch(None, q.port, ["info registers cr4"])
    la57 = "LA57" in gdb.split("cr4", 1)[1].split("\n")[0]
    path = q.dump(str(tmp_path / "bz.core"))
    obj = run_json("cpus", "--core", path, asan=True)
    cpu0 = obj["cpus"][0]
    assert (cpu0["mode"], cpu0["paging"]) == ("long", "5-level paging" if la57 else "4-level paging")
    banner = linux_target.symbol("linux_banner") + offset
    v = run_json("vtop", "--core", path, hex(banner))
    levels = [s["level"] for s in v["walk"]]
    assert levels[0] == ("PML5" if la57 else "PML4")
    assert v["present"]
    x = run_json("x", "--core", path, hex(banner), "14")
    assert bytes.fromhex(x["bytes"]) == b"Linux version "
