"""kbu cpuid: run CPUID on the paused vCPU and decode it with libkbu.

CPUID is executed for real: its two bytes (0f a2) are written at the current
instruction pointer, EAX/ECX are set, the vCPU single-steps it, EAX..EDX are
read back. The registers, the two bytes and RIP are then restored and the
restoration is verified before the command returns, also when a step fails.
QEMU's single-step flags (qqemu.sstep) must mask interrupts and timers so the
step cannot enter an interrupt handler: kbu checks and sets them for the step.
"""
import argparse
import re

import gdb

from . import core, memory, session
from .core import KbuCommand, KbuError

CPUID = b"\x0f\xa2"
SAVED = ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags "
         "cs ss ds es fs gs fs_base gs_base k_gs_base cr0 cr2 cr3 cr4 cr8 efer").split()
SSTEP_WANTED = 0x7   # ENABLE | NOIRQ | NOTIMER
ARCH_DEFAULT_MAX = 0x20


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
    GDB's stop state untouched; only its register cache is dropped."""
    reply = memory._packet("vCont;s:%s" % _thread_id())
    if not reply or not reply.startswith(("T", "S")):
        raise KbuError("single step refused by the stub (vCont;s replied %r)" % reply)
    gdb.execute("maint flush register-cache", False, True)
    memory.bridge.flush()


def _set_reg(name, value):
    gdb.execute("set $%s = %d" % (name, value), False, True)


def halted(cpu):
    """True/False from QEMU's `info registers -a` (HLT=), None if it cannot tell."""
    try:
        text = core.quiet("monitor info registers -a")
    except gdb.error:
        return None
    blocks = re.split(r"^CPU#(\d+)", text, flags=re.M)
    for i in range(1, len(blocks) - 1, 2):
        if int(blocks[i]) == cpu:
            m = re.search(r"HLT=(\d)", blocks[i + 1])
            return bool(int(m.group(1))) if m else None
    return None


class Injection:
    """Context manager: CPUID bytes at RIP, everything restored and verified on exit.

    fail_after: for tests, raise after that many steps (proves the restore path).
    """

    def __init__(self, fail_after=None):
        self.fail_after = fail_after
        self.steps = 0

    def __enter__(self):
        core.need_live("kbu cpuid")
        self.saved = _regs_now(SAVED)
        for need in ("rip", "rax", "rbx", "rcx", "rdx", "eflags"):
            if need not in self.saved:
                raise KbuError("the stub does not give register %s" % need)
        if halted(core.cpu_index()):
            raise KbuError("vCPU %d is halted (HLT): a single step would wait for an interrupt "
                           "that stepping masks; stop it where it runs code (a breakpoint)"
                           % core.cpu_index())
        if "cr0" in self.saved and not self.saved["cr0"] & 1:
            raise KbuError("the vCPU is in real mode (CR0.PE=0): its code address is "
                           "segment-relative; stop it in protected or long mode")
        self.pc = self.saved["rip"]
        if not self.saved.get("efer", 0) & 0x400:    # not in long mode: 32-bit EIP
            self.pc &= 0xffffffff
        inf = gdb.selected_inferior()
        try:
            self.orig = bytes(inf.read_memory(self.pc, len(CPUID)))
        except gdb.MemoryError:
            raise KbuError("cannot read the code at RIP 0x%x" % self.pc)
        self.sstep_old = None
        try:
            cur = memory._packet("qqemu.sstep")
            if cur and int(cur, 16) != SSTEP_WANTED:
                self.sstep_old = int(cur, 16)
                memory._packet("Qqemu.sstep=0x%x" % SSTEP_WANTED)
        except (KbuError, ValueError):
            pass  # not QEMU: single-step as the stub does it, RIP is still checked
        self.written = False
        try:
            inf.write_memory(self.pc, CPUID)
            self.written = True
        except gdb.MemoryError:
            self._restore()
            raise KbuError("cannot write CPUID at RIP 0x%x" % self.pc)
        return self

    def cpuid(self, leaf, subleaf=0):
        if self.fail_after is not None and self.steps >= self.fail_after:
            raise KbuError("forced failure after %d steps (test)" % self.steps)
        self.steps += 1
        _set_reg("rip", self.saved["rip"])
        _set_reg("rax", leaf)
        _set_reg("rcx", subleaf)
        _raw_step()
        now = _regs_now(("rip", "rax", "rbx", "rcx", "rdx"))
        if now.get("rip") != self.saved["rip"] + len(CPUID):
            raise KbuError("CPUID at 0x%x did not complete in one step (RIP went to 0x%x): "
                           "an exception or interrupt intervened"
                           % (self.pc, now.get("rip", 0)))
        return tuple(now[r] & 0xffffffff for r in ("rax", "rbx", "rcx", "rdx"))

    def _restore(self):
        problems = []
        inf = gdb.selected_inferior()
        if self.written:
            try:
                inf.write_memory(self.pc, self.orig)
            except gdb.MemoryError as e:
                problems.append("code bytes at 0x%x: %s" % (self.pc, e))
        for name in ("rax", "rbx", "rcx", "rdx", "eflags", "rip"):
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
        after = _regs_now(SAVED)
        diff = [n for n in self.saved if after.get(n) != self.saved[n]]
        if diff:
            problems.append("registers differ after restore: " + ", ".join(
                "%s 0x%x != 0x%x" % (n, after.get(n, 0), self.saved[n]) for n in diff))
        try:
            back = bytes(inf.read_memory(self.pc, len(CPUID)))
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
            raise KbuError(msg)
        return False


