"""Bad input to every kbu command, as a porter meets it: a missing file, a
directory, an empty file, something that is not ELF, a dump cut short (in its
notes and in its memory), a dump without notes, a stripped kernel without a
map, a GDB port nobody listens on and one that hangs up at once.

Each must give exactly one line on stderr, "kbu: COMMAND: ..." saying what is
wrong with which file, exit status 2, nothing on stdout, and no sanitizer
report (the ASan/UBSan build is run).
"""
import os
import shutil
import socket
import struct
import threading

import pytest

import kbutest

MEM_COMMANDS = [
    ["cpus"], ["dmesg"], ["lapic"], ["mptable"], ["pvh"], ["triage"],
    ["vtop", "0xffffffff80200000"], ["x", "0xffffffff80200000", "16"],
]
KERNEL_COMMANDS = [
    ["asserts"], ["layout"], ["msgrefs", "TSC"], ["notes"], ["os"], ["reloc"],
    ["sym", "lapic_init"],
]


def ids(cmds):
    return [c[0] for c in cmds]


def one_error_line(rc, out, err, cmd):
    """The contract for bad input; returns the message after "kbu: CMD: "."""
    assert rc == 2, f"exit {rc} (98/99: sanitizer report); stderr:\n{err}"
    assert out == "", f"stdout not empty:\n{out[:500]}"
    lines = err.splitlines()
    assert len(lines) == 1, f"not one line on stderr:\n{err}"
    prefix = f"kbu: {cmd}: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix):]


@pytest.fixture(scope="module")
def files(tmp_path_factory, guest_kernel):
    """Bad files next to a real dump of the test kernel (128 MiB, taken once)."""
    d = tmp_path_factory.mktemp("badinput")
    f = {"missing": str(d / "no-such-file"), "dir": str(d)}
    (d / "empty").write_bytes(b"")
    f["empty"] = str(d / "empty")
    (d / "notelf").write_text("hello, this is not an ELF file\n")
    f["notelf"] = str(d / "notelf")
    with kbutest.Qemu(guest_kernel, memory="128M") as q:
        q.start()
        q.wait_serial(r"kbu-guest: idle", timeout=120)
        core = q.dump(str(d / "guest.core"))
    f["core"] = core
    with open(core, "rb") as src:
        head = src.read(3 << 20)
    # head -c 1000: the file ends inside the notes
    (d / "cut-notes.core").write_bytes(head[:1000])
    f["cut-notes"] = str(d / "cut-notes.core")
    # 3 MiB of a 128 MiB dump: the file ends inside guest memory
    (d / "cut-memory.core").write_bytes(head)
    f["cut-memory"] = str(d / "cut-memory.core")
    # the same dump with its PT_NOTE turned into PT_NULL: memory, no CPU state
    nonotes = str(d / "nonotes.core")
    shutil.copyfile(core, nonotes)
    with open(nonotes, "r+b") as w:
        w.seek(32)
        phoff = struct.unpack("<Q", w.read(8))[0]
        w.seek(phoff)
        assert struct.unpack("<I", w.read(4))[0] == 4  # PT_NOTE comes first in QEMU's dumps
        w.seek(phoff)
        w.write(struct.pack("<I", 0))
    f["nonotes"] = nonotes
    yield f


# What each bad file must be called (a word a porter recognises).
CORE_SAYS = {
    "missing": "No such file or directory",
    "dir": "not a regular file",
    "empty": "empty file",
    "notelf": "not an ELF file",
    "cut-notes": "ends past the end of the file",
    "cut-memory": "truncated dump?",
    "nonotes": "no CPU notes",
}


@pytest.mark.parametrize("bad", sorted(CORE_SAYS))
@pytest.mark.parametrize("cmd", MEM_COMMANDS, ids=ids(MEM_COMMANDS))
def test_bad_core(files, guest_kernel, cmd, bad):
    rc, out, err = kbutest.kbu(*cmd, "--core", files[bad], "--kernel", guest_kernel, asan=True)
    msg = one_error_line(rc, out, err, cmd[0])
    assert CORE_SAYS[bad] in msg
    if bad != "missing" and bad != "dir":
        assert os.path.basename(files[bad]) in msg


