"""`scripts/demo` (what `make demo` runs after building): both recipe verdicts
and the post-mortem triage's verdict are printed, it exits 0, within the two
minutes a first-time user will wait, and leaves no QEMU behind."""
import os
import re
import subprocess

import pytest

import kbutest


def qemu_pids():
    out = subprocess.run(["pgrep", "-f", "qemu-system-x86_64"], capture_output=True, text=True)
    return set(out.stdout.split())


def cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:  # it ended meanwhile
        return ""


@pytest.mark.linux
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_demo_prints_both_verdicts(linux_target, guest_kernel):
    before = qemu_pids()
    t0 = kbutest.idle_seconds()   # the time it takes on an idle machine, whatever the load
    p = kbutest.run([os.path.join(kbutest.ROOT, "scripts", "demo")], timeout=360,
                    cwd=kbutest.ROOT, env=dict(os.environ, KBU_ROOT=kbutest.ROOT))
    took = kbutest.idle_seconds() - t0
    out = p.stdout
    assert p.returncode == 0, out[-3000:] + p.stderr[-2000:]
    # 1. tsc-not-initialized names the missing CPUID leaves on the test kernel
    one = out[out.index("==> 1."):out.index("==> 2.")]
    assert re.search(r"^VERDICT: problem: .*TSC not initialized.*0x40000010.*0x15", one, re.M), one
    # 2. where-are-my-cpus: 2 CPUs in the table, 1 brought up, and why
    two = out[out.index("==> 2."):out.index("==> 3.")]
    assert re.search(r"^VERDICT: problem: the MP table holds 2 CPUs.*the kernel found 1", two, re.M), two
    # 3. the same panic from the dump alone
    three = out[out.index("==> 3."):]
    assert "kbu dump: wrote" in three
    assert "! panic-triage: the kernel panicked: TSC not initialized" in three
    assert took < 180, "the demo took %.0f idle seconds" % took
    # the demo's own QEMU (its files live in a kbu-demo.* directory) is gone
    assert not [pid for pid in qemu_pids() - before if "kbu-demo." in cmdline(pid)]
