"""High/low relocation in GDB: kbu reloc, kbu reloc apply, kbu break, kbu addr, kbu load.

libkbu does the matching (`reloc`: per-segment physical aliases, runtime
slides found from the ELF's own code bytes, truncated-symbol checks); this
module drives GDB with the answer: it reloads symbols at the slide, sets
breakpoints at the alias that will execute, and repairs GDB's 32-bit
truncation of FreeBSD/NetBSD kernels (no OS ABI handler: `set osabi none`).

Symbols come from libkbu (the kernel ELF and `set kbu symbols MAP`), so
breakpoints by name work on a stripped vmlinux with a System.map: the
address is the map's link address plus the slide `kbu reloc` found.
"""
import os

import gdb

from . import core, memory, session
from .core import KbuCommand, KbuError

_state = {"key": None, "virt": None, "phys": None, "how": None, "map": None}
_kbu_bps = {}   # breakpoint number -> (spec, kind) for breakpoints kbu break made

PROBE_NAMES = ("lapic_init", "mi_startup", "hammer_time", "xen_start32", "start_pvh",
               "init_x86_64", "start_kernel", "panic", "vpanic", "startup_64", "main",
               "kern_assert", "x2apic_mode", "cpu_high")


def _key():
    return (core.kernel_path(), core.get_setting("symbols"))


def _forget(*unused):
    _state.update(key=None, virt=None, phys=None, how=None, map=None)


gdb.events.exited.connect(_forget)


def slides():
    """(virtual slide, physical slide) from the last search for this kernel (0 if none)."""
    if _state["key"] != _key():
        return 0, 0
    return _state["virt"] or 0, _state["phys"] or 0


def segments():
    """PT_LOAD segments [{vaddr, paddr, memsz, ...}] of the kernel (cached)."""
    core.need_kernel("kbu reloc")
    if _state["map"] is None or _state["key"] != _key():
        if _state["key"] != _key():
            _forget()
            _state["key"] = _key()
        j = session.ctx().run_json(["reloc", "--no-virt", "--no-phys"])
        _state["map"] = j.get("segments", [])
    return _state["map"]


def v2p(vaddr):
    for s in segments():
        if s["vaddr"] <= vaddr < s["vaddr"] + s["memsz"]:
            return s["paddr"] + (vaddr - s["vaddr"])
    return None


def p2v(paddr):
    for s in segments():
        if s["paddr"] <= paddr < s["paddr"] + s["memsz"] and s["vaddr"] >= 1 << 32:
            return s["vaddr"] + (paddr - s["paddr"])
    return None


def lib_sym(name):
    """Link address of a symbol from libkbu (ELF + map), or KbuError."""
    j = session.ctx().run_json(["sym", name])
    for r in j.get("results", []):
        if r.get("symbol") == name and r.get("address") is not None:
            return r["address"]
    raise KbuError("no symbol \"%s\" in the kernel ELF or symbol map" % name)


def lib_symbolize(addr):
    try:
        j = session.ctx().run_json(["sym", "0x%x" % addr])
    except KbuError:
        return None
    for r in j.get("results", []):
        if r.get("symbol"):
            off = r.get("offset") or 0
            return r["symbol"] + ("+0x%x" % off if off else "")
    return None


def gdb_sym_addr(name):
    """The address GDB gives a symbol, or None."""
    try:
        v = gdb.parse_and_eval("&'%s'" % name) if "." in name else gdb.parse_and_eval("&" + name)
        return int(v.cast(gdb.lookup_type("unsigned long long"))) & 0xffffffffffffffff
    except gdb.error:
        return None


def reported_args():
    """--reported NAME=ADDR for the probe symbols GDB knows."""
    out = []
    if not gdb.current_progspace().filename:
        return out
    for name in PROBE_NAMES:
        a = gdb_sym_addr(name)
        if a is not None:
            out += ["--reported", "%s=0x%x" % (name, a)]
    return out


