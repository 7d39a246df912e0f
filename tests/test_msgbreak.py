"""kbu break msg / kbu msgrefs: find the instructions that load a message and
stop there, without the kernel's source."""
import re

import pytest

import kbutest


def test_break_msg_stops_at_the_calibration_printf(qemu, guest_kernel):
    q = qemu(guest_kernel, memory="128M", smp=2, paused=True,
             append="console=ttyS0 kbu.scenario=timecounter")
    out = kbutest.gdb_kbu(guest_kernel, q.port, [
        "kbu break msg Statistical", "continue", "info symbol $pc",
        "python print('CONSOLE-HAS-IT', 'Statistical' in open(%r, errors='replace').read())"
        % q.serial_path])
    # Paused at the reset vector: armed at the physical and the virtual alias.
    m = re.search(r"kbu break msg: (clockcalib\+0x[0-9a-f]+): .* at physical 0x([0-9a-f]+) "
                  r"\(breakpoint (\d+)\) and virtual 0x([0-9a-f]+) \(breakpoint (\d+)\)", out)
    assert m, out
    assert int(m.group(4), 16) - int(m.group(2), 16) == 0xffffffff80000000
    # The kernel prints it running high: the virtual alias trips.
    assert re.search(r"Thread \d+ hit Breakpoint %s, 0x0*%s in clockcalib" % (m.group(5), m.group(4)),
                     out), out
    assert "about to use \"Statistical %s calibration failed!" in out
    assert "CONSOLE-HAS-IT False" in out


def test_break_msg_unknown_text_is_one_error(guest_kernel):
    out = kbutest.gdb_kbu(guest_kernel, None, ["kbu break msg no such message anywhere"])
    assert 'kbu break msg: no string in the kernel image contains "no such message anywhere"' in out
    assert "Traceback" not in out


def test_msgrefs_cli(guest_kernel):
    rc, obj, err = kbutest.kbu_json("msgrefs", "--kernel", guest_kernel, "calibration failed")
    assert rc == 0, err
    assert any(s["string"].startswith("Statistical %s calibration failed!") for s in obj["strings"])
    assert [r["function"] for r in obj["refs"]] == ["clockcalib"]
    rc, obj, err = kbutest.kbu_json("msgrefs", "--kernel", guest_kernel, "--data", "x2apic_mode:4")
    assert rc == 0, err
    writes = [r for r in obj["refs"] if r["access"] == "write"]
    assert [w["where"].split("+")[0] for w in writes] == ["lapic_x2apic_enable"]


@pytest.mark.linux
def test_msgrefs_over_linux_finds_the_vfs_panic(linux_target):
    rc, obj, err = kbutest.kbu_json("msgrefs", "--kernel", linux_target.vmlinux, "--symbols",
                                    linux_target.system_map, "Unable to mount root fs")
    assert rc == 0, err
    assert {r["where"].split("+")[0] for r in obj["refs"]} == {"mount_block_root"}
