"""kbu reloc in the CLI, on a memory dump: the same matching as in GDB, with
virtual reads going through the dump's own page tables."""
import re

import pytest

import kbutest


@pytest.mark.linux
@pytest.mark.slow
def test_reloc_on_kaslr_dump(linux_qemu, linux_target, tmp_path):
    q = linux_qemu(image="bzimage")
    slide = kbutest.kernel_offset(q.serial_text())
    assert slide
    dump = q.dump(str(tmp_path / "bz.core"))
    q.stop()
    rc, obj, err = kbutest.kbu_json("reloc", "--core", dump, "--kernel", linux_target.vmlinux)
    assert rc == 0, err
    assert obj["virtual"]["found"] is True
    assert obj["virtual"]["slide"] == slide
    assert obj["physical"]["found"] is True
    # The physical load address is 2 MiB aligned and holds the kernel's code.
    base = obj["physical"]["runtime_base"]
    assert base % (2 << 20) == 0
    rc, text, err = kbutest.kbu("reloc", "--core", dump, "--kernel", linux_target.vmlinux,
                                "--no-phys")
    assert rc == 0, err
    assert "match at link + 0x%x" % slide in text


@pytest.mark.linux
def test_reloc_on_pvh_dump_runs_at_link(linux_dump, linux_target):
    d = linux_dump()
    rc, obj, err = kbutest.kbu_json("reloc", "--core", d.path, "--kernel", linux_target.vmlinux)
    assert rc == 0, err
    assert obj["virtual"]["found"] and obj["virtual"]["slide"] == 0
    assert obj["physical"]["found"] and obj["physical"]["slide"] == 0


def test_reloc_without_memory_shows_the_map(guest_kernel):
    rc, text, err = kbutest.kbu("reloc", "--kernel", guest_kernel)
    assert rc == 0, err
    assert re.search(r"r-x\s+0xffffffff80200000\s+0x0000000000200000\s+\S+\s+0xffffffff80000000",
                     text), text
    assert "no memory source" in text
    rc, out, err = kbutest.kbu("reloc", "--kernel", guest_kernel, "--windows", "99", asan=True)
    assert rc == 2 and "--windows must be 1..32" in err
