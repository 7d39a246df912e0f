"""kbu dmesg: the message buffer read from memory matches what the serial
console printed, for the test kernel (FreeBSD msgbuf) and Debian's Linux
(printk ring buffer), from a dump through the CLI and live through GDB."""
import re

import pytest

import kbutest

STAMP = re.compile(r"^\[\s*\d+\.\d{6}\] ")


def console_lines(serial):
    """The console text as lines, CRs dropped, consecutive duplicates folded
    (Linux prints a message on both its boot and its real console)."""
    out = []
    for line in serial.replace("\r", "").splitlines():
        if not out or out[-1] != line:
            out.append(line)
    return out


def kernel_console_lines(serial):
    """The console lines the kernel printed: the test kernel's harness lines
    ("kbu-guest: ...") go to the serial port only, never to its log."""
    return [l for l in console_lines(serial) if not l.startswith("kbu-guest: ")]


def log_lines(report_text):
    """The log lines of `kbu dmesg -q` output."""
    return [l for l in report_text.replace("\r", "").splitlines()]


def assert_subsequence(small, big, what):
    """Every line of small appears in big, in order."""
    i = 0
    missing = []
    for line in small:
        j = i
        while j < len(big) and big[j] != line:
            j += 1
        if j == len(big):
            missing.append(line)
        else:
            i = j + 1
    assert not missing, "%s: %d line(s) not found in order, first: %r" % (
        what, len(missing), missing[:3])


def boot_guest(qemu, kernel, scenario, final):
    q = qemu(kernel, memory="128M", smp=2, append="console=ttyS0 kbu.scenario=%s" % scenario)
    q.wait_serial(final, timeout=60)
    return q


@pytest.mark.parametrize("scenario,final,log_final", [
    ("tsc", r"^panic: TSC not initialized", r"^panic: TSC not initialized"),
    ("timecounter", r"^kbu-guest: idle", r"^Statistical lapic calibration failed!")])
def test_guest_dmesg_from_dump_matches_console(qemu, guest_kernel, tmp_path, scenario, final,
                                               log_final):
    q = boot_guest(qemu, guest_kernel, scenario, final)
    core = q.dump(str(tmp_path / "guest.core"))
    serial = kernel_console_lines(q.serial_text())
    rc, out, err = kbutest.kbu("dmesg", "-q", "--core", core, "--kernel", guest_kernel)
    assert rc == 0, err
    log = log_lines(out)
    # The buffer starts at the kernel's first message and ends with its last.
    start = serial.index("---<<BOOT>>---")
    assert log[0] == "---<<BOOT>>---"
    assert log == serial[start:], "dmesg differs from the console:\n" + out
    # The last line is the final one, or FreeBSD's trailer after a panic line.
    last = [l for l in log if not re.match(r"^(cpuid|time) = \d+$", l)][-1]
    assert re.search(log_final, last)
    assert not [l for l in log if "kbu-guest" in l], log

    rc, obj, err = kbutest.kbu_json("dmesg", "--core", core, "--kernel", guest_kernel)
    assert rc == 0 and obj["os"].startswith("freebsd"), err
    assert (obj["symbol"], obj["format"]) == ("msgbufp", "freebsd")
    assert obj["text"].splitlines() == log
    assert obj["wrapped"] is False


def test_guest_dmesg_live_in_gdb(qemu, guest_kernel):
    q = boot_guest(qemu, guest_kernel, "tsc", r"^panic: TSC not initialized")
    out = kbutest.gdb_kbu(guest_kernel, q.port, ["kbu dmesg -q"])
    serial = kernel_console_lines(q.serial_text())
    start = serial.index("---<<BOOT>>---")
    assert_subsequence(serial[start:], out.replace("\r", "").splitlines(), "live dmesg")
    assert "panic: TSC not initialized" in out


def test_dmesg_bad_input_is_one_clear_error(guest_kernel, tmp_path):
    rc, out, err = kbutest.kbu("dmesg", "--kernel", guest_kernel)
    assert rc == 2 and "needs guest memory" in err
    junk = tmp_path / "junk.core"
    junk.write_bytes(b"\x7fELF" + b"\x00" * 60)
    rc, out, err = kbutest.kbu("dmesg", "--core", str(junk), "--kernel", guest_kernel, asan=True)
    assert rc == 2, (rc, out, err)
    assert err.count("\n") == 1, err
    rc, out, err = kbutest.kbu("dmesg", "--os", "plan9", "--kernel", guest_kernel,
                               "--phys", str(junk))
    assert rc == 2 and "'plan9'" in err and err.count("\n") == 1, err
    bad = tmp_path / "bad.ini"
    bad.write_text("[profile]\nname = x\n[roles]\nmsgbuf = msgbufp\nmsgbuf_format = vms\n")
    rc, out, err = kbutest.kbu("dmesg", "--profile", str(bad), "--kernel", guest_kernel,
                               "--phys", str(junk))
    assert rc == 2 and "unknown msgbuf_format 'vms'" in err, err


def linux_log(dump, target):
    rc, out, err = kbutest.kbu("dmesg", "-q", "--core", dump.path, "--kernel", target.vmlinux,
                               "--symbols", target.system_map)
    assert rc == 0, err
    return log_lines(out)


@pytest.mark.linux
def test_linux_dmesg_from_dump_matches_console(linux_dump, linux_target):
    dump = linux_dump()
    log = linux_log(dump, linux_target)
    serial = [l for l in console_lines(dump.serial) if STAMP.match(l)]
    assert log[0].endswith(serial[0][15:]) and "Linux version" in log[0]
    # Every console line is in the ring, in order (the ring also keeps the
    # debug-level records the console does not print).
    assert_subsequence(serial, log, "Linux dmesg")
    assert any("VFS: Unable to mount root fs on unknown-block(0,0)" in l for l in log)
    assert len(log) >= len(serial)


@pytest.mark.linux
def test_linux_dmesg_live_in_gdb(linux_qemu, linux_target):
    q = linux_qemu()
    out = kbutest.gdb_kbu(linux_target.vmlinux, q.port,
                          ["set kbu symbols %s" % linux_target.system_map, "kbu dmesg -q"],
                          timeout=120)
    serial = [l for l in console_lines(q.serial_text()) if STAMP.match(l)]
    assert_subsequence(serial, out.replace("\r", "").splitlines(), "live Linux dmesg")
