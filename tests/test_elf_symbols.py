"""kbu notes, layout and sym on real kernels: Debian's cloud kernel (its PVH
vmlinux, System.map and unstripped -dbg vmlinux) and the test kernel, checked
against binutils (readelf, nm) rather than against numbers written here."""
import os
import random
import re
import shutil
import subprocess
import tempfile

import pytest

import kbutest

pytestmark = pytest.mark.skipif(not shutil.which("readelf") or not shutil.which("nm"),
                                reason="binutils (readelf, nm) is not installed")


def readelf_notes(path):
    """(owner, type) of every note, in file order, as readelf -n sees them."""
    out = subprocess.run(["readelf", "-nW", path], capture_output=True, text=True).stdout
    notes = []
    for line in out.splitlines():
        m = re.match(r"\s+(\S+)\s+0x([0-9a-f]+)\s", line)
        if m and not line.strip().startswith("Owner"):
            notes.append(m.group(1))
    return notes


def readelf_loads(path):
    """(offset, vaddr, paddr, filesz, memsz) of every PT_LOAD per readelf -lW."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True).stdout
    loads = []
    for line in out.splitlines():
        p = line.split()
        if p and p[0] == "LOAD":
            loads.append(tuple(int(x, 16) for x in p[1:6]))
    return loads


@pytest.mark.linux
def test_notes_name_every_note_of_the_linux_vmlinux(linux_target):
    rc, obj, err = kbutest.kbu_json("notes", linux_target.vmlinux, "--strict")
    assert rc == 0, err
    notes = obj["notes"]
    assert [n["owner"] for n in notes] == readelf_notes(linux_target.vmlinux)
    by_name = {n["name"]: n for n in notes if n["owner"] == "Xen"}
    # Every Xen note is named; none is left as "?".
    assert all(n["name"] is not None for n in notes if n["owner"] == "Xen")
    assert by_name["GUEST_OS"]["value"] == "linux"
    assert by_name["PHYS32_ENTRY"]["number"] == linux_target.pvh_entry
    assert obj["pvh_entry"] == linux_target.pvh_entry
    gnu = [n for n in notes if n["name"] == "GNU_BUILD_ID"][0]
    build_id = subprocess.run(["readelf", "-nW", linux_target.vmlinux], capture_output=True,
                              text=True).stdout
    assert "Build ID: " + gnu["value"] in build_id
    assert obj["problems"] == []


@pytest.mark.linux
def test_notes_text_calls_out_the_pvh_entry_with_its_symbol(linux_target):
    rc, out, err = kbutest.kbu("--symbols", linux_target.system_map, "notes",
                               linux_target.vmlinux)
    assert rc == 0, err
    assert "PVH entry (PHYS32_ENTRY): 0x%x" % linux_target.pvh_entry in out
    assert re.search(r"PVH entry symbol:\s+pvh_start_xen\n", out)


@pytest.mark.linux
def test_layout_matches_readelf_and_names_the_entries(linux_target):
    rc, obj, err = kbutest.kbu_json("--symbols", linux_target.system_map, "layout",
                                    linux_target.vmlinux)
    assert rc == 0, err
    got = [(s["offset"], s["link"], s["load"], s["filesz"], s["memsz"]) for s in obj["segments"]]
    assert got == readelf_loads(linux_target.vmlinux)
    assert obj["map"]["offset"] == 0xffffffff80000000
    assert obj["map"]["link_base"] == linux_target.symbol("_text")
    assert obj["pvh_entry"]["load"] == linux_target.pvh_entry
    assert obj["pvh_entry"]["link"] == linux_target.symbol("pvh_start_xen")
    assert obj["pvh_entry"]["symbol"] == "pvh_start_xen"
    assert obj["entry"]["symbol"] == "startup_64"
    rc, out, err = kbutest.kbu("layout", linux_target.vmlinux)
    assert "subtract 0xffffffff80000000 from a link address to get the physical alias" in out


@pytest.mark.linux
def test_sym_from_system_map(linux_target):
    start = linux_target.symbol("startup_64")
    rc, obj, err = kbutest.kbu_json("--symbols", linux_target.system_map, "sym", "startup_64",
                                    hex(start + 0x10), "no_such_symbol_here")
    assert rc == 0, err
    name, addr, unknown = obj["results"]
    assert name["address"] == start and name["source"] == "map"
    assert (addr["symbol"], addr["offset"]) == ("startup_64", 0x10)
    assert unknown["symbol"] is None
    assert any("no_such_symbol_here" in p["message"] for p in obj["problems"])
    rc, _, _ = kbutest.kbu("--strict", "--symbols", linux_target.system_map, "sym",
                           "no_such_symbol_here")
    assert rc == 1


@pytest.mark.linux
def test_sym_on_the_unstripped_vmlinux_agrees_with_nm(linux_target):
    if not linux_target.vmlinux_dbg:
        pytest.skip("the -dbg package was not fetched")
    out = subprocess.run(["nm", "-S", "-n", linux_target.vmlinux_dbg], capture_output=True,
                         text=True).stdout
    funcs = []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "Tt" and int(p[1], 16) > 2:
            funcs.append((int(p[0], 16), int(p[1], 16), p[3]))
    assert len(funcs) > 30000
    sample = random.Random(7).sample(funcs, 500)
    queries = [hex(a + s // 2) for a, s, _ in sample]
    rc, obj, err = kbutest.kbu_json("--kernel", linux_target.vmlinux_dbg, "sym", *queries)
    assert rc == 0, err
    assert obj["symbols"] > 100000
    for (a, s, name), r in zip(sample, obj["results"]):
        q = a + s // 2
        start = q - r["offset"]
        # The answer is a sized symbol spanning the address (nm's, or an alias of it).
        assert r["size"] > 0 and start <= q < start + r["size"], (hex(q), name, r)
    same = sum(r["symbol"].split("+")[0] == name for (_, _, name), r in zip(sample, obj["results"]))
    assert same >= 490


@pytest.mark.linux
def test_stripped_vmlinux_alone_says_why_there_are_no_symbols(linux_target):
    rc, out, err = kbutest.kbu("--kernel", linux_target.vmlinux, "sym", "startup_64")
    assert rc == 2
    assert "ELF has no symbol table" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.linux
def test_bad_files_give_one_line_and_exit_2(linux_target):
    tmp = tempfile.mkdtemp(prefix="kbu-elfsym-")
    try:
        with open(linux_target.vmlinux, "rb") as f:
            head = f.read(1 << 20)
        cases = {"truncated": head, "header-only": head[:40], "empty": b"",
                 "text": b"ffffffff81000000 T _text\n"}
        for name, data in cases.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        for path in [os.path.join(tmp, n) for n in cases] + [tmp, os.path.join(tmp, "missing")]:
            for cmd in ("notes", "layout"):
                rc, out, err = kbutest.kbu(cmd, path, asan=True)
                assert rc == 2, (cmd, path, rc, err)
                assert len(err.strip().splitlines()) == 1, err
                assert path in err
            if path.endswith("/text"):
                continue  # a valid one-line map
            rc, out, err = kbutest.kbu("--symbols", path, "sym", "x", asan=True)
            assert rc == 2 and len(err.strip().splitlines()) == 1, (path, err)
    finally:
        shutil.rmtree(tmp)


def test_test_kernel_layout_and_notes(guest_kernel):
    rc, obj, err = kbutest.kbu_json("layout", guest_kernel, "--strict")
    assert rc == 0, err
    assert (obj["class"], obj["machine"], obj["type"]) == (64, "x86-64", "EXEC")
    assert obj["map"]["offset"] == 0xffffffff80000000
    assert obj["pvh_entry"]["symbol"] == "xen_start32"
    got = [(s["offset"], s["link"], s["load"], s["filesz"], s["memsz"]) for s in obj["segments"]]
    assert got == readelf_loads(guest_kernel)
    rc, obj, err = kbutest.kbu_json("--kernel", guest_kernel, "notes")
    assert rc == 0, err
    names = {n["name"] for n in obj["notes"]}
    assert {"GUEST_OS", "PHYS32_ENTRY", "VIRT_BASE", "FEATURES"} <= names
    assert obj["pvh_entry_symbol"] == "xen_start32"
