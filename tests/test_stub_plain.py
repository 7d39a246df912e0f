"""Every kbu CLI command over a stub with only the standard packets (`kbu serve
--plain` on a UNIX socket: no monitor, no physical mode, no control registers,
as Firecracker's stub) against the same guest state over QEMU's own stub: the
same facts, or a report that says what it could not learn there."""
import json
import os
import re
import shutil
import tempfile

import pytest

import kbutest
from test_serve import Serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stubs(guest_kernel):
    """(QEMU's stub, the plain stub's socket, kernel): the test kernel at its TSC
    panic on two vCPUs, live in QEMU and as its dump behind kbu serve --plain."""
    d = tempfile.mkdtemp(prefix=kbutest.qemu.tmp_prefix("plain"))
    q = kbutest.Qemu(guest_kernel, smp=2, memory="64M",
                     append="console=ttyS0 kbu.scenario=tsc kbu.token=plain-token")
    try:
        q.start()
        q.wait_serial(r"^panic: ", timeout=60)
        dump = q.dump(os.path.join(d, "tsc.core"))
        with Serve("--core", dump, "--plain", listen=os.path.join(d, "plain.sock")) as s:
            yield "127.0.0.1:%d" % q.port, s.where, guest_kernel
    finally:
        q.stop()
        shutil.rmtree(d, ignore_errors=True)


def both(stubs, *args, json_out=False):
    """(QEMU's (rc, out, err), the plain stub's (rc, out, err)) for one command."""
    qemu, plain, kernel = stubs
    res = []
    for src in (qemu, plain):
        argv = list(args) + ["--gdb", src, "--kernel", kernel] + (["--json"] if json_out else [])
        rc, out, err = kbutest.kbu(*argv, timeout=180)
        if json_out and rc == 0:
            out = json.loads(out)
        res.append((rc, out, err))
    return res


SAME = [["asserts"], ["layout"], ["msgrefs", "TSC"], ["notes"], ["os"], ["sym", "lapic_init"],
        ["dmesg", "-q"], ["pvh"], ["reloc"], ["x", "x2apic_mode"], ["x", "-p", "0x9fc00"]]


@pytest.mark.parametrize("cmd", SAME, ids=lambda c: " ".join(c))
def test_same_facts_over_a_plain_stub(stubs, cmd):
    (rq, oq, eq), (rp, op, ep) = both(stubs, *cmd)
    assert rq == 0 and rp == 0, (eq, ep)
    assert op == oq
    # Where it read physical memory, it says how (a plain stub has no physical mode).
    for line in ep.splitlines():
        assert re.match(r"kbu: [\w-]+: note: the gdb source reads no physical memory: read through "
                        r".* \(checked against the kernel image\)$", line), line


def test_cpus_say_the_control_registers_are_missing(stubs):
    (rq, jq, _), (rp, jp, _) = both(stubs, "cpus", json_out=True)
    assert rq == rp == 0
    assert jq["ncpus"] == jp["ncpus"] == 2
    assert [c["rip"] for c in jq["cpus"]] == [c["rip"] for c in jp["cpus"]]
    assert jq["cpus"][0]["gpr"] == jp["cpus"][0]["gpr"]
    assert all(c["mode"] == "unknown" for c in jp["cpus"]), jp["cpus"]
    assert "cr3" in jq["cpus"][0] and "cr3" not in jp["cpus"][0]


def test_mptable_says_what_it_could_not_cross_check(stubs):
    (rq, oq, _), (rp, op, _) = both(stubs, "mptable")
    assert rq == rp == 0
    own = ("I/O APIC ID register", "the I/O APIC's own ID register", "the I/O APIC says",
           "ID register read")
    keep = lambda t: [l for l in t.splitlines() if not any(o in l for o in own)]  # noqa: E731
    assert keep(op) == keep(oq)
    assert "not cross-checked: this gdb source cannot read the I/O APIC's ID register" in op


def test_lapic_says_it_has_no_source(stubs):
    (rq, oq, eq), (rp, op, ep) = both(stubs, "lapic")
    assert rq == 0 and "Local APIC of CPU 0" in oq
    assert rp == 2 and op == ""
    assert ep.splitlines()[0] == ("kbu: lapic: no usable source: QEMU `info lapic` failed and the "
                                  "LAPIC page is unreadable or all zeros"), ep


def test_vtop_needs_cr3_and_agrees_once_given_it(stubs):
    (rq, jq, _), (rp, _, ep) = both(stubs, "vtop", "lapic_init", json_out=True)
    assert rq == 0
    assert rp == 2 and "no CR3 for CPU 0 (the source has no control registers)" in ep
    cr3 = "0x%x" % jq["cr3"]
    (rq, jq, _), (rp, jp, _) = both(stubs, "vtop", "--cr3", cr3, "lapic_init", json_out=True)
    assert rq == rp == 0
    assert jp["walk"] == jq["walk"] and jp["physical"] == jq["physical"]


def test_triage_gives_the_same_verdict(stubs):
    (rq, jq, _), (rp, jp, _) = both(stubs, "triage", json_out=True)
    assert rq == rp == 0
    assert jp["verdict"] == jq["verdict"]
    assert jp["panic"] == jq["panic"]
    assert jp["start_info"] == jq["start_info"]
    assert all(c["mode"] == "unknown (no control registers)" for c in jp["cpus"]), jp["cpus"]


def test_gdb_and_its_kbu_commands_over_a_plain_stub(stubs):
    """GDB itself on the plain stub's UNIX socket: the backtrace through panic,
    and kbu's GDB commands, which read physical memory through a direct map
    the kernel's own bytes proved (the stub has no physical mode)."""
    qemu, plain, kernel = stubs
    cmds = ["target remote %s" % plain, "echo @@bt\\n", "bt", "echo @@pvh\\n", "kbu pvh",
            "echo @@mp\\n", "kbu mptable", "kbu mptable", "echo @@end\\n"]
    out = kbutest.gdb_kbu(kernel, None, cmds, timeout=120)
    bt = out.split("@@bt\n")[1].split("@@")[0]
    names = re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(", bt, re.M)
    assert "panic" in names and "lapic_init" in names, bt
    pvh = out.split("@@pvh\n")[1].split("@@")[0]
    rc, cli_pvh, err = kbutest.kbu("pvh", "--gdb", qemu, "--kernel", kernel)
    assert rc == 0, err
    assert pvh.strip() == cli_pvh.strip()
    # A forwarded command says, as the CLI does, how physical memory was read
    # without a physical mode: once, not after every command.
    mp = out.split("@@mp\n")[1].split("@@")[0]
    notes = re.findall(r"^kbu mptable: note: the debugger source reads no physical memory: "
                       r"read through .* at 0x[0-9a-f]+", mp, re.M)
    assert len(notes) == 1, mp