def search(extra=()):
    """Runs libkbu reloc against the live guest; records and returns its JSON."""
    core.need_kernel("kbu reloc")
    core.need_live("finding the runtime slide")
    j = session.ctx().run_json(["reloc"] + list(extra) + reported_args())
    _state["key"] = _key()
    _state["map"] = j.get("segments", [])
    v, p = j.get("virtual", {}), j.get("physical", {})
    _state["virt"] = v.get("slide") if v.get("found") else None
    _state["phys"] = p.get("slide") if p.get("found") else None
    if _state["phys"] is not None and _state["phys"] >= 1 << 63:
        _state["phys"] -= 1 << 64
    _state["how"] = v.get("how")
    return j


def ensure_slides():
    """Searches once for the slides when the guest runs paged and none is known yet
    (a KASLR kernel then needs no explicit `kbu reloc` before `kbu break NAME`)."""
    if _state["key"] == _key() and _state["virt"] is not None:
        return
    if not core.is_live() or not paging_on():
        return
    try:
        search()
    except KbuError:
        pass


def truncated(j):
    return [r for r in j.get("reported", []) if str(r.get("verdict", "")).startswith("TRUNC")]


class Reloc(KbuCommand):
    """Link / load / runtime map of the kernel: physical aliases, KASLR slide, truncation.

Matches the kernel ELF's code against guest memory to find where it really
runs (virtually and physically), and checks the addresses GDB gives its
symbols (cut to 32 bits? left at the link address?). `kbu reloc apply`
acts on the answer."""

    name = "reloc"
    is_prefix = True

    def parser(self, p):
        p.add_argument("--json", action="store_true", help="the libkbu JSON report")
        p.add_argument("options", nargs="*", help="libkbu reloc options (--align, --range, ...)")

    def parse(self, arg):
        argv = gdb.string_to_argv(arg)
        if argv and argv[0] in ("-h", "--help"):
            return self._parser.parse_args(argv)
        ns = self._parser.parse_args([])
        ns.json = "--json" in argv
        ns.options = [a for a in argv if a != "--json"]
        return ns

    def run(self, a):
        if not core.is_live():
            st, text = session.run(["reloc"] + a.options + reported_args(), a.json)
            core.out(text)
            if not a.json and "TRUNCATED" in text:
                core.out("kbu: GDB truncates this kernel's symbols: `kbu reloc apply` reloads "
                         "them with `set osabi none`")
            return
        j = search(a.options)
        if a.json:
            import json
            core.out(json.dumps(j, indent=1))
            return
        st, text = session.run(["reloc"] + a.options + reported_args(), False)
        core.out(text)
        if truncated(j):
            core.out("kbu: GDB truncates this kernel's symbols: `kbu reloc apply` reloads "
                     "them with `set osabi none`")
        if _state["virt"]:
            core.out("kbu: the kernel runs 0x%x above its link address: `kbu reloc apply` "
                     "reloads the symbols there" % _state["virt"])


def _user_breakpoints():
    return [b for b in (gdb.breakpoints() or ())
            if b.is_valid() and b.type == gdb.BP_BREAKPOINT and b.visible]


def _reload_symbols(path, offset):
    """symbol-file at offset with osabi none, keeping the user's breakpoints."""
    saved = []
    for b in _user_breakpoints():
        if b.number in _kbu_bps:
            continue
        saved.append((b.number, b.location, b.condition, b.enabled, b.temporary))
    # GDB reuses an objfile it already read (with its truncated addresses) when the
    # same file is loaded again: drop both files first, then load afresh.
    confirm = gdb.parameter("confirm")
    gdb.execute("set confirm off", False, True)
    try:
        gdb.execute("set osabi none", False, True)
        gdb.execute("file", False, True)
        gdb.execute("symbol-file", False, True)
        gdb.execute("exec-file %s" % _quote(path), False, True)
        cmd = "symbol-file %s" % _quote(path)
        if offset:
            cmd += " -o 0x%x" % offset
        gdb.execute(cmd, False, True)
    finally:
        gdb.execute("set confirm %s" % ("on" if confirm else "off"), False, True)
    # GDB re-resolves breakpoint specs itself; make sure each still exists.
    now = {b.number: b for b in _user_breakpoints()}
    restored = 0
    for num, loc, cond, enabled, temp in saved:
        b = now.get(num)
        if b is not None:
            if b.enabled != enabled:   # GDB disables them while no symbols are loaded
                b.enabled = enabled
            continue
        if loc:
            try:
                nb = gdb.Breakpoint(loc, temporary=temp)
                nb.condition = cond
                nb.enabled = enabled
                restored += 1
            except gdb.error:
                pass
    return len(saved), restored


