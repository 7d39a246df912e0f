"""GDB's own core target (`core-file DUMP`) answers kernel variables from the
ELF file, not from the dump: kbu's live commands must not take it for a live
guest, and say how to read the dump instead (kbu serve)."""
import shutil

import kbutest


def test_core_target_is_not_live(qemu, guest_kernel, tmp_path):
    q = qemu(guest_kernel, smp=1, memory="128M", append="console=ttyS0 kbu.scenario=tsc")
    q.wait_serial(r"panic: TSC not initialized", timeout=60)
    dump = q.dump(str(tmp_path / "tsc.core"))
    q.stop()
    # Debian's GDB dies opening a QEMU dump with a FreeBSD-branded kernel loaded,
    # and reads no core with osabi none: the same kernel, branded SYSV.
    sysv = tmp_path / "kernel.sysv"
    shutil.copy(guest_kernel, sysv)
    with open(sysv, "r+b") as f:
        f.seek(7)
        f.write(b"\x00")
    out = kbutest.gdb_batch(str(sysv), None, [
        "core-file %s" % dump, "python import kbu.core as c; print('LIVE', c.is_live())",
        "kbu cpuid 1", "kbu lapic", "kbu watch x2apic", "kbu inject-site"],
        load_kbu=True, osabi_none=False)
    assert "Traceback" not in out, out
    assert "LIVE False" in out, out
    refusal = "open the dump with: target remote | kbu serve --core %s" % dump
    for cmd in ("kbu cpuid", "kbu lapic", "kbu watch"):
        line = [l for l in out.splitlines() if l.startswith(cmd + ":")]
        assert line and "needs a live guest" in line[0] and refusal in line[0], (cmd, out)