def test_cut_notes_names_the_segment_and_nothing_else(files):
    """The PT_NOTE case names offset and size only (no dangling ', 0x0')."""
    rc, out, err = kbutest.kbu("cpus", "--core", files["cut-notes"], asan=True)
    msg = one_error_line(rc, out, err, "cpus")
    assert "PT_NOTE segment 0 (file offset 0x" in msg
    assert " bytes) ends past the end of the file (0x3e8 bytes): truncated dump?" in msg
    assert ", 0x0)" not in msg


def test_cut_memory_names_the_physical_range(files):
    rc, out, err = kbutest.kbu("x", "-p", "0x100000", "16", "--core", files["cut-memory"],
                               asan=True)
    msg = one_error_line(rc, out, err, "x")
    assert "PT_LOAD segment" in msg and ", physical 0x" in msg
    assert "(0x300000 bytes): truncated dump?" in msg


KERNEL_SAYS = {
    "missing": "No such file or directory",
    "dir": "is a directory",
    "empty": "empty file (0 bytes)",
    "notelf": "not an ELF file (starts with 68 65 6c 6c",
    "cut-notes": "truncated?",
}


@pytest.mark.parametrize("bad", sorted(KERNEL_SAYS))
@pytest.mark.parametrize("cmd", KERNEL_COMMANDS, ids=ids(KERNEL_COMMANDS))
def test_bad_kernel(files, cmd, bad):
    rc, out, err = kbutest.kbu(*cmd, "--kernel", files[bad], asan=True)
    msg = one_error_line(rc, out, err, cmd[0])
    assert KERNEL_SAYS[bad] in msg


SYMBOLS_SAYS = {
    "missing": "No such file or directory",
    "dir": "is a directory, not a symbol map",
    "empty": "empty symbol map",
    "notelf": "no symbols in nm format",
    "core": "is an ELF file, not an nm-format map (give it as --kernel)",
}


@pytest.mark.parametrize("bad", sorted(SYMBOLS_SAYS))
def test_bad_symbols(files, bad):
    rc, out, err = kbutest.kbu("sym", "lapic_init", "--symbols", files[bad], asan=True)
    msg = one_error_line(rc, out, err, "sym")
    assert SYMBOLS_SAYS[bad] in msg


PHYS_SAYS = {"missing": "No such file or directory", "dir": "not a regular file",
             "empty": "empty image"}


@pytest.mark.parametrize("bad", sorted(PHYS_SAYS))
def test_bad_phys(files, bad):
    rc, out, err = kbutest.kbu("x", "-p", "0", "16", "--phys", files[bad], asan=True)
    assert PHYS_SAYS[bad] in one_error_line(rc, out, err, "x")


@pytest.mark.parametrize("cmd", [["asserts"], ["msgrefs", "TSC"], ["sym", "startup"]],
                         ids=["asserts", "msgrefs", "sym"])