def _quote(path):
    return '"%s"' % path.replace("\\", "\\\\").replace('"', '\\"')


class RelocApply(KbuCommand):
    """Reload the kernel's symbols where it really runs and keep breakpoints working.

With symbols in GDB's file: `set osabi none` (repairs 32-bit truncation) and
`symbol-file FILE -o SLIDE`; GDB re-resolves breakpoints by name. Breakpoints
made by `kbu break` move to the relocated addresses. Without symbols in GDB
(a stripped vmlinux), kbu's own symbols (`set kbu symbols System.map`) plus
the slide serve `kbu break NAME` and `kbu addr`."""

    name = "reloc apply"

    def parser(self, p):
        p.add_argument("--slide", default=None,
                       help="use this virtual slide instead of searching")
        p.add_argument("--symbols", default=None, metavar="MAP",
                       help="also use this nm-format map (sets `kbu symbols`)")

    def run(self, a):
        if a.symbols:
            if not os.path.exists(a.symbols):
                raise KbuError("no such file: %s" % a.symbols)
            gdb.execute("set kbu symbols %s" % a.symbols, False, True)
        trunc = []
        if a.slide is not None:
            _state["key"] = _key()
            _state["virt"] = core.parse_int(a.slide, "slide")
            _state["how"] = "given"
        elif not core.is_live():
            # No guest to search: repair what the file alone shows (truncation).
            core.need_kernel("kbu reloc apply")
            j = session.ctx().run_json(["reloc"] + reported_args())
            trunc = truncated(j)
            if not trunc:
                raise KbuError("no live target to find the slide and GDB's symbols are not "
                               "truncated: nothing to apply (or give --slide N)")
            _state["key"] = _key()
            _state["virt"] = 0
        else:
            j = search()
            trunc = truncated(j)
            if _state["virt"] is None:
                raise KbuError("no runtime slide found: %s" % (_state["how"] or "?"))
        slide = _state["virt"]
        path = gdb.current_progspace().filename
        has_syms = path and any(gdb_sym_addr(n) is not None for n in PROBE_NAMES)
        if path and (slide or trunc) and has_syms:
            n, restored = _reload_symbols(path, slide)
            core.out("kbu: reloaded %s at offset 0x%x%s; %d breakpoint(s) kept"
                     % (path, slide, " with osabi none (GDB had cut symbols to 32 bits)"
                        if trunc else "", n))
        elif path and not has_syms:
            core.out("kbu: %s has no symbols GDB can use: kbu break NAME and kbu addr use "
                     "libkbu's symbols (%s) + slide 0x%x"
                     % (path, core.get_setting("symbols") or "ELF .symtab", slide))
        else:
            core.out("kbu: the kernel runs at its link address; nothing to reload")
        moved = 0
        for num, (spec, kind) in list(_kbu_bps.items()):
            bp = next((b for b in gdb.breakpoints() or () if b.number == num), None)
            if bp is None:
                del _kbu_bps[num]
                continue
            if kind == "high":
                addr = resolve(spec)["runtime"]
                if bp.location != "*0x%x" % addr:
                    bp.delete()
                    del _kbu_bps[num]
                    place(spec, addr, kind)
                    moved += 1
        if moved:
            core.out("kbu: moved %d kbu break breakpoint(s) to the relocated addresses" % moved)