def parse_leaf(text):
    leaf, _, sub = text.partition(".")
    try:
        return int(leaf, 0) & 0xffffffff, int(sub, 0) & 0xffffffff if sub else 0
    except ValueError:
        raise KbuError("bad leaf \"%s\" (LEAF or LEAF.SUBLEAF, e.g. 0x40000000 or 7.0)" % text)


def run_leaves(pairs, fail_after=None):
    """{(leaf, sub): (eax, ebx, ecx, edx)} for each pair, executed on the vCPU."""
    res = {}
    with Injection(fail_after) as inj:
        for leaf, sub in pairs:
            res[(leaf, sub)] = inj.cpuid(leaf, sub)
    return res


def all_leaves(fail_after=None):
    """Every basic, hypervisor and extended leaf (with the usual subleaves)."""
    res = {}
    with Injection(fail_after) as inj:
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


class Cpuid(KbuCommand):
    """Run CPUID on the paused vCPU and decode it (LEAF[.SUBLEAF] ..., --all, tsc).

Injects the CPUID instruction at the current RIP, single-steps it and restores
registers, code bytes and RIP exactly (verified). `kbu cpuid tsc` explains how
a kernel derives the TSC frequency on this VM and which step succeeds."""

    name = "cpuid"

    def parser(self, p):
        p.add_argument("leaves", nargs="*", metavar="LEAF[.SUBLEAF]|tsc",
                       help="leaves to run (hex with 0x); `tsc`: the TSC frequency chain")
        p.add_argument("--all", action="store_true", help="every basic, hypervisor, extended leaf")
        p.add_argument("--json", action="store_true", help="the libkbu JSON report")
        p.add_argument("--raw", action="store_true", help="only print EAX EBX ECX EDX per leaf")
        p.add_argument("--cpu", type=int, default=None,
                       help="run on this vCPU (default: the selected thread)")
        p.add_argument("--test-fail-after", type=int, default=None, help=argparse.SUPPRESS)

    def run(self, a):
        if a.cpu is None:
            return self._run(a)
        core.need_live("kbu cpuid")
        prev = gdb.selected_thread()
        memory.cpu_thread(a.cpu).switch()
        try:
            return self._run(a)
        finally:
            prev.switch()

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
        if a.raw:
            for (leaf, sub), r in sorted(values.items()):
                core.out("0x%08x.%d  eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x"
                         % ((leaf, sub) + tuple(r)))
            return
        argv = decode_argv(values, tsc=tsc and (leaves or a.all), tsc_only=tsc and not leaves
                           and not a.all)
        st, text = session.bare().run(argv, a.json)
        core.out(text)
