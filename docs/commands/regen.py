#!/usr/bin/python3
"""Re-runs the examples in kbu's documentation and pastes their real output.

usage: docs/commands/regen.py [--workdir DIR] [--only TEXT] [--list] [--no-fetch] FILE.md ...
       make docs        (every page: README.md docs/*.md docs/*/*.md)

An example in a page is an HTML comment naming the command, followed by a
fenced block that this script replaces with the command and what it printed:

    <!-- run[OPTIONS]: COMMAND -->
    ```text
    (replaced)
    ```

COMMAND runs with bash in the work directory (default $TMPDIR/kbu-docs), which
holds links to the repository's build/, scripts/, gdbext/, recipes/, tests/
and profiles/, so it reads as if run from the repository root; L is Debian's
kernel directory (~/.cache/kbu/linux/current), refreshed first by
scripts/linux-target so the pages show today's Debian kernel (--no-fetch
keeps the cached one). The dumps the examples use (tsc.core, mpcorrupt.core,
timecounter.core, x2apic.core, ok.core, seabios.core, seabios-tsc.core,
pagefault.core, linux.core, linuxbz.core, linux-seabios.core) are made in the work directory when missing, each from a
real boot on QEMU -M microvm, and made again when the kernels they come from
change; so are the bad-input files and disk.img (a blank 1 MiB raw image for
the examples that give the VM a virtio-mmio disk). fc.raw is a 1 MiB raw
image holding the MP table Firecracker writes (built as tests/test_acpi.py
builds it: Firecracker cannot run here).

Outputs name no path of this machine: the repository and the work directory
become relative paths, Debian's kernel directory becomes $L and the home
directory ~, so the pages read the same wherever they were regenerated.

OPTIONS, comma separated:
  head=N, tail=N      keep the first / last N lines ('...' marks the cut)
  lines=A-B           keep lines A to B
  grep=REGEX          keep the lines matching REGEX
  rc                  append the exit status as '$ echo $?'
  multi               COMMAND is several commands joined by ' ;; ', each shown
                      with its output and '[exit status N]'
  vm=NAME             boot VM NAME (see VMS) paused first; $PORT is its GDB port,
                      $MON its monitor socket; it is killed afterwards
  until=REGEX         with vm: run the guest until its console matches, then stop it
  cwd=DIR             run in DIR instead of the work directory (relative to the
                      repository: cwd=. runs in the repository itself)
  timeout=S           kill the command after S seconds (default 120)
"""
import argparse
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINUX = os.path.join(os.environ.get("KBU_CACHE", os.path.expanduser("~/.cache/kbu")), "linux", "current")
GUEST = "build/guest/kernel"
LINUX_APPEND = "console=ttyS0 earlyprintk=ttyS0 tsc_early_khz=2500000"
# -M microvm,acpi=on with SeaBIOS (QEMU's default bios-microvm.bin is qboot on Debian)
SEABIOS = "/usr/share/seabios/bios-microvm.bin"

