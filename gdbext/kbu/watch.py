"""`kbu watch x2apic|timecounter|report|off`: watch the OS's x2APIC flag and its
active time source without stopping the guest.

What is watched comes from the OS profile (x2apic, timesource, time_register
roles and the timesource layout). Each change is logged with old -> new, the
CPU and the store that made it. Hardware watchpoints only report a write that
changes the value, so kbu also puts breakpoints (that never stop) on every
instruction libkbu finds storing to the variable, to count writes that leave
it as it was; and it reads the time source registration list (timecounters,
Linux clocksource_list) to tell "never registered" from "never selected".
The time source structures and the list are read by libkbu (`kbu
timesource`), with the offsets GDB's debug information gives when it has them.

While paging is off the kernel runs at its physical load address, so a watch
armed then covers both aliases: the physical one for the early code, the
high virtual one for everything after the switch to the high map.
"""
import json
import traceback

import gdb

from . import core, memory, profile, session
from .core import KbuError

KINDS = ("x2apic", "timecounter")
_CTYPE = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long long"}
STORE_WINDOW = 15   # an x86 instruction is at most 15 bytes: the store is just before the pc


_epoch = [0]  # bumped on every resume: tells one stop's events from the next's


def _resumed(*unused):
    _epoch[0] += 1


gdb.events.cont.connect(_resumed)


def _cpu():
    try:
        return core.cpu_index()
    except (gdb.error, AttributeError):
        return 0


def _pc():
    try:
        return gdb.selected_frame().pc() & 0xffffffffffffffff
    except gdb.error:
        return 0


def _quietly(owner, fn):
    """Runs a stop handler; errors become one line (a traceback with `set kbu debug on`)."""
    owner.stops += 1
    try:
        with core.in_stop_handler():
            return fn()
    except Exception as e:
        if core.debug_enabled():
            gdb.write(traceback.format_exc(), gdb.STDERR)
        gdb.write("kbu watch %s: %s\n" % (owner.kind, e), gdb.STDERR)
        return False


class _ValueWatch(gdb.Breakpoint):
    def __init__(self, owner, addr, alias):
        spec = "*(%s *)0x%x" % (_CTYPE[owner.size], addr)
        super().__init__(spec, gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=True)
        self.owner, self.addr, self.alias = owner, addr, alias

    def stop(self):
        return _quietly(self.owner, lambda: self.owner.changed(self))


class _StoreSite(gdb.Breakpoint):
    def __init__(self, owner, addr, where):
        super().__init__("*0x%x" % addr, gdb.BP_BREAKPOINT, internal=True)
        self.owner, self.addr, self.where = owner, addr, where

    def stop(self):
        return _quietly(self.owner, lambda: self.owner.store(self))


class _StoreInsn(gdb.Breakpoint):
    """--stores mode: a breakpoint ON a store; it works out the value being stored."""

    def __init__(self, owner, addr, where, stored):
        super().__init__("*0x%x" % addr, gdb.BP_BREAKPOINT, internal=True)
        # stored: what libkbu's operand decode says the store writes
        # ({"kind": "immediate", "value": N} or {"kind": "register", "register": R}), or None
        self.owner, self.addr, self.where, self.stored = owner, addr, where, stored

    def stop(self):
        return _quietly(self.owner, lambda: self.owner.store_insn(self))


# Capstone's byte/word/dword register names -> GDB's.
_GDB_REG = {"r%d%s" % (n, suf): "r%d%s" % (n, gsuf) for n in range(8, 16)
            for suf, gsuf in (("b", "l"), ("w", "w"), ("d", "d"))}


def _stored_value(stored, size):
    """The value a store writes, from `kbu msgrefs --data`'s decode of it: its
    immediate, or its source register read now (before it executes); None if
    libkbu could not name the source (not a plain mov)."""
    mask = (1 << (8 * size)) - 1
    if not stored:
        return None
    if stored.get("kind") == "immediate":
        return stored["value"] & mask
    reg = stored.get("register")
    try:
        return int(gdb.selected_frame().read_register(_GDB_REG.get(reg, reg))) & mask
    except (ValueError, gdb.error):
        return None