def resolve(spec):
    """Every alias of a symbol or *ADDR / ADDR:
    {name, link, runtime, phys_link, phys_runtime, given}."""
    vs, ps = slides()
    text = spec[1:] if spec.startswith("*") else spec
    addr = name = None
    if spec.startswith("*") or text[:1].isdigit():
        addr = core.parse_int(text, "address")
    else:
        try:
            link = lib_sym(text)
            name = text
        except KbuError as e:
            try:                       # a GDB expression such as $pc or $rip+4
                addr = core.parse_int(text, "address")
            except KbuError:
                raise e
    if addr is not None:
        if addr >= 1 << 32:            # a virtual (high) address: runtime, or link if no slide
            link = addr - vs if v2p(addr - vs) is not None else addr
        else:                          # a low address: a physical alias
            lv = p2v(addr - ps)
            link = lv if lv is not None else addr
    pl = v2p(link)
    return {"name": name or lib_symbolize(link), "link": link, "runtime": link + vs,
            "phys_link": pl, "phys_runtime": pl + ps if pl is not None else None,
            "given": addr}


def paging_on():
    try:
        return bool(core.read_reg("cr0") & 0x80000000)
    except KbuError:
        return None


def mapped(vaddr):
    try:
        memory.bridge.read(memory.VIRT, vaddr, 1)
        return True
    except KbuError:
        return False


def place(spec, addr, kind):
    bp = gdb.Breakpoint("*0x%x" % addr, internal=False)
    _kbu_bps[bp.number] = (spec, kind)
    return bp


class Break(KbuCommand):
    """Break on SYMBOL or *ADDR at the alias that will execute (physical while paging is off).

Default: physical alias while CR0.PG=0 or the high address is not mapped
yet, virtual (runtime, slide included) afterwards. --both sets both so it
trips in either phase. Symbols come from the kernel ELF / symbol map via
libkbu, so 64-bit addresses are right even when GDB truncates them."""

    name = "break"
    completer = gdb.COMPLETE_SYMBOL
    is_prefix = True   # `kbu break assert` and other kbu breakpoints live under it

    def parser(self, p):
        p.add_argument("spec", metavar="SYMBOL|*ADDR")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--low", action="store_true", help="the physical alias")
        g.add_argument("--high", action="store_true", help="the virtual (runtime) address")
        g.add_argument("--both", action="store_true", help="both: trips in either phase")

    def run(self, a):
        core.need_kernel("kbu break")
        ensure_slides()
        r = resolve(a.spec)
        if a.low:
            kinds = ["low"]
            why = "asked"
        elif a.high:
            kinds = ["high"]
            why = "asked"
        elif a.both:
            kinds = ["low", "high"]
            why = "asked"
        elif not core.is_live():
            kinds, why = ["low", "high"], "no live target to tell the phase"
        else:
            pg = paging_on()
            if pg is False:
                kinds, why = ["low"], "paging is off (CR0.PG=0)"
            elif mapped(r["runtime"]):
                kinds, why = ["high"], "the high address is mapped"
            else:
                kinds, why = ["low"], "the high address is not mapped yet"
        label = r["name"] or a.spec
        for kind in kinds:
            if kind == "low":
                if r["phys_runtime"] is None:
                    raise KbuError("%s (0x%x) is in no PT_LOAD segment: no physical alias"
                                   % (label, r["link"]))
                addr = r["phys_runtime"]
            else:
                addr = r["runtime"]
            bp = place(a.spec, addr, kind)
            core.out("kbu break: %s at %s 0x%x (%s) -> breakpoint %d"
                     % (label, "physical" if kind == "low" else "virtual", addr, why, bp.number))


