"""`kbu mptable` and `kbu pvh` on bad raw images, through the sanitized CLI
(build/kbu-asan): one clear error line or a report with `!` lines, never a
crash, a sanitizer report or a hang."""
import struct

import pytest

import kbutest

MIB = 1 << 20


def checksum(b):
    return (-sum(b)) & 0xff


def mp_image(size=MIB, entries=b"", count=None, base_len=None, fp_at=0x9fc00):
    """A raw image with a floating pointer at fp_at and a config table after it."""
    img = bytearray(size)
    tab = fp_at + 16
    hdr = bytearray(44)
    hdr[0:4] = b"PCMP"
    blen = base_len if base_len is not None else 44 + len(entries)
    struct.pack_into("<HBB8s12sIHHIHBB", hdr, 4, blen & 0xffff, 4, 0, b"QBOOT   ", b"000000000000",
                     0, 0, count if count is not None else 0, 0xfee00000, 0, 0, 0)
    body = bytes(hdr) + entries
    end = min(tab + len(body), size)
    img[tab:end] = body[:end - tab]
    hdr[7] = checksum(body[:blen] if blen <= len(body) else body)
    img[tab + 7] = hdr[7]
    fp = bytearray(16)
    fp[0:4] = b"_MP_"
    struct.pack_into("<IBBB", fp, 4, tab, 1, 4, 0)
    fp[10] = checksum(fp)
    img[fp_at:fp_at + 16] = fp
    return img


def proc(apic, bsp):
    return struct.pack("<BBBBII8x", 0, apic, 0x14, 1 | (2 if bsp else 0), 0xf61, 0x178bfbfd)


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return str(p)


def kbu_asan(*args):
    rc, out, err = kbutest.kbu(*args, asan=True, timeout=60)
    assert rc not in (98, 99), err  # a sanitizer report
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return rc, out, err


def test_entry_68_from_a_raw_image(tmp_path):
    entries = proc(0, True) + proc(1, False) + b"D\x00ISA   " + b"\x01\x00ISA   "
    img = write(tmp_path, "mp68.raw", mp_image(entries=entries, count=4))
    rc, out, err = kbu_asan("mptable", "--phys", img)
    assert rc == 0, err
    assert "! error: unknown entry type 68 (0x44) at offset 0x54" in out
    assert 'spell "ISA   "' in out
    assert out.count("usable") >= 2
    rc, _, _ = kbu_asan("mptable", "--phys", img, "--strict")
    assert rc == 1


def test_lengths_past_the_end_of_the_image(tmp_path):
    # The table starts 0x3f0 bytes before the end of a 640 KiB image and claims 8 KiB.
    img = write(tmp_path, "short.raw", mp_image(size=0xa0000, entries=proc(0, True) * 3,
                                                 base_len=0x2000))
    rc, out, err = kbu_asan("mptable", "--phys", img)
    assert rc == 0, err
    assert "base table length 0x2000 runs past the end of memory" in out
    assert "checksum not verified" in out


@pytest.mark.parametrize("data", [b"", b"\x00" * 4096, b"_MP_" * 1024])
def test_nothing_there(tmp_path, data):
    img = write(tmp_path, "junk.raw", data)
    for cmd in (["mptable"], ["pvh"]):
        rc, out, err = kbu_asan(*cmd, "--phys", img)
        assert rc == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kbu: %s:" % cmd[0]), err


def test_start_info_with_pointers_past_the_end(tmp_path):
    img = bytearray(MIB)
    si = 0xf31e0
    # v1, cmdline running into the end of the image, memory map outside it.
    struct.pack_into("<IIIIQQQQII", img, si, 0x336ec578, 1, 0, 0, 0, MIB - 16, 0,
                     0x40000000, 3, 0)
    img[MIB - 16:] = b"A" * 16
    path = write(tmp_path, "si.raw", img)
    rc, out, err = kbu_asan("pvh", "--phys", path, hex(si))
    assert rc == 0, err
    assert "is not NUL-terminated" in out
    assert "memory map entry 0 at 0x40000000 is outside memory" in out
    rc, out, err = kbu_asan("pvh", "--phys", path, "0x%x" % (MIB - 8))
    assert rc == 2 and "start info at 0xffff8" in err