def _aliases(name, addr):
    """[(addr, 'virtual'|'physical')]: the physical alias too while paging is off."""
    out = [(profile.runtime(addr), "virtual")]
    try:
        from . import reloc
        r = reloc.resolve(name)
        if r.get("runtime"):
            out = [(r["runtime"], "virtual")]
        if reloc.paging_on() is False and r.get("phys_runtime") not in (None, out[0][0]):
            out.append((r["phys_runtime"], "physical"))
    except Exception:
        pass
    return out


class Watch:
    """One watched role: its watchpoints, store sites, log and summary."""

    def __init__(self, kind, prof, stores_only=False):
        self.kind = kind
        self.stores_only = stores_only
        self.unknown_stores = 0
        self.stops = 0         # times the guest was paused (and resumed) for this watch
        self.prof = prof
        self.bps = []
        self.log = []          # (cpu, old_text, new_text, where)
        self.values = []       # (old, new, pc) of each change in log: its values
        self.writes = 0        # store-site hits
        self.sites = []        # (addr, where) of the stores libkbu found
        self.listed_at_arm = []      # time sources registered when the watch was armed
        self.last_store = self.last_change = None
        self.register_entries = []
        if kind == "x2apic":
            self.symbol = profile.role(prof, "x2apic")
            self.size = 1 if profile.role(prof, "x2apic_type") == "bool" else 4
        else:
            self.symbol = profile.role(prof, "timesource")
            self.size = 8 if profile.role(prof, "timesource_pointer") == "1" else 0
            if not self.size:
                raise KbuError("the %s profile's time source is not a pointer "
                               "(timesource_pointer): cannot watch it" % prof.get("name"))
            self.register_entries = profile.role_words(prof, "time_register")
        if not self.symbol:
            raise KbuError("the %s profile names no %s variable" % (prof.get("name"), kind))
        addr = profile.symbol_addr(prof, self.symbol)
        if addr is None:
            raise KbuError("no symbol %s in this kernel" % self.symbol)
        self.addr = addr
        self.aliases = _aliases(self.symbol, addr)
        self.raw = self.read_raw()
        self.first = self.render(self.raw)

    # -- values -----------------------------------------------------------------
    def read_raw(self, addrs=None):
        for a, _ in (addrs or self.aliases):
            try:
                return profile.read_uint(a, self.size)
            except KbuError:
                continue
        return None

    def render(self, raw):
        if raw is None:
            return "(unreadable)"
        if self.kind == "x2apic":
            return "%d (%s)" % (raw, "x2APIC" if raw else "xAPIC")
        return self.describe_source(raw)

    def timesource(self, extra):
        """libkbu's `kbu timesource` over the guest as it is now."""
        memory.bridge.flush()
        c = session.ctx()
        c.flush()
        sl = profile.slide() & 0xffffffffffffffff
        return c.run_json(["timesource"] + list(extra) + _layout_args(self.prof)
                          + profile.profile_args() + (["--slide", "0x%x" % sl] if sl else []))

    def source_name(self, ptr):
        if not ptr:
            return None
        try:
            return self.timesource(["--at", "0x%x" % ptr]).get("at", {}).get("name")
        except KbuError:
            return None

    def describe_source(self, ptr):
        if not ptr:
            return "NULL"
        try:
            j = self.timesource(["--at", "0x%x" % ptr])
        except KbuError:
            return "'0x%x' (unreadable)" % ptr
        return source_text(j.get("at") or {"addr": ptr}, j.get("quality_name"))

    # -- arming -----------------------------------------------------------------
    def arm(self):
        try:
            if not self.stores_only:
                for a, alias in self.aliases:
                    self.bps.append(_ValueWatch(self, a, alias))
            try:
                res = session.ctx().run_json(["msgrefs", "--data",
                                              "%s:%d" % (self.symbol, self.size)])
                refs = [r for r in res.get("refs", []) if r.get("access") == "write"]
            except KbuError:
                refs = []
            # (store, next instruction, where), where the kernel runs now
            sl = profile.slide()
            for r in refs:
                r["addr"] = (r["addr"] + sl) & 0xffffffffffffffff
            self.sites = [(r["addr"], r["addr"] + r["len"], r["where"]) for r in refs]
            if self.stores_only:
                if not refs:
                    raise KbuError("libkbu finds no instruction storing to %s: --stores "
                                   "cannot watch it (drop --stores for a hardware watchpoint)"
                                   % self.symbol)
                for r in refs:
                    self.bps.append(_StoreInsn(self, r["addr"], r["where"], r.get("stored")))
                    low = self.low_alias(r["addr"])
                    if low is not None:
                        self.bps.append(_StoreInsn(self, low, r["where"] + " (physical alias)",
                                                   r.get("stored")))
            elif self.kind == "x2apic":
                # Counting unchanged writes: a breakpoint after each store (never on
                # it, so GDB never steps over a store that trips the watchpoint).
                # Only for the flag, whose stores sit in cold init code: a
                # breakpoint on a hot page makes QEMU run that page one
                # instruction at a time.
                for _, after, where in self.sites:
                    self.bps.append(_StoreSite(self, after, where))
                    low = self.low_alias(after)
                    if low is not None:
                        self.bps.append(_StoreSite(self, low, where))
            self.listed_at_arm = self.registered_sources()
        except (KeyboardInterrupt, Exception):
            self.disarm()
            raise

    def registered_sources(self):
        """The time sources on the kernel's registration list (timecounters,
        clocksource_list): read, not trapped, so registering costs nothing."""
        if self.kind != "timecounter" or not profile.role(self.prof, "timesource_list"):
            return []
        try:
            j = self.timesource(["--list"])
        except KbuError:
            return []
        return [r["addr"] for r in j.get("registered", [])]

    def low_alias(self, addr):
        """The physical alias of a runtime address (only armed while paging is off)."""
        if len(self.aliases) < 2:
            return None
        try:
            from . import reloc
            return reloc.v2p((addr - profile.slide()) & 0xffffffffffffffff)
        except Exception:
            return None

    def disarm(self):
        for bp in self.bps:
            try:
                if bp.is_valid():
                    bp.delete()
            except (RuntimeError, gdb.error):
                pass
        self.bps = []

    # -- events -----------------------------------------------------------------
    def where_stored(self, pc):
        """The store instruction that ends at pc (watchpoints trap after it)."""
        for a, after, where in self.sites:
            if after == pc:
                return where
            low = self.low_alias(after)
            if low is not None and low == pc:
                return where + " (physical alias)"
        for a, after, where in self.sites:
            if 0 < pc - a <= STORE_WINDOW:
                return where
        return "the store before " + profile.symbolize(pc)

    def changed(self, wp):
        new = self.read_raw([(wp.addr, wp.alias)])
        if new is None or new == self.raw:
            return False
        pc = _pc()
        mark = (_epoch[0], pc)
        if self.last_store == mark:
            self.writes -= 1  # the same store, already counted at the count breakpoint
        self.last_change = mark
        old_text, new_text = self.render(self.raw), self.render(new)
        where = self.where_stored(pc)
        cpu = _cpu()
        self.log.append((cpu, old_text, new_text, where))
        self.values.append((self.raw, new, pc))
        self.raw = new
        gdb.write("kbu watch: %s %s -> %s on CPU %s at %s\n"
                  % (self.symbol, old_text, new_text, cpu, where))
        return False

    def store(self, site):
        mark = (_epoch[0], _pc())
        if self.last_change != mark:  # else the watchpoint logged this store already
            self.writes += 1
        self.last_store = mark
        return False

    def store_insn(self, bp):
        """--stores: at the store, before it executes: log old -> new if it changes."""
        new = _stored_value(bp.stored, self.size)
        if new is None:
            self.unknown_stores += 1
            self.writes += 1
            return False
        cur = self.read_raw()
        old = cur if cur is not None else self.raw
        if new == old:
            self.writes += 1
            return False
        old_text, new_text = self.render(old), self.render_future(new)
        cpu = _cpu()
        self.log.append((cpu, old_text, new_text, bp.where))
        self.values.append((old, new, bp.addr))
        self.raw = new
        gdb.write("kbu watch: %s %s -> %s on CPU %s at %s\n"
                  % (self.symbol, old_text, new_text, cpu, bp.where))
        return False

    def render_future(self, raw):
        """Like render, for a value not stored yet (a pointer's target exists already)."""
        return self.render(raw)

    # -- summary ----------------------------------------------------------------
    def sentence(self):
        now = self.render(self.raw)
        # A store that changes the value is logged by the watchpoint, one that
        # leaves it is counted at the instruction after it.
        writes = self.writes + len(self.log)
        wtext = "%d write%s" % (writes, "" if writes == 1 else "s")
        if self.kind == "x2apic":
            if not self.log:
                return "%s stayed %s through %s" % (self.symbol, now, wtext)
            steps = "; ".join("%s -> %s at %s on CPU %s" % (o, n, w, c)
                              for c, o, n, w in self.log)
            return "%s changed: %s (%s)" % (self.symbol, steps, wtext)
        reg = self.register_entries[0] if self.register_entries else "registration"
        now_listed = self.registered_sources()
        new = [p for p in now_listed if p not in self.listed_at_arm]
        if not profile.role(self.prof, "timesource_list"):
            rtext = "(no registration list in the profile)"
        elif not new:
            rtext = "%s was never called" % reg
        else:
            names = [self.source_name(p) or "0x%x" % p for p in reversed(new)]
            rtext = "%s registered %d (%s)" % (reg, len(new), ", ".join(names))
        if not self.log:
            return "%s never left %s; %s" % (self.symbol, self.short(now), rtext)
        chain = " -> ".join([self.short(self.log[0][1])] + [self.short(n) for _, _, n, _ in
                                                             self.log])
        return "%s went %s; now %s; %s" % (self.symbol, chain, now, rtext)

    def as_json(self):
        """The watch's values: the variable now, each change (old and new value,
        CPU, the store), writes and stops; a time source also by name."""
        ts = self.kind == "timecounter"
        changes = []
        for (cpu, _o, _n, where), (old, new, pc) in zip(self.log, self.values):
            c = {"cpu": cpu, "old": old, "new": new, "pc": pc, "where": where}
            if ts:
                c.update(old_source=self.source_name(old), new_source=self.source_name(new))
            changes.append(c)
        j = {"kind": self.kind, "symbol": self.symbol, "value": self.raw}
        if ts:
            j["source"] = self.source_name(self.raw)
        j.update(writes=self.writes + len(self.log), stops=self.stops,
                 registered=[self.source_name(p) for p in self.registered_sources()]
                 if ts else None, changes=changes)
        return j

    @staticmethod
    def short(text):
        return text.split(" (")[0]


