"""kbu cpuid: run CPUID on the paused vCPU and decode it with libkbu.

CPUID is executed for real: its two bytes (0f a2) are written at the vCPU's
current instruction (its linear address, which libkbu's inject-site works
out in every mode: CS base + IP in real mode, so the reset vector works), EAX/ECX
are set, the vCPU single-steps it, EAX..EDX are read back. The registers, the
bytes and RIP are then restored and the restoration is verified before the
command returns, also when a step fails. QEMU's single-step flags
(qqemu.sstep) must hold interrupts back so the step cannot enter an
interrupt handler: kbu checks and sets them for the step.

A vCPU halted in HLT with interrupts on is stepped too: the next interrupt
wakes it, QEMU holds that interrupt for the step and delivers it when the
guest goes on, so the vCPU returns from its HLT as it would have. One halted
with interrupts off, or waiting for SIPI, can run nothing: kbu says so and
names the vCPUs that can answer (inject-site). The same injection runs
other instructions: `kbu lapic` loads from the APIC page with it.
"""
import argparse

import gdb

from . import core, memory, session
from .core import KbuError

CPUID = b"\x0f\xa2"
LOAD32 = b"\x8b\x00"        # mov eax, [rax] (mov eax, [eax] outside long mode)
RDMSR = b"\x0f\x32"
SAVED = ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags "
         "cs ss ds es fs gs fs_base gs_base k_gs_base cr0 cr2 cr3 cr4 cr8 efer").split()
SSTEP_QUIET = 0x7     # ENABLE | NOIRQ | NOTIMER: no interrupt, no timer during the step
SSTEP_WAKE = 0x3      # ENABLE | NOIRQ: timers run, so an interrupt can wake a halted vCPU
WAKE_TRIES = 3        # steps of a halted vCPU tried (each waits the remote timeout, 2 s)
STACK_SAVED = 256     # bytes below RSP saved and restored around the injection
ARCH_DEFAULT_MAX = 0x20


class RestoreError(KbuError):
    """The guest's registers or code bytes could not be put back exactly."""


def _regs_now(names):
    fr = gdb.newest_frame()
    vals = {}
    for n in names:
        try:
            vals[n] = int(fr.read_register(n)) & 0xffffffffffffffff
        except (gdb.error, ValueError):
            pass
    return vals


def _thread_id():
    """The selected vCPU's remote thread id, as the stub names it in packets."""
    pid, lwp, _ = gdb.selected_thread().ptid
    return ("p%x.%x" % (pid, lwp)) if pid > 0 and lwp > 0 else "%x" % max(lwp, 1)


def _raw_step():
    """Single-steps the selected vCPU alone with a raw vCont packet.

    GDB's own `stepi` would record a new stop PC; once RIP is put back, GDB
    would take the restored RIP for a user's jump and, on `continue`, report a
    breakpoint there again instead of stepping over it. A raw step leaves
    GDB's stop state untouched; only its register cache is dropped. A vCPU
    that does not run within GDB's remote timeout is interrupted by GDB: the
    reply is then a stop for SIGINT and RIP has not moved."""
    reply = memory._packet("vCont;s:%s" % _thread_id())
    gdb.execute("maint flush register-cache", False, True)
    memory.bridge.flush()
    if not reply or not reply.startswith(("T", "S")):
        raise KbuError("single step refused by the stub (vCont;s replied %r)" % reply)
    return reply


def _set_reg(name, value):
    gdb.execute("set $%s = %d" % (name, value), False, True)


def site(cpu, lapic=False):
    """libkbu's inject-site for vCPU cpu: mode, code address, whether it can step."""
    c = session.ctx()
    c.flush()
    return c.run_json(["inject-site", "--cpu", str(cpu)] + (["--lapic"] if lapic else []))


def cannot_step_text(st):
    who = st.get("answer_from") or []
    return "%s; %s" % (st.get("why"), "vCPU %s can run it now (--cpu N)" % ", ".join(
        str(c) for c in who) if who else "no other vCPU runs either")


