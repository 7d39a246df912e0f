"""The MP table and PVH start info as a FreeBSD-layout kernel keeps them, on the
test kernel (build/guest/kernel) booted on microvm: seeds/000's panic
("Unknown MP Config Entry 68") reproduced by the `mpcorrupt` scenario (the
firmware table given Firecracker's off-by-one entry_count), and the start info
behind FreeBSD's static `start_info` pointer."""
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


def test_firecracker_off_by_one(mpcorrupt_dump):
    """seeds/000: the VMM's entry_count counts one entry more than the table
    holds; the kernel's walker trusts it and reads the byte after the table
    (68). kbu walks by length, lists every entry, and flags the count."""
    kernel, dump, serial = mpcorrupt_dump
    obj = run_json("mptable", "--core", dump)
    hdr = obj["header"]
    assert hdr["entries_walked"] == 21 and hdr["entry_count"] == 22
    assert [p["apic_id"] for p in obj["entries"]["processors"]] == [0, 1]
    msgs = [p["message"] for p in obj["problems"] if p["severity"] != "note"]
    assert any(m.startswith("entry_count 22 counts one entry more than the 236-byte table holds; a "
                            "walker that trusts it reads byte 0x44 (68) after the table")
               for m in msgs), msgs
    # The kernel's own pointer (FreeBSD's static mpct) leads to the same table.
    kobj = run_json("mptable", "--core", dump, "--kernel", kernel, "--table", "mpct")
    assert kobj["header"]["address"] == hdr["address"]
    assert "through mpct" in kobj["header"]["found"]
    rc, out, err = kbutest.kbu("mptable", "--core", dump)
    assert rc == 0, err
    assert re.search(r"^\s*! error: entry_count 22 counts one entry more than the 236-byte table",
                     out, re.M), out


def test_start_info_through_freebsd_pointer(mpcorrupt_dump):
    kernel, dump, _ = mpcorrupt_dump
    si = run_json("pvh", "--core", dump, "--kernel", kernel)["start_info"]
    assert "start_info at 0x" in si["how"] and "it holds pointer" in si["how"]
    assert "kbu.token=guest" in si["cmdline"]
    scanned = run_json("pvh", "--core", dump)["start_info"]
    assert scanned["address"] == si["address"]
    assert scanned["how"] == "found by scanning low memory"


def test_start_info_with_a_profile_that_does_not_fit(mpcorrupt_dump):
    """A profile whose start-info variable this kernel lacks (NetBSD's
    hvm_start_paddr, Linux's pvh_start_info): said so, and the scan still finds it."""
    kernel, dump, _ = mpcorrupt_dump
    obj = run_json("pvh", "--core", dump, "--kernel", kernel, "--os", "netbsd")
    assert "kbu.token=guest" in obj["start_info"]["cmdline"]
    assert any("no symbol hvm_start_paddr" in p["message"] for p in obj["problems"]), obj["problems"]
    # A profile whose variable this kernel lacks: said so, and the built-in names still find it.
    obj = run_json("pvh", "--core", dump, "--kernel", kernel, "--os", "linux")
    assert "kbu.token=guest" in obj["start_info"]["cmdline"]
    assert any("no symbol pvh_start_info" in p["message"] for p in obj["problems"]), obj["problems"]