# name: (kernel, smp, memory, command line[, -bios image: boots with ACPI on])
VMS = {
    "tsc": (GUEST, 2, "128M", "console=ttyS0 kbu.scenario=tsc"),
    "timecounter": (GUEST, 2, "128M", "console=ttyS0 kbu.scenario=timecounter"),
    "x2apic": (GUEST, 1, "128M", "console=ttyS0 kbu.scenario=x2apic"),
    "mpcorrupt": (GUEST, 2, "128M", "console=ttyS0 kbu.scenario=mpcorrupt"),
    "ok": (GUEST, 2, "128M", "console=ttyS0"),
    "seabios": (GUEST, 4, "128M", "console=ttyS0", SEABIOS),
    # the real FreeBSD 14.2 kernel's SeaBIOS boot (tests/targets/freebsd-14.2/serial-seabios-acpi-smp4.log)
    "seabios-tsc": (GUEST, 4, "512M", "console=ttyS0 kbu.scenario=tsc", SEABIOS),
    "linux": (LINUX + "/vmlinux", 1, "256M", LINUX_APPEND),
}
# dump file: (kernel, smp, memory, command line, console line that ends the boot[, -bios image])
DUMPS = {
    "tsc.core": VMS["tsc"] + (r"panic:",),
    "mpcorrupt.core": VMS["mpcorrupt"] + (r"panic:",),
    "timecounter.core": VMS["timecounter"] + (r"kbu-guest: idle",),
    "x2apic.core": VMS["x2apic"] + (r"kbu-guest: idle",),
    "ok.core": VMS["ok"] + (r"kbu-guest: idle",),
    "seabios.core": (GUEST, 4, "128M", "console=ttyS0", r"kbu-guest: idle", SEABIOS),
    "seabios-tsc.core": VMS["seabios-tsc"][:4] + (r"panic:", SEABIOS),
    "pagefault.core": (GUEST, 2, "128M", "console=ttyS0 kbu.scenario=pagefault", r"panic:"),
    "linux.core": (LINUX + "/vmlinux", 2, "256M", LINUX_APPEND + " kbu.token=doc-token-42",
                   r"end Kernel panic"),
    "linuxbz.core": (LINUX + "/bzImage", 1, "256M", LINUX_APPEND, r"end Kernel panic"),
    "linux-seabios.core": (LINUX + "/vmlinux", 4, "256M", LINUX_APPEND, r"end Kernel panic",
                           SEABIOS),
}
LINKS = ("build", "scripts", "gdbext", "recipes", "tests", "profiles")
# What prepare() makes besides the dumps: the examples' other inputs (tests/test_docs.py
# checks that every --core/--phys file an example names is one of these or a dump).
INPUTS = ("bad.bin", "empty.bin", "disk.img", "adir", "trunc.elf", "kernel.freebsd", "fc.raw",
          "trunc.core")


def scrub(text, work):
    """Paths of this machine out of an output: the repository and the work
    directory become relative, Debian's kernel directory $L, the home ~."""
    subs = []
    for path, name in ((os.path.realpath(LINUX), "$L"), (LINUX, "$L"),
                       (os.path.realpath(work), "."), (work, "."), (ROOT, "."),
                       (os.path.expanduser("~"), "~")):
        if path and path != "/" and (path, name) not in subs:
            subs.append((path, name))
    for path, name in sorted(subs, key=lambda x: -len(x[0])):
        text = re.sub(re.escape(path) + r"(?=/|\b)", lambda m: name, text)
    return re.sub(r"(?<![\w.$~])\./(?=[\w.-])", "", text)


def monitor(sock_path, *cmds, timeout=300):
    """Sends human-monitor commands to a QEMU readline monitor socket."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.settimeout(0.5)

    def until_prompt(limit):
        buf, end = b"", time.time() + limit
        while time.time() < end and not buf.endswith(b"(qemu) "):
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            buf += data
        return buf.decode(errors="replace")

    until_prompt(5)
    out = []
    for c in cmds:
        s.sendall(c.encode() + b"\n")
        out.append(until_prompt(timeout))
    s.close()
    return out


class Vm:
    def __init__(self, work, kernel, smp, memory, append, bios=None):
        self.dir = os.path.join(work, "vm-%d-%d" % (os.getpid(), time.monotonic_ns()))
        os.makedirs(self.dir)
        acpi = ["--acpi"] if bios else []
        extra = ["--", "-bios", bios] if bios else []
        p = subprocess.run(["scripts/microvm", "--daemon", "--paused", "--gdb", "auto",
                            "--smp", str(smp), "-m", memory, "--run-dir", self.dir, "-a", append]
                           + acpi + [kernel] + extra,
                           cwd=work, capture_output=True, text=True, timeout=60)
        self.info = dict(line.split("=", 1) for line in p.stdout.split("\n") if "=" in line)
        if "pid" not in self.info:
            raise SystemExit("regen: QEMU did not start: " + p.stdout + p.stderr)

    def run_until(self, regex, limit=180):
        monitor(self.info["monitor"], "cont")
        end = time.time() + limit
        while time.time() < end:
            try:
                with open(self.info["serial"], errors="replace") as f:
                    if re.search(regex, f.read()):
                        time.sleep(0.5)
                        monitor(self.info["monitor"], "stop")
                        return
            except FileNotFoundError:
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemExit("regen: the guest never printed %r" % regex)

    def stop(self):
        try:
            os.kill(int(self.info["pid"]), signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.3)
        subprocess.run(["rm", "-rf", self.dir])


def inputs_stamp():
    """What the dumps are made from: the test kernel and Debian's kernel (and which
    checkout's build/ the work directory's links lead to)."""
    h = hashlib.sha256(ROOT.encode())
    for path in (os.path.join(ROOT, GUEST), os.path.join(LINUX, "vmlinux")):
        try:
            with open(path, "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"missing:" + path.encode())
    return h.hexdigest()


def fetch_linux():
    """scripts/linux-target: today's Debian cloud kernel becomes $L (current)."""
    print("regen: scripts/linux-target (today's Debian kernel)", file=sys.stderr)
    p = subprocess.run([os.path.join(ROOT, "scripts", "linux-target")], stdout=subprocess.PIPE,
                       text=True)
    if p.returncode != 0:
        raise SystemExit("regen: scripts/linux-target failed")
    version = re.search(r"^version=(.*)$", p.stdout, re.M)
    print("regen: Debian kernel %s" % (version.group(1) if version else "?"), file=sys.stderr)