class Injection:
    """Context manager: an instruction at the vCPU's code address, everything
    restored and verified on exit.

    code: the instruction's bytes; lapic: also find where the vCPU reaches its
    local APIC page (self.site["lapic"]). fail_after: for tests, raise after
    that many steps (proves the restore path).
    """

    def __init__(self, code=CPUID, fail_after=None, lapic=False):
        self.code = code
        self.fail_after = fail_after
        self.lapic = lapic
        self.steps = 0
        self.notes = []
        self.woke = False

    def __enter__(self):
        core.need_live("running an instruction on the vCPU")
        self.cpu = core.cpu_index()
        self.site = site(self.cpu, self.lapic)
        if not self.site.get("can_step"):
            raise KbuError(cannot_step_text(self.site))
        self.saved = _regs_now(SAVED)
        for need in ("rip", "rax", "rbx", "rcx", "rdx", "eflags"):
            if need not in self.saved:
                raise KbuError("the stub does not give register %s" % need)
        self.pc = self.site["code"]
        self.halted = self.site.get("step") == "on_interrupt"
        inf = gdb.selected_inferior()
        # The stack below RSP: an exception or interrupt the step runs into
        # pushes its frame there; it is put back too.
        self.stack_at, self.stack = None, None
        if self.site.get("mode") == "long":
            try:
                self.stack_at = self.saved["rsp"] - STACK_SAVED
                self.stack = bytes(inf.read_memory(self.stack_at, STACK_SAVED))
            except (gdb.MemoryError, gdb.error, OverflowError, ValueError):
                self.stack_at = self.stack = None
        try:
            self.orig = bytes(inf.read_memory(self.pc, len(self.code)))
        except gdb.MemoryError:
            raise KbuError("cannot read the code at 0x%x (RIP 0x%x)" % (self.pc,
                                                                        self.saved["rip"]))
        self.sstep_old = None
        want = SSTEP_WAKE if self.halted else SSTEP_QUIET
        try:
            cur = memory._packet("qqemu.sstep")
            if cur and int(cur, 16) != want:
                self.sstep_old = int(cur, 16)
                memory._packet("Qqemu.sstep=0x%x" % want)
        except (KbuError, ValueError):
            pass  # not QEMU: single-step as the stub does it, RIP is still checked
        self.written = False
        try:
            inf.write_memory(self.pc, self.code)
            self.written = True
        except gdb.MemoryError:
            problems = self._restore()
            raise KbuError("cannot write at 0x%x (RIP 0x%x)%s" % (
                self.pc, self.saved["rip"], "; " + "; ".join(problems) if problems else ""))
        return self

    def run(self, regs):
        """Sets regs ({name: value}), steps the instruction, returns EAX..EDX (32 bits)."""
        if self.fail_after is not None and self.steps >= self.fail_after:
            raise KbuError("forced failure after %d steps (test)" % self.steps)
        self.steps += 1
        _set_reg("rip", self.saved["rip"])
        for name, value in regs.items():
            _set_reg(name, value)
        want = (self.saved["rip"] + len(self.code)) & 0xffffffffffffffff
        for attempt in range(WAKE_TRIES if self.halted and not self.woke else 1):
            _raw_step()
            now = _regs_now(("rip", "rax", "rbx", "rcx", "rdx"))
            if now.get("rip") == want:
                break
            if not (self.halted and now.get("rip") == self.saved["rip"]):
                break
        if now.get("rip") != want:
            if self.halted and now.get("rip") == self.saved["rip"]:
                raise KbuError("vCPU %d is halted and no interrupt woke it during %d steps of "
                               "2 s each: %s" % (self.cpu, WAKE_TRIES, cannot_step_text(
                                   dict(self.site, why="nothing to wake it"))))
            raise KbuError("the instruction at 0x%x did not complete in one step (RIP went to "
                           "0x%x): an exception or interrupt intervened"
                           % (self.pc, now.get("rip", 0)))
        if self.halted and not self.woke:
            self.woke = True
            self.notes.append("vCPU %d was halted in HLT: an interrupt woke it for the step; it "
                              "goes on after its HLT with that interrupt pending, as it would "
                              "have" % self.cpu)
        return tuple(now[r] & 0xffffffff for r in ("rax", "rbx", "rcx", "rdx"))

    def cpuid(self, leaf, subleaf=0):
        return self.run({"rax": leaf, "rcx": subleaf})

    def _restore(self):
        problems = []
        inf = gdb.selected_inferior()
        if self.written:
            try:
                inf.write_memory(self.pc, self.orig)
            except gdb.MemoryError as e:
                problems.append("code bytes at 0x%x: %s" % (self.pc, e))
        if self.stack is not None:
            try:
                if bytes(inf.read_memory(self.stack_at, STACK_SAVED)) != self.stack:
                    inf.write_memory(self.stack_at, self.stack)
            except gdb.MemoryError as e:
                problems.append("stack below RSP at 0x%x: %s" % (self.stack_at, e))
        for name in SAVED:
            if name not in self.saved or name in ("cs", "ss", "ds", "es", "fs", "gs"):
                continue
            try:
                if _regs_now((name,)).get(name) != self.saved[name]:
                    _set_reg(name, self.saved[name])
            except gdb.error as e:
                problems.append("%s: %s" % (name, e))
        if self.sstep_old is not None:
            try:
                memory._packet("Qqemu.sstep=0x%x" % self.sstep_old)
            except KbuError as e:
                problems.append("sstep flags: %s" % e)
        memory.bridge.flush()
        # Verify: every saved register and the code bytes are as before.
        gdb.execute("maint flush register-cache", False, True)
        after = _regs_now(SAVED)
        diff = [n for n in self.saved if after.get(n) != self.saved[n]]
        if diff:
            problems.append("registers differ after restore: " + ", ".join(
                "%s 0x%x != 0x%x" % (n, after.get(n, 0), self.saved[n]) for n in diff))
        if self.stack is not None:
            try:
                if bytes(inf.read_memory(self.stack_at, STACK_SAVED)) != self.stack:
                    problems.append("the stack below RSP at 0x%x differs" % self.stack_at)
            except gdb.MemoryError as e:
                problems.append("cannot re-read the stack at 0x%x: %s" % (self.stack_at, e))
        try:
            back = bytes(inf.read_memory(self.pc, len(self.code)))
            if back != self.orig:
                problems.append("code bytes at 0x%x are %s, were %s"
                                % (self.pc, back.hex(), self.orig.hex()))
        except gdb.MemoryError as e:
            problems.append("cannot re-read code at 0x%x: %s" % (self.pc, e))
        return problems

    def __exit__(self, etype, evalue, tb):
        problems = self._restore()
        if problems:
            msg = "restore failed: " + "; ".join(problems)
            if evalue is not None:
                msg = "%s; and %s" % (evalue, msg)
            raise RestoreError(msg)
        return False


