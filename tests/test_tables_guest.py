"""The MP table and PVH start info as a FreeBSD-layout kernel keeps them, on the
test kernel (build/guest/kernel) booted on microvm: seeds/000's panic
("Unknown MP Config Entry 68") reproduced by the `mpcorrupt` scenario, and the
start info behind FreeBSD's `start_info` pointer and NetBSD's `hvm_start_paddr`."""
import os
import re

import pytest

import kbutest


def run_json(*args):
    rc, obj, err = kbutest.kbu_json(*args)
    assert rc == 0, err
    assert obj is not None
    return obj


@pytest.fixture(scope="module")
def mpcorrupt_dump(tmp_path_factory):
    """A dump of the guest at its "Unknown MP Config Entry 68" panic, -smp 2."""
    kernel = kbutest.GUEST_KERNEL
    if not os.path.isfile(kernel):
        pytest.skip("%s is not built (run 'make guest' or 'make test')" % kernel)
    q = kbutest.Qemu(kernel, smp=2, memory="128M",
                     append="console=ttyS0 kbu.scenario=mpcorrupt kbu.token=guest")
    try:
        q.start()
        q.wait_serial(r"^panic: .*Unknown MP Config Entry 68", timeout=60)
        path = q.dump(str(tmp_path_factory.mktemp("guest") / "mpcorrupt.core"))
        serial = q.serial_text()
    finally:
        q.stop()
    return kernel, path, serial


def test_kernel_copy_with_entry_68(mpcorrupt_dump):
    """`--table mpct` follows the kernel's pointer to its copy and shows what the
    kernel's walker choked on: type 68 at offset 0x54, after the 2 CPUs, where
    the firmware's bus entry was."""
    kernel, dump, serial = mpcorrupt_dump
    m = re.search(r"copy at (0x[0-9a-f]+): entry at offset (0x[0-9a-f]+) set to type 68", serial)
    assert m, serial
    copy_va, offset = int(m.group(1), 16), int(m.group(2), 16)
    obj = run_json("mptable", "--core", dump, "--kernel", kernel, "--table", "mpct")
    hdr = obj["header"]
    assert hdr["address"] == copy_va - 0xffffffff80000000
    assert "through mpct" in hdr["found"] and "pointer %#x" % copy_va in hdr["found"]
    assert hdr["entry_count"] == 21 and hdr["entries_walked"] == 2
    assert len(obj["entries"]["processors"]) == 2
    msgs = [p["message"] for p in obj["problems"]]
    unknown = [x for x in msgs if "unknown entry type 68 (0x44) at offset %#x" % offset in x]
    assert unknown, msgs
    assert 'spell "ISA   "' in unknown[0]
    assert any("entry count is 21; 2 entries were walked before the walk stopped" in x for x in msgs), msgs
    # The text form puts it on its own "!" line.
    rc, out, err = kbutest.kbu("mptable", "--core", dump, "--kernel", kernel, "--table", "mpct")
    assert rc == 0, err
    assert re.search(r"^\s*! error: unknown entry type 68", out, re.M), out


def test_firmware_table_is_intact(mpcorrupt_dump):
    """The firmware's own table (found by the MP spec search) still lists both
    CPUs and every entry; only its entry_count of 0 is flagged."""
    kernel, dump, _ = mpcorrupt_dump
    obj = run_json("mptable", "--core", dump)
    assert obj["floating_pointer"]["address"] == 0x9fc00
    assert obj["header"]["entries_walked"] == 21
    assert [p["apic_id"] for p in obj["entries"]["processors"]] == [0, 1]
    assert not [p for p in obj["problems"] if "unknown entry" in p["message"]]


def test_start_info_through_freebsd_pointer(mpcorrupt_dump):
    kernel, dump, _ = mpcorrupt_dump
    si = run_json("pvh", "--core", dump, "--kernel", kernel)["start_info"]
    assert "start_info at 0x" in si["how"] and "it holds pointer" in si["how"]
    assert "kbu.token=guest" in si["cmdline"]
    scanned = run_json("pvh", "--core", dump)["start_info"]
    assert scanned["address"] == si["address"]
    assert scanned["how"] == "found by scanning low memory"


def test_start_info_through_netbsd_physical_address(mpcorrupt_dump):
    """The same kernel keeps NetBSD's hvm_start_paddr too: with the netbsd
    profile that variable is followed, as a physical address."""
    kernel, dump, _ = mpcorrupt_dump
    si = run_json("pvh", "--core", dump, "--kernel", kernel, "--os", "netbsd")["start_info"]
    assert "hvm_start_paddr" in si["how"] and "physical address" in si["how"]
    assert "kbu.token=guest" in si["cmdline"]
    # A profile whose variable this kernel lacks: said so, and the built-in names still find it.
    obj = run_json("pvh", "--core", dump, "--kernel", kernel, "--os", "linux")
    assert "kbu.token=guest" in obj["start_info"]["cmdline"]
    assert any("no symbol pvh_start_info" in p["message"] for p in obj["problems"]), obj["problems"]