def source_text(ts, quality_name):
    """"'i8254' (1193182 Hz, tc_quality 0)": a time source libkbu read, in a log line."""
    parts = []
    if ts.get("frequency") is not None:
        parts.append("%d Hz" % ts["frequency"])
    if ts.get("quality") is not None:
        parts.append("%s %d" % (quality_name or "quality", ts["quality"]))
    name = ts["name"] if ts.get("name") is not None else "0x%x" % ts.get("addr", 0)
    return "'%s'%s" % (name, " (%s)" % ", ".join(parts) if parts else "")


def _layout_args(prof):
    """--field KEY=OFF:SIZE for libkbu's timesource: the offsets of the kernel's own
    DWARF where GDB has it (profile.field prefers it), else the profile's."""
    out = []
    for key in ("name", "frequency", "quality", "next", "list"):
        f = profile.field(prof, "timesource", key)
        if f is not None and f[1]:
            out += ["--field", "%s=%d:%d" % (key, f[0], f[1])]
    return out


class Watches:
    def __init__(self):
        self.active = {}

    def arm(self, kind, stores_only=False):
        prof = profile.get()
        if kind in self.active:
            self.active.pop(kind).disarm()
        w = Watch(kind, prof, stores_only)
        w.arm()
        self.active[kind] = w
        return w

    def off(self):
        n = sum(len(w.bps) for w in self.active.values())
        for w in self.active.values():
            w.disarm()
        self.active.clear()
        return n

    def forget(self, *unused):
        self.off()