def parse_leaf(text):
    leaf, _, sub = text.partition(".")
    try:
        return int(leaf, 0) & 0xffffffff, int(sub, 0) & 0xffffffff if sub else 0
    except ValueError:
        raise KbuError("bad leaf \"%s\" (LEAF or LEAF.SUBLEAF, e.g. 0x40000000 or 7.0)" % text)


_last_notes = []


def run_leaves(pairs, fail_after=None):
    """{(leaf, sub): (eax, ebx, ecx, edx)} for each pair, executed on the vCPU."""
    res = {}
    with Injection(CPUID, fail_after) as inj:
        for leaf, sub in pairs:
            res[(leaf, sub)] = inj.cpuid(leaf, sub)
    _last_notes[:] = inj.notes
    return res


def all_leaves(fail_after=None):
    """Every basic, hypervisor and extended leaf (with the usual subleaves)."""
    res = {}
    with Injection(CPUID, fail_after) as inj:
        def q(leaf, sub=0):
            res[(leaf, sub)] = inj.cpuid(leaf, sub)
            return res[(leaf, sub)]
        top = min(q(0)[0], ARCH_DEFAULT_MAX)
        for leaf in range(1, top + 1):
            r = q(leaf)
            if leaf == 7:
                for s in range(1, min(r[0], 3) + 1):
                    q(7, s)
            elif leaf in (0xb, 0x1f, 4):
                for s in range(1, 6):
                    rs = q(leaf, s)
                    kind = rs[0] & 0x1f if leaf == 4 else (rs[2] >> 8) & 0xff
                    if kind == 0:
                        break
            elif leaf == 0xd:
                q(0xd, 1)
        hv = q(0x40000000)[0]
        if 0x40000000 < hv < 0x40000100:
            for leaf in range(0x40000001, min(hv, 0x40000010) + 1):
                q(leaf)
        ext = q(0x80000000)[0]
        if 0x80000000 < ext <= 0x80000000 + ARCH_DEFAULT_MAX:
            for leaf in range(0x80000001, ext + 1):
                q(leaf)
    _last_notes[:] = inj.notes
    return res