def prepare(work):
    os.makedirs(work, exist_ok=True)
    stamp_path = os.path.join(work, ".inputs")
    stamp = inputs_stamp()
    try:
        with open(stamp_path) as f:
            old = f.read().strip()
    except OSError:
        old = None
    if old != stamp:  # other kernels: the old dumps would describe them
        for name in list(DUMPS) + ["trunc.core"]:
            if os.path.exists(os.path.join(work, name)):
                os.unlink(os.path.join(work, name))
        with open(stamp_path, "w") as f:
            f.write(stamp + "\n")
    for name in LINKS:
        link, target = os.path.join(work, name), os.path.join(ROOT, name)
        # A work directory another checkout made points at that checkout: repoint it.
        if os.path.islink(link) and os.readlink(link) != target:
            os.unlink(link)
        if not os.path.islink(link):
            os.symlink(target, link)
    # disk.img: a blank 1 MiB raw image for the examples that give the VM a virtio-mmio disk
    files = {"bad.bin": b"garbage", "empty.bin": b"", "disk.img": bytes(1 << 20)}
    for name, data in files.items():
        with open(os.path.join(work, name), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(work, "adir"), exist_ok=True)
    with open(os.path.join(ROOT, GUEST), "rb") as f:
        elf = f.read()
    with open(os.path.join(work, "trunc.elf"), "wb") as f:
        f.write(elf[:3000])
    with open(os.path.join(work, "kernel.freebsd"), "wb") as f:  # EI_OSABI 9: FreeBSD
        f.write(elf[:7] + b"\x09" + elf[8:])
    for name, spec in DUMPS.items():
        kernel, smp, memory, append, end = spec[:5]
        path = os.path.join(work, name)
        if os.path.exists(path):
            continue
        print("regen: booting for %s" % name, file=sys.stderr)
        vm = Vm(work, kernel, smp, memory, append, *spec[5:])
        try:
            vm.run_until(end)
            monitor(vm.info["monitor"], "dump-guest-memory " + path)
        finally:
            vm.stop()
    fc = os.path.join(work, "fc.raw")
    if not os.path.exists(fc):
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        from test_acpi import firecracker_mptable
        img = bytearray(1 << 20)
        table = firecracker_mptable(1) + b"\x44"  # the byte seeds/000's guest held after it
        img[0x9fc00:0x9fc00 + len(table)] = table
        with open(fc, "wb") as f:
            f.write(img)
    tsc = os.path.join(work, "tsc.core")
    if not os.path.exists(os.path.join(work, "trunc.core")):
        with open(tsc, "rb") as f, open(os.path.join(work, "trunc.core"), "wb") as g:
            g.write(f.read(5000))