watches = Watches()
gdb.events.exited.connect(watches.forget)
if hasattr(gdb.events, "inferior_deleted"):
    gdb.events.inferior_deleted.connect(watches.forget)


class WatchCmd(core.KbuCommand):
    """Watch x2APIC mode or the time source without stopping the guest; report or switch off.

kbu watch x2apic       the profile's x2APIC flag (x2apic_mode)
kbu watch timecounter  the active time source (FreeBSD/NetBSD timecounter,
                       Linux curr_clocksource) and calls of its registration
kbu watch report       one sentence per watch: what changed, where, how often
kbu watch off          remove every watchpoint and breakpoint kbu placed

Changes are logged as they happen (old -> new, CPU, the storing instruction);
the guest never stops for them. Armed while paging is off, a watch also
covers the physical alias the early kernel runs at."""

    name = "watch"

    def parser(self, p):
        p.add_argument("what", choices=list(KINDS) + ["report", "off"])
        p.add_argument("--json", action="store_true", help="with report: the watches as JSON")
        p.add_argument("--stores", action="store_true",
                       help="no hardware watchpoint: break (without stopping) on each store "
                            "libkbu finds and log the value it writes; cheaper under TCG, "
                            "blind to stores through pointers")

    def run(self, args):
        if args.what == "off":
            n = watches.off()
            core.out("kbu watch: removed %d watchpoint(s) and breakpoint(s)" % n)
            return
        if args.what == "report":
            if not watches.active:
                raise KbuError("nothing is watched (kbu watch x2apic|timecounter)")
            if args.json:
                core.out(json.dumps({"watches": [watches.active[kind].as_json() for kind in KINDS
                                                 if kind in watches.active]}))
                return
            for kind in KINDS:
                w = watches.active.get(kind)
                if w is None:
                    continue
                core.out(w.sentence())
                core.out("  (%d silent stop%s of the guest for this watch)"
                         % (w.stops, "" if w.stops == 1 else "s"))
                for cpu, old, new, where in w.log:
                    core.out("  CPU %-3s %s -> %s at %s" % (cpu, old, new, where))
            return
        core.need_live("kbu watch")
        core.need_kernel("kbu watch")
        w = watches.arm(args.what, args.stores)
        aliases = ", ".join("%s 0x%x" % (alias, a) for a, alias in w.aliases)
        if w.stores_only:
            aliases = "%d store instruction(s) (no hardware watchpoint)" % len(w.sites)
        extra = []
        if w.sites and not w.stores_only and w.kind == "x2apic":
            extra.append("counting writes at %d store(s)" % len(w.sites))
        if w.kind == "timecounter":
            extra.append("%d registered on %s" % (len(w.listed_at_arm),
                                                   profile.role(w.prof, "timesource_list")
                                                   or "(no list)"))
        core.out("kbu watch: %s = %s, watching %s%s" % (
            w.symbol, w.first, aliases, "; " + ", ".join(extra) if extra else ""))