def test_stripped_kernel_without_map(tmp_path, guest_kernel, cmd):
    """A stripped kernel alone: commands that need symbols say why there are none."""
    stripped = tmp_path / "kernel.stripped"
    shutil.copyfile(guest_kernel, stripped)
    objcopy = shutil.which("objcopy")
    if not objcopy:
        pytest.skip("objcopy (binutils) is not installed")
    assert os.system(f"{objcopy} --strip-all {stripped}") == 0
    rc, out, err = kbutest.kbu(*cmd, "--kernel", stripped, asan=True)
    msg = one_error_line(rc, out, err, cmd[0])
    assert "ELF has no symbol table (stripped; give --symbols MAP)" in msg
    assert str(stripped) in msg


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def hangup_port():
    """A listener that accepts and closes every connection at once."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)

    def serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield ls.getsockname()[1]
    ls.close()


@pytest.mark.parametrize("cmd", MEM_COMMANDS, ids=ids(MEM_COMMANDS))
def test_gdb_nothing_listening(guest_kernel, cmd):
    port = closed_port()
    rc, out, err = kbutest.kbu(*cmd, "--gdb", f"127.0.0.1:{port}", "--kernel", guest_kernel,
                               asan=True)
    msg = one_error_line(rc, out, err, cmd[0])
    assert f"cannot connect to gdb stub at 127.0.0.1:{port}: Connection refused" in msg


@pytest.mark.parametrize("cmd", MEM_COMMANDS, ids=ids(MEM_COMMANDS))
def test_gdb_port_that_hangs_up(guest_kernel, hangup_port, cmd):
    rc, out, err = kbutest.kbu(*cmd, "--gdb", f"127.0.0.1:{hangup_port}", "--kernel",
                               guest_kernel, asan=True)
    msg = one_error_line(rc, out, err, cmd[0])
    assert f"gdb stub 127.0.0.1:{hangup_port}: closed the connection" in msg


@pytest.mark.parametrize("spec,says", [("nohost", "expected HOST:PORT"),
                                       ("127.0.0.1:99999", "port must be 1-65535"),
                                       ("127.0.0.1:", "port must be 1-65535")])
def test_gdb_bad_spec(spec, says):
    rc, out, err = kbutest.kbu("cpus", "--gdb", spec, asan=True)
    assert says in one_error_line(rc, out, err, "cpus")


def test_bad_arguments(files, guest_kernel):
    core = ["--core", files["core"], "--kernel", guest_kernel]
    cases = [
        (["x"], "usage: kbu x [-p] ADDR [LEN]"),
        (["x", "-p", "0x1000", "-5"], "'-5' is not a number"),
        (["x", "-p", "0x1000", "0"], "length 0: give 1 to"),
        (["x", "-p", "0xfffffffffffffff8", "16"], "wraps past the top of memory"),
        (["x", "no_such_symbol"], "no symbol 'no_such_symbol'"),
        (["vtop", "0x1000", "extra"], "'extra' is extra"),
        (["cpus", "--cpu", "7"], "--cpu 7: the source has 1 CPU"),
        (["mptable", "--frob"], "unknown option '--frob'"),
        (["dmesg", "--frob"], "unknown option '--frob'"),
        (["cpuid-decode", "zz"], "expected LEAF[.SUB]=EAX,EBX,ECX,EDX"),
    ]
    for argv, says in cases:
        rc, out, err = kbutest.kbu(*argv, *core, asan=True)
        assert says in one_error_line(rc, out, err, argv[0]), argv


def test_lapic_on_a_dump_says_where_to_look(files):
    """A dump has no LAPIC state; the error says where it is to be had."""
    rc, out, err = kbutest.kbu("lapic", "--core", files["core"], asan=True)
    msg = one_error_line(rc, out, err, "lapic")
    assert msg.startswith("no usable source: a dump holds no local APIC state")
    assert "--gdb HOST:PORT" in msg and "--qemu-text FILE" in msg


def test_absolute_symbols_name_no_address(files, guest_kernel):
    """vtop of a low address: the test kernel's absolute 'vec' (0x20) is no place."""
    rc, out, err = kbutest.kbu("vtop", "0x1234", "--core", files["core"], "--kernel",
                               guest_kernel, asan=True)
    assert rc == 0, err
    assert "Physical:" in out
    assert "vec+" not in out
    rc, out, err = kbutest.kbu("vtop", "lapic_init+4", "--core", files["core"], "--kernel",
                               guest_kernel, asan=True)
    assert rc == 0, err
    assert "Symbol:     lapic_init+0x4" in out


def test_stats_count_stub_round_trips(qemu, guest_kernel):
    """--stats over a live stub says how many round trips the command cost."""
    q = qemu(guest_kernel, paused=True)
    rc, out, err = kbutest.kbu("x", "-p", "0xffff0", "16", "--gdb", f"127.0.0.1:{q.port}",
                               "--stats", asan=True)
    assert rc == 0, err
    assert out.startswith("Physical")
    stats = [l for l in err.splitlines() if l.startswith("kbu: stats: ")]
    assert len(stats) == 1, err
    trips = int(stats[0].split(", ")[-1].split()[0])
    assert stats[0].endswith(" stub round trips")
    assert 2 <= trips <= 12, stats[0]  # the handshake plus one read, never 0
