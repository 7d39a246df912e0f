"""kbu serve: real GDB on QEMU dumps through `target remote | kbu serve`, the test
kernel at its TSC panic and Debian's Linux at its root-fs panic. What GDB prints
there (a backtrace through panic, runtime-only variables, the boot command line)
must be what the dump holds, as the CLI reads it; the kbu GDB commands give the
CLI's reports; GDB's own core target is read through libkbu; the CLI's --core
works inside GDB; and the target refuses to be written or run."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

import kbutest

FRAME = re.compile(r"^#\d+\s+(?:0x[0-9a-f]+ in )?([A-Za-z_][\w.]*) \(", re.M)


class Serve:
    """`kbu serve ARGS --listen WHERE` in the background, for a `with` block;
    started once its 'listening on' line is out, killed at the end."""

    def __init__(self, *args, listen):
        self.args = list(args) + ["--listen", listen]
        self.where = listen
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen([kbutest.KBU, "serve"] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        line = self.proc.stderr.readline()  # waits for the event, not for a delay
        if "listening on" not in line:
            self.__exit__()
            raise AssertionError("kbu serve did not start: %r" % line)
        self.where = line.split("listening on ", 1)[1].split(" ", 1)[0]
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def guest_dump(guest_kernel):
    """The test kernel at its TSC panic on two vCPUs, dumped plain."""
    d = tempfile.mkdtemp(prefix=kbutest.qemu.tmp_prefix("serve"))
    q = kbutest.Qemu(guest_kernel, smp=2, memory="64M",
                     append="console=ttyS0 kbu.scenario=tsc kbu.token=serve-token", gdb=False)
    try:
        q.start()
        q.wait_serial(r"^panic: ", timeout=60)
        path = q.dump(os.path.join(d, "tsc.core"))
    finally:
        q.stop()
    yield path
    shutil.rmtree(d, ignore_errors=True)


def serve_cmd(*args):
    return "target remote | %s serve %s" % (kbutest.KBU, " ".join(args))


def frames(text):
    return FRAME.findall(text)


def cli(*args):
    rc, out, err = kbutest.kbu(*args)
    assert rc == 0, (args, out, err)
    return out


def cli_json(*args):
    rc, obj, err = kbutest.kbu_json(*args)
    assert rc == 0 and obj is not None, (args, err)
    return obj


def marked(*pairs):
    """GDB commands with an "@@NAME" line before each, so sections() can split
    the output by command (gdb -batch does not echo commands)."""
    cmds = []
    for name, cmd in pairs:
        cmds += ["echo @@%s\\n" % name, cmd]
    return cmds + ["echo @@end\\n"]


def sections(out):
    """{NAME: the output of the command marked NAME} (text before the first mark: "")."""
    parts = re.split(r"^@@(\w+)\n", out, flags=re.M)
    res = {"": parts[0]}
    for i in range(1, len(parts) - 1, 2):
        res[parts[i]] = parts[i + 1]
    return res


def value(text):
    """What GDB printed as "$N = VALUE"."""
    m = re.search(r"^\$\d+ = (.*)$", text, re.M)
    assert m, text
    return m.group(1)


def test_gdb_debugs_a_guest_dump_through_kbu_serve(guest_dump, guest_kernel):
    cmds = [serve_cmd("--core", guest_dump, "--kernel", guest_kernel)] + marked(
        ("threads", "info threads"), ("bt", "bt"), ("tc", "print timecounter->tc_name"),
        ("size", "print msgbufp->msg_size"), ("ptr", "print/x msgbufp->msg_ptr"))
    sec = sections(kbutest.gdb_batch(guest_kernel, None, cmds, timeout=120))
    # The panicking CPU is named, and GDB starts on it.
    assert "* 1    Thread 1 (CPU 0, in panic)" in sec["threads"], sec["threads"]
    assert "Thread 2 (CPU 1)" in sec["threads"], sec["threads"]
    bt = frames(sec["bt"])
    assert "panic" in bt and "lapic_init" in bt, sec["bt"]
    assert bt.index("panic") < bt.index("lapic_init"), bt
    triage = cli_json("triage", "--core", guest_dump, "--kernel", guest_kernel)
    assert value(sec["tc"]).endswith('"%s"' % triage["kernel"]["timesource"]), sec["tc"]
    dm = cli_json("dmesg", "--core", guest_dump, "--kernel", guest_kernel)
    assert int(value(sec["size"])) == dm["size"]
    assert int(value(sec["ptr"]).split()[0], 16) == dm["data"]


def test_kbu_gdb_commands_over_serve_match_the_cli(guest_dump, guest_kernel):
    cmds = [serve_cmd("--core", guest_dump, "--kernel", guest_kernel)] + marked(
        ("pvh", "kbu pvh"), ("dmesg", "kbu dmesg -q"), ("mon", "monitor kbu mptable"))
    sec = sections(kbutest.gdb_kbu(guest_kernel, None, cmds, timeout=120))
    pvh = cli("pvh", "--core", guest_dump, "--kernel", guest_kernel)
    assert "serve-token" in pvh and sec["pvh"].strip() == pvh.strip()
    log = cli("dmesg", "-q", "--core", guest_dump, "--kernel", guest_kernel)
    assert "panic: TSC not initialized" in log and sec["dmesg"].strip() == log.strip()
    assert sec["mon"].strip() == cli("mptable", "--core", guest_dump, "--kernel",
                                     guest_kernel).strip()


def test_serve_is_read_only_and_says_so(guest_dump, guest_kernel):
    cmds = [serve_cmd("--core", guest_dump)] + marked(
        ("set", "set var mp_ncpus = 7"), ("cont", "continue"), ("step", "stepi"),
        ("print", "print mp_ncpus"), ("mon", "monitor kbu nosuch"))
    sec = sections(kbutest.gdb_batch(guest_kernel, None, cmds, timeout=120))
    assert "Cannot access memory" in sec["set"]
    for k in ("cont", "step"):
        assert "the target is read-only (core): resuming is refused" in sec[k], sec[k]
    assert int(value(sec["print"])) == 2  # unchanged: -smp 2
    assert "kbu nosuch: unknown command" in sec["mon"]


def test_cli_memory_options_work_inside_gdb(guest_dump, guest_kernel):
    sec = sections(kbutest.gdb_kbu(guest_kernel, None, marked(
        ("mp", "kbu mptable --core %s" % guest_dump), ("pvh", "kbu pvh --core %s" % guest_dump),
        ("dmesg", "kbu dmesg -q --core %s" % guest_dump))))
    assert sec["mp"].strip() == cli("mptable", "--core", guest_dump, "--kernel", guest_kernel).strip()
    assert sec["pvh"].strip() == cli("pvh", "--core", guest_dump, "--kernel", guest_kernel).strip()
    assert sec["dmesg"].strip() == cli("dmesg", "-q", "--core", guest_dump, "--kernel",
                                       guest_kernel).strip()


def test_serve_over_a_socket_for_the_cli(guest_dump, guest_kernel, tmp_path):
    """kbu's own client against kbu serve (its QEMU extensions included): the
    same facts as the dump read directly."""
    sock = str(tmp_path / "serve.sock")
    with Serve("--core", guest_dump, "--kernel", guest_kernel, listen=sock):
        for cmd in (["mptable"], ["pvh"], ["dmesg", "-q"]):
            over = cli(*cmd, "--gdb", sock, "--kernel", guest_kernel)
            direct = cli(*cmd, "--core", guest_dump, "--kernel", guest_kernel)
            # Only the name of the source may differ ("this gdb source cannot ...").
            assert over == direct.replace("this core source", "this gdb source"), cmd
        cpus = cli_json("cpus", "--gdb", sock, "--kernel", guest_kernel)
        direct = cli_json("cpus", "--core", guest_dump, "--kernel", guest_kernel)
        assert [c["rip"] for c in cpus["cpus"]] == [c["rip"] for c in direct["cpus"]]
        assert [c.get("cr3") for c in cpus["cpus"]] == [c.get("cr3") for c in direct["cpus"]]


# ---- Debian's Linux -------------------------------------------------------------

@pytest.mark.linux
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_gdb_debugs_a_linux_dump_through_kbu_serve(linux_dump, linux_target):
    token = "serve-linux-token"
    d = linux_dump(smp=2, token=token)
    smap = linux_target.system_map
    cmds = [serve_cmd("--core", d.path, "--symbols", smap)] + marked(
        ("threads", "info threads"), ("bt", "bt"), ("cmdline", "x/s saved_command_line"),
        ("mon", "monitor kbu pvh"))
    sec = sections(kbutest.gdb_batch(linux_target.vmlinux_dbg, None, cmds, timeout=300))
    # Two vCPUs, one of them in panic(): GDB starts on that one.
    current = [l for l in sec["threads"].splitlines() if l.startswith("*")]
    assert len(current) == 1 and ", in panic)" in current[0], sec["threads"]
    assert "panic" in frames(sec["bt"]), sec["bt"]
    assert "kbu.token=%s" % token in sec["cmdline"], sec["cmdline"]
    assert sec["mon"].strip() == cli("pvh", "--core", d.path, "--symbols", smap).strip()


@pytest.mark.linux
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_gdb_core_target_is_read_through_libkbu(linux_dump, linux_target):
    """GDB's own core target answers kernel addresses from the ELF file; kbu
    commands there read the dump itself, and one that needs the live guest says
    in one line why it cannot run."""
    d = linux_dump(smp=1, token="core-target-token")
    smap = linux_target.system_map
    cmds = ["file %s" % linux_target.vmlinux, "core-file %s" % d.path,
            "set kbu symbols %s" % smap] + marked(
        ("dmesg", "kbu dmesg -q"), ("pvh", "kbu pvh"), ("dump", "kbu dump /nonexistent/x.core"))
    sec = sections(kbutest.gdb_batch(None, None, cmds, load_kbu=True, osabi_none=False,
                                     timeout=300))
    log = cli("dmesg", "-q", "--core", d.path, "--symbols", smap)
    assert "core-target-token" in log and sec["dmesg"].strip() == log.strip()
    assert sec["pvh"].strip() == cli("pvh", "--core", d.path, "--symbols", smap).strip()
    assert sec["dump"].strip() == ("kbu dump: GDB has a dump open already (its core target), "
                                   "not a live guest: there is nothing to dump"), sec["dump"]