class Addr(KbuCommand):
    """Print every alias of an address or symbol: link, runtime, physical, truncated."""

    name = "addr"
    completer = gdb.COMPLETE_SYMBOL

    def parser(self, p):
        p.add_argument("spec", metavar="SYMBOL|ADDR")

    def run(self, a):
        core.need_kernel("kbu addr")
        ensure_slides()
        r = resolve(a.spec)
        vs, ps = slides()
        rows = [("symbol", r["name"] or "-"),
                ("link (virtual)", "0x%016x" % r["link"]),
                ("runtime (virtual)", "0x%016x%s" % (r["runtime"], "  (slide 0x%x)" % vs
                                                      if vs else "")),
                ("physical (load)", "0x%016x" % r["phys_link"] if r["phys_link"] is not None
                 else "- (in no PT_LOAD segment)"),
                ("physical (runtime)", "0x%016x%s" % (r["phys_runtime"], "  (moved 0x%x)" % ps
                                                       if ps else "")
                 if r["phys_runtime"] is not None else "-"),
                ("cut to 32 bits", "0x%08x" % (r["link"] & 0xffffffff)
                 if r["link"] >= 1 << 32 else "-")]
        if r["name"] and "+" not in r["name"]:
            g = gdb_sym_addr(r["name"])
            if g is not None:
                verdict = "ok" if g == r["runtime"] else \
                    "TRUNCATED (kbu reloc apply)" if g == r["link"] & 0xffffffff else \
                    "at the link address (kbu reloc apply)" if g == r["link"] else "differs"
                rows.append(("GDB says", "0x%016x  %s" % (g, verdict)))
        if core.is_live():
            rows.append(("mapped now", "yes" if mapped(r["runtime"]) else "no"))
        w = max(len(k) for k, _ in rows)
        for k, v in rows:
            core.out("%-*s  %s" % (w + 1, k + ":", v))


class Load(KbuCommand):
    """Load a kernel ELF into GDB the way kbu needs: `set osabi none`, file, checks.

Debian's GDB has no FreeBSD or NetBSD OS ABI: without `set osabi none` it
cuts their 64-bit symbols to 32 bits and rejects QEMU's registers."""

    name = "load"
    completer = gdb.COMPLETE_FILENAME

    def parser(self, p):
        p.add_argument("path", metavar="ELF")

    def run(self, a):
        path = os.path.abspath(os.path.expanduser(a.path))
        if not os.path.isfile(path):
            raise KbuError("no such file: %s" % a.path)
        gdb.execute("set osabi none", False, True)
        gdb.execute("file %s" % _quote(path), False, True)
        gdb.execute("set kbu kernel %s" % path, False, True)
        core.out("kbu: loaded %s (osabi none)" % path)
        for name in PROBE_NAMES:
            g = gdb_sym_addr(name)
            if g is None:
                continue
            try:
                real = lib_sym(name)
            except KbuError:
                continue
            if g != real:
                core.out("kbu: ! GDB says %s is at 0x%x, the ELF says 0x%x" % (name, g, real))
            break


def _elf_osabi(path):
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
    except OSError:
        return None
    return ident[7] if len(ident) == 16 and ident[:4] == b"\x7fELF" else None


def _warn_osabi(event):
    of = getattr(event, "new_objfile", None)
    if of is None or of.filename != gdb.current_progspace().filename:
        return
    abi = _elf_osabi(of.filename)
    if abi in (2, 9):   # ELFOSABI_NETBSD, ELFOSABI_FREEBSD
        try:
            cur = core.quiet("show osabi")
        except gdb.error:
            return
        if '"none"' not in cur and "none" not in cur.split("currently")[0]:
            gdb.write("kbu: %s is a %s kernel and GDB has no OS ABI for it: its 64-bit symbols "
                      "will be cut to 32 bits. Use `kbu load %s` (sets osabi none).\n"
                      % (of.filename, "FreeBSD" if abi == 9 else "NetBSD", of.filename),
                      gdb.STDERR)


gdb.events.new_objfile.connect(_warn_osabi)


class KbuPhys(gdb.Function):
    """$kbu_phys("symbol") or $kbu_phys(addr): the physical alias (with the load slide)."""

    def __init__(self):
        super().__init__("kbu_phys")

    def invoke(self, what):
        def go():
            spec = what.string() if what.type.code in (gdb.TYPE_CODE_ARRAY, gdb.TYPE_CODE_PTR) \
                and what.type.target().sizeof == 1 else "0x%x" % int(what)
            r = resolve(spec)
            if r["phys_runtime"] is None:
                raise KbuError("%s has no physical alias" % spec)
            return r["phys_runtime"]
        return core.one_line_errors("$kbu_phys", go)


KbuPhys()