def run(work, cmd, opts):
    if "multi" in opts:
        parts, worst = [], 0
        sub = {k: v for k, v in opts.items() if k != "multi"}
        sub["rcline"] = True
        for c in cmd.split(" ;; "):
            out, rc = run(work, c, sub)
            parts.append(out)
            worst = max(worst, rc)
        return "\n".join(parts), worst
    env = dict(os.environ, L=LINUX, TERM="dumb", PATH="/usr/bin:/bin:/usr/sbin:/sbin")
    vm = None
    if "vm" in opts:
        vm = Vm(work, *VMS[opts["vm"]])
        env["PORT"], env["MON"] = vm.info["gdb_port"], vm.info["monitor"]
    try:
        if vm and "until" in opts:
            vm.run_until(opts["until"])
        cwd = os.path.join(ROOT, opts["cwd"]) if "cwd" in opts else work
        p = subprocess.Popen(["bash", "-c", cmd], cwd=cwd, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        try:
            out, _ = p.communicate(timeout=float(opts.get("timeout", 120)))
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            out += "\n[TIMEOUT]"
            rc = -9
    finally:
        if vm:
            vm.stop()
    out = scrub(out, work)
    lines = [line.rstrip() for line in out.rstrip("\n").split("\n")] if out.strip() else []
    if "grep" in opts:
        lines = [line for line in lines if re.search(opts["grep"], line)]
    if "lines" in opts:
        a, b = map(int, opts["lines"].split("-"))
        lines = (["..."] if a > 1 else []) + lines[a - 1:b] + (["..."] if b < len(lines) else [])
    if "head" in opts and len(lines) > int(opts["head"]):
        lines = lines[:int(opts["head"])] + ["..."]
    if "tail" in opts and len(lines) > int(opts["tail"]):
        lines = ["..."] + lines[-int(opts["tail"]):]
    res = ["$ " + cmd] + lines
    if "rc" in opts:
        res.append("$ echo $?\n%d" % rc)
    if "rcline" in opts:
        res.append("[exit status %d]" % rc)
    return "\n".join(res), rc


# One example: its comment on one line, then its fenced block.
BLOCK = re.compile(r"(<!-- run(?:\[(?P<opts>[^\]\n]*)\])?: (?P<cmd>[^\n]*?) -->\n)```(?P<lang>\w*)\n"
                   r".*?```\n", re.S)
RUN_COMMENT = re.compile(r"^<!-- run(?:\[[^\]\n]*\])?: .* -->$", re.M)


def parse_opts(text):
    opts = {}
    for part in re.split(r",(?=\w+(?:=|,|$))", text or ""):
        if "=" in part:
            key, value = part.split("=", 1)
            opts[key] = value
        elif part:
            opts[part] = True
    return opts


def regen(work, path, only, list_only):
    with open(path) as f:
        text = f.read()
    count = [0, 0]

    def replace(m):
        count[0] += 1
        if only and only not in m.group("cmd"):
            return m.group(0)
        if list_only:
            print("%s: %s" % (path, m.group("cmd")))
            return m.group(0)
        t0 = time.time()
        out, rc = run(work, m.group("cmd"), parse_opts(m.group("opts")))
        count[1] += 1
        print("  [%5.1fs exit %d] %s" % (time.time() - t0, rc, m.group("cmd")[:90]), file=sys.stderr)
        return m.group(1) + "```" + (m.group("lang") or "text") + "\n" + out + "\n```\n"

    blocks = len(BLOCK.findall(text))
    comments = len(RUN_COMMENT.findall(text))
    if blocks != comments:
        raise SystemExit("regen: %s: %d run comments but %d examples: every run comment must be "
                         "followed by a ```text block (even an empty one)" % (path, comments, blocks))
    text = BLOCK.sub(replace, text)
    if not list_only:
        with open(path, "w") as f:
            f.write(text)
    print("%s: %d examples, %d re-run" % (path, count[0], count[1]), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "kbu-docs"))
    ap.add_argument("--only", help="re-run only the examples whose command contains TEXT")
    ap.add_argument("--list", action="store_true", help="list the examples, run nothing")
    ap.add_argument("--no-fetch", action="store_true",
                    help="keep the cached Debian kernel (do not run scripts/linux-target)")
    a = ap.parse_args()
    files = [os.path.abspath(f) for f in a.files]
    if not a.list:
        if not a.no_fetch:
            fetch_linux()
        prepare(a.workdir)
    for f in files:
        regen(a.workdir, f, a.only, a.list)


if __name__ == "__main__":
    main()