TSC_LEAVES = [(0, 0), (1, 0), (0x40000000, 0), (0x40000010, 0), (0x15, 0), (0x16, 0)]


def decode_argv(values, tsc=False, tsc_only=False):
    argv = ["cpuid-decode"]
    if tsc_only:
        argv.append("--tsc-only")
    elif tsc:
        argv.append("--tsc")
    for (leaf, sub), regs in sorted(values.items()):
        argv.append("0x%x.%d=0x%x,0x%x,0x%x,0x%x" % ((leaf, sub) + tuple(regs)))
    return argv


class Cpuid(core.KbuCommand):
    """Run CPUID on the paused vCPU and decode it (LEAF[.SUBLEAF] ..., --all, tsc).

Injects the CPUID instruction at the vCPU's current instruction, in whatever
mode it is (real mode at the reset vector, protected mode with paging off,
long mode), single-steps it and restores registers, code bytes and RIP
exactly (verified). A vCPU halted in HLT with interrupts on answers when the
next interrupt wakes it; one that cannot run (halted with interrupts off,
waiting for SIPI) is named with the vCPUs that can. --cpu N runs it on vCPU
N, --cpu all on each one. `kbu cpuid tsc` explains how a kernel derives the
TSC frequency on this VM and which step succeeds."""

    name = "cpuid"

    def parser(self, p):
        p.add_argument("leaves", nargs="*", metavar="LEAF[.SUBLEAF]|tsc",
                       help="leaves to run (hex with 0x); `tsc`: the TSC frequency chain")
        p.add_argument("--all", action="store_true", help="every basic, hypervisor, extended leaf")
        p.add_argument("--json", action="store_true", help="the libkbu JSON report")
        p.add_argument("--raw", action="store_true", help="only print EAX EBX ECX EDX per leaf")
        p.add_argument("--cpu", default=None, metavar="N|all",
                       help="run on vCPU N, or on each (default: the selected thread)")
        p.add_argument("--test-fail-after", type=int, default=None, help=argparse.SUPPRESS)

    def run(self, a):
        core.need_live("kbu cpuid")
        if a.cpu is None:
            return self._run(a)
        if a.cpu == "all":
            cpus = list(range(len(gdb.selected_inferior().threads())))
        else:
            cpus = [int(core.parse_int(a.cpu, "CPU number"))]
        prev = gdb.selected_thread()
        failed = []
        try:
            for cpu in cpus:
                memory.cpu_thread(cpu).switch()
                if len(cpus) > 1:
                    core.out("vCPU %d:" % cpu)
                try:
                    self._run(a)
                except RestoreError:
                    raise
                except KbuError as e:
                    if len(cpus) == 1:
                        raise
                    failed.append(cpu)
                    core.out("  %s" % e)
        finally:
            prev.switch()
        if failed and len(failed) == len(cpus):
            raise KbuError("no vCPU could run CPUID")

    def _run(self, a):
        tsc = "tsc" in a.leaves
        leaves = [x for x in a.leaves if x != "tsc"]
        if a.all:
            values = all_leaves(a.test_fail_after)
        else:
            pairs = [parse_leaf(x) for x in leaves]
            if tsc:
                pairs += [p for p in TSC_LEAVES if p not in pairs]
            if not pairs:
                raise KbuError("give a leaf (e.g. 1, 7.0, 0x40000000), tsc, or --all")
            values = run_leaves(pairs, a.test_fail_after)
        for note in _last_notes:
            gdb.write("kbu cpuid: %s\n" % note, gdb.STDERR)
        if a.raw:
            for (leaf, sub), r in sorted(values.items()):
                core.out("0x%08x.%d  eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x"
                         % ((leaf, sub) + tuple(r)))
            return
        argv = decode_argv(values, tsc=tsc and (leaves or a.all), tsc_only=tsc and not leaves
                           and not a.all)
        st, text = session.bare().run(argv, a.json)
        core.out(text)
