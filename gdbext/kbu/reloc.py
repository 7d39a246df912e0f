"""High/low relocation in GDB: kbu reloc, kbu reloc apply, kbu break, kbu addr, kbu load.

libkbu does the matching (`reloc`: per-segment physical aliases, runtime
slides found from the ELF's own code bytes, truncated-symbol checks); this
module drives GDB with the answer: it reloads symbols at the slide, sets
breakpoints at every alias that can execute, and repairs GDB's 32-bit
truncation of FreeBSD/NetBSD kernels (no OS ABI handler: `set osabi none`)
as soon as such a kernel is loaded, however it was loaded.

Symbols come from libkbu (the kernel ELF and `set kbu symbols MAP`), so
breakpoints by name work on a stripped vmlinux with a System.map: the
address is the map's link address plus the slide `kbu reloc` found.

Where a kernel's code executes depends on the phase of the boot: at its
physical load address while paging is off, at link + slide once it runs
with its own page tables, and the slide itself (KASLR) is chosen by the
loader. `kbu break` arms every alias that can execute when the phase does
not decide it yet, says which one tripped, and moves or drops the others
at the next stop once the slide is known.
"""
import json
import os
import traceback

import gdb

from . import core, memory, session
from .core import KbuError

_state = {"key": None, "virt": None, "phys": None, "how": None, "map": None,
          "phase": None, "failed_cr3": None, "phys_found": None}

PROBE_NAMES = ("lapic_init", "mi_startup", "hammer_time", "xen_start32", "start_pvh",
               "init_x86_64", "start_kernel", "panic", "vpanic", "startup_64", "main",
               "kern_assert", "x2apic_mode", "cpu_high")

# The slides libkbu's reloc tries by default: 2 MiB steps up to 1 GiB.
SLIDE_ALIGN = 2 << 20
SLIDE_RANGE = 1 << 30


def _key():
    return (core.kernel_path(), core.get_setting("symbols"))


def _forget(*unused):
    _state.update(key=None, virt=None, phys=None, how=None, map=None, phase=None,
                  failed_cr3=None, phys_found=None)


gdb.events.exited.connect(_forget)


def slides():
    """(virtual slide, physical slide) from the last search for this kernel (0 if none)."""
    if _state["key"] != _key():
        return 0, 0
    return _state["virt"] or 0, _state["phys"] or 0


def slide_known():
    return _state["key"] == _key() and _state["virt"] is not None


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


def gdb_sym_addr(name, objfile=None):
    """The address GDB gives a symbol (in objfile if given), or None."""
    if objfile is not None:
        for look in ("lookup_global_symbol", "lookup_static_symbol"):
            try:
                sym = getattr(objfile, look)(name)
            except (gdb.error, AttributeError, RuntimeError):
                sym = None
            if sym is not None:
                try:
                    if sym.addr_class == gdb.SYMBOL_LOC_BLOCK:
                        return int(sym.value().address) & 0xffffffffffffffff
                    return int(sym.value().address) & 0xffffffffffffffff
                except (gdb.error, TypeError, AttributeError):
                    pass
    try:
        v = gdb.parse_and_eval("&'%s'" % name) if "." in name else gdb.parse_and_eval("&" + name)
        return int(v.cast(gdb.lookup_type("unsigned long long"))) & 0xffffffffffffffff
    except gdb.error:
        return None


def reported_args(objfile=None):
    """--reported NAME=ADDR for the probe symbols GDB knows."""
    out = []
    if objfile is None and not gdb.current_progspace().filename and not core.loaded_kernel():
        return out
    for name in PROBE_NAMES:
        a = gdb_sym_addr(name, objfile)
        if a is not None:
            out += ["--reported", "%s=0x%x" % (name, a)]
    return out


def paging_on():
    try:
        return bool(core.read_reg("cr0") & 0x80000000)
    except KbuError:
        return None


def _cr3():
    try:
        return core.read_reg("cr3")
    except KbuError:
        return None


def search(extra=(), reported=True):
    """Runs libkbu reloc against the live guest (progress shown, Ctrl-C stops it);
    records and returns its JSON."""
    core.need_kernel("kbu reloc")
    core.need_live("finding the runtime slide")
    from . import forward
    c = session.ctx()
    argv = ["reloc"] + list(extra) + (reported_args() if reported else [])
    with forward.reading_progress(c, "reloc"):
        j = c.run_json(argv)
    _state["key"] = _key()
    _state["map"] = j.get("segments", [])
    v, p = j.get("virtual", {}), j.get("physical", {})
    _state["virt"] = v.get("slide") if v.get("found") else None
    _state["phys"] = p.get("slide") if p.get("found") else None
    if _state["phys"] is not None and _state["phys"] >= 1 << 63:
        _state["phys"] -= 1 << 64
    _state["how"] = v.get("how")
    _state["phase"] = j.get("phase")
    _state["phys_found"] = bool(p["found"]) if "found" in p else None
    _state["failed_cr3"] = None if _state["virt"] is not None else _cr3()
    return j


def ensure_slides():
    """Searches once for the slides when the guest runs paged and none is known yet
    (a KASLR kernel then needs no explicit `kbu reloc` before `kbu break NAME`).
    A search that found nothing is not repeated while CR3 stays the same."""
    if slide_known():
        return
    if not core.is_live() or not paging_on():
        return
    cr3 = _cr3()
    if _state["key"] == _key() and _state["failed_cr3"] is not None and _state["failed_cr3"] == cr3:
        return
    try:
        search(reported=False)
    except KbuError:
        pass


def verify_slide(slide):
    """True when the kernel's code is at link + slide now (libkbu reloc --slide)."""
    try:
        j = session.ctx().run_json(["reloc", "--no-phys", "--slide",
                                    "0x%x" % (slide & 0xffffffffffffffff)])
    except KbuError:
        return False
    v = j.get("virtual", {})
    if v.get("found"):
        _state["key"] = _key()
        _state["virt"] = slide
        _state["how"] = v.get("how")
        _state["failed_cr3"] = None
        return True
    return False


def truncated(j):
    """The reported rows libkbu found cut to 32 bits."""
    return [r for r in j.get("reported", []) if r.get("state") == "truncated"]


# ---- GDB's 32-bit truncation: detected when a symbol file is loaded ----------

_pending = {}          # objfile path -> {"main": bool, "offset": int, "probe": (name, real)}
_repairing = [False]


def _truncation_of(path, objfile):
    """(name, gdb_addr, elf_addr) of a probe symbol GDB cut to 32 bits in this
    objfile, None if its addresses are whole (libkbu compares them with the ELF)."""
    args = reported_args(objfile)
    if not args:
        return None
    from . import native
    c = native.Ctx(kernel=path)
    try:
        j = c.run_json(["reloc", "--no-virt", "--no-phys"] + args)
    finally:
        c.close()
    rows = truncated(j)
    if not rows:
        return None
    r = rows[0]
    return r["name"], r["reported"], r["elf"]


def _on_new_objfile(event):
    of = getattr(event, "new_objfile", None)
    if of is None or _repairing[0]:
        return
    try:
        if not of.is_valid() or of.owner is not None or not of.filename \
                or not os.path.isfile(of.filename):
            return
        path = of.filename
        found = _truncation_of(path, of)
    except Exception as e:  # a loader hook must never break GDB's own loading
        if core.debug_enabled():
            gdb.write(traceback.format_exc(), gdb.STDERR)
        gdb.write("kbu: could not check %s for truncated addresses: %s\n"
                  % (getattr(of, "filename", "?"), e), gdb.STDERR)
        return
    if found is None:
        return
    name, cut, real = found
    # The offset add-symbol-file was given, as GDB applied it before cutting.
    off = (cut - (real & 0xffffffff)) & 0xffffffff
    if off >= 1 << 31:
        off -= 1 << 32
    main = path == gdb.current_progspace().filename
    _pending[path] = {"main": main, "offset": off, "probe": (name, real)}
    # Later loads and the target's register layout are right from now on; the
    # symbols already read are reloaded before the next kbu command or prompt
    # (GDB is still inside its own loading here).
    try:
        gdb.execute("set osabi none", False, True)
    except gdb.error:
        pass
    gdb.write("kbu: GDB cut %s's 64-bit addresses to 32 bits (it has no OS ABI for this "
              "kernel: %s at 0x%x, not 0x%x); kbu reloads it with `set osabi none`\n"
              % (path, name, cut, real), gdb.STDERR)


def repair_pending():
    """Reloads every symbol file GDB cut to 32 bits (see _on_new_objfile)."""
    if not _pending or _repairing[0]:
        return
    items = list(_pending.items())
    _pending.clear()
    _repairing[0] = True
    try:
        for path, info in items:
            _repair(path, info)
    finally:
        _repairing[0] = False


def _repair(path, info):
    if info["main"]:
        n, _ = _reload_symbols(path, 0)
    else:
        saved = _save_breakpoints()
        confirm = gdb.parameter("confirm")
        gdb.execute("set confirm off", False, True)
        try:
            gdb.execute("set osabi none", False, True)
            gdb.execute("remove-symbol-file %s" % _quote(path), False, True)
            cmd = "add-symbol-file %s" % _quote(path)
            if info["offset"]:
                cmd += " -o %d" % info["offset"]
            gdb.execute(cmd, False, True)
        finally:
            gdb.execute("set confirm %s" % ("on" if confirm else "off"), False, True)
        n = len(saved)
        _restore_breakpoints(saved)
    name, real = info["probe"]
    now = gdb_sym_addr(name)
    if now is not None and now != real + (info["offset"] if not info["main"] else 0):
        gdb.write("kbu: ! reloaded %s, but GDB still puts %s at 0x%x (the ELF says 0x%x)\n"
                  % (path, name, now, real), gdb.STDERR)
        return
    core.out("kbu: reloaded %s with osabi none: %s at 0x%x%s"
             % (path, name, now if now is not None else real,
                "; %d breakpoint(s) kept" % n if n else ""))


def _before_prompt():
    try:
        repair_pending()
    except (gdb.error, KbuError) as e:
        gdb.write("kbu: %s\n" % e, gdb.STDERR)


gdb.events.new_objfile.connect(_on_new_objfile)
core.before_command(repair_pending)
if hasattr(gdb.events, "before_prompt"):
    gdb.events.before_prompt.connect(_before_prompt)


# ---- kbu reloc ----------------------------------------------------------------

class Reloc(core.KbuCommand):
    """Link / load / runtime map of the kernel: physical aliases, KASLR slide, truncation.

Matches the kernel ELF's code against guest memory to find where it really
runs (virtually and physically), and checks the addresses GDB gives its
symbols (cut to 32 bits? left at the link address?). Before the kernel runs
(the reset vector, paging off) it says so: the link addresses hold until a
loader or the kernel itself picks a runtime slide. `kbu reloc apply` acts on
the answer. The search shows its progress; Ctrl-C stops it."""

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
            j = session.ctx().run_json(["reloc"] + a.options + reported_args())
            if a.json:
                core.out(json.dumps(j, indent=1))
                return
            st, text = session.run(["reloc"] + a.options + reported_args(), False)
            core.out(text)
            if truncated(j):
                core.out("kbu: GDB truncates this kernel's symbols: `kbu reloc apply` reloads "
                         "them with `set osabi none`")
            return
        j = search(a.options)
        if a.json:
            core.out(json.dumps(j, indent=1))
            return
        core.out(_text_of(a.options))
        if truncated(j):
            core.out("kbu: GDB truncates this kernel's symbols: `kbu reloc apply` reloads "
                     "them with `set osabi none`")
        if _state["virt"]:
            core.out("kbu: the kernel runs 0x%x above its link address: `kbu reloc apply` "
                     "reloads the symbols there" % _state["virt"])


def _text_of(options):
    """The text report of a search just made (libkbu renders it again from
    memory; the bridge's page cache makes that second pass cheap)."""
    from . import forward
    c = session.ctx()
    with forward.reading_progress(c, "reloc"):
        st, text = session.run(["reloc"] + list(options) + reported_args(), False)
    return text


# ---- symbol reloads -----------------------------------------------------------

_kbu_bps = {}   # breakpoint number -> AliasGroup, for breakpoints kbu break made


def _user_breakpoints():
    return [b for b in (gdb.breakpoints() or ())
            if b.is_valid() and b.type == gdb.BP_BREAKPOINT and b.visible]


def _save_breakpoints():
    saved = []
    for b in _user_breakpoints():
        if b.number in _kbu_bps or isinstance(b, AliasBreakpoint):
            continue
        saved.append((b.number, b.location, b.condition, b.enabled, b.temporary))
    return saved


def _restore_breakpoints(saved):
    """GDB re-resolves breakpoint specs itself; make sure each still exists."""
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
    return restored


def _reload_symbols(path, offset):
    """symbol-file at offset with osabi none, keeping the user's breakpoints."""
    saved = _save_breakpoints()
    # GDB reuses an objfile it already read (with its truncated addresses) when the
    # same file is loaded again: drop both files first, then load afresh.
    confirm = gdb.parameter("confirm")
    gdb.execute("set confirm off", False, True)
    _repairing[0], was = True, _repairing[0]
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
        _repairing[0] = was
        gdb.execute("set confirm %s" % ("on" if confirm else "off"), False, True)
    restored = _restore_breakpoints(saved)
    return len(saved), restored


def _quote(path):
    return '"%s"' % path.replace("\\", "\\\\").replace('"', '\\"')


def _phase_now():
    """"reset", "no-paging", "paging" or None, from CPU 0 as libkbu reads it."""
    if not core.is_live():
        return None
    try:
        if core.read_reg("rip") == 0xfff0 and not core.read_reg("cr0") & 1:
            return "reset"
    except KbuError:
        return None
    pg = paging_on()
    return None if pg is None else ("paging" if pg else "no-paging")


class RelocApply(core.KbuCommand):
    """Reload the kernel's symbols where it really runs and keep breakpoints working.

With symbols in GDB's file: `set osabi none` (repairs 32-bit truncation) and
`symbol-file FILE -o SLIDE`; GDB re-resolves breakpoints by name. Breakpoints
made by `kbu break` move to the relocated addresses. Without symbols in GDB
(a stripped vmlinux), kbu's own symbols (`set kbu symbols System.map`) plus
the slide serve `kbu break NAME` and `kbu addr`. At the reset vector or with
paging off the ELF's link/load layout is all there is: the slide is decided
once the kernel runs."""

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
        core.need_kernel("kbu reloc apply")
        trunc = []
        early = None
        if a.slide is not None:
            _state["key"] = _key()
            _state["virt"] = core.parse_int(a.slide, "slide")
            _state["how"] = "given"
            trunc = truncated(session.ctx().run_json(["reloc", "--no-virt", "--no-phys"]
                                                     + reported_args()))
        elif not core.is_live():
            # No guest to search: repair what the file alone shows (truncation).
            j = session.ctx().run_json(["reloc", "--no-virt", "--no-phys"] + reported_args())
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
                early = j.get("phase") if j.get("phase") in ("reset", "no-paging") else None
                if early is None:
                    raise KbuError("no runtime slide found: %s" % (_state["how"] or "?"))
        slide = _state["virt"] or 0
        path = gdb.current_progspace().filename or core.loaded_kernel()
        has_syms = path and any(gdb_sym_addr(n) is not None for n in PROBE_NAMES)
        if early is not None:
            where = ("CPU 0 is at its reset vector" if early == "reset"
                     else "paging is off (CR0.PG=0)")
            core.out("kbu: %s: the kernel's symbols are at the ELF's link addresses (load "
                     "addresses: `kbu reloc`); a runtime slide (KASLR) is decided once the "
                     "kernel runs: `kbu reloc apply` again then (kbu break follows it "
                     "by itself)" % where)
        if path and trunc and has_syms and path in _pending:
            repair_pending()
        elif path and (slide or trunc) and has_syms:
            if path == gdb.current_progspace().filename:
                n, restored = _reload_symbols(path, slide)
            else:
                _pending[path] = {"main": False, "offset": slide, "probe": (
                    trunc[0]["name"], trunc[0]["elf"]) if trunc else (PROBE_NAMES[0], 0)}
                n = 0
                repair_pending()
            core.out("kbu: reloaded %s at offset 0x%x%s; %d breakpoint(s) kept"
                     % (path, slide, " with osabi none (GDB had cut symbols to 32 bits)"
                        if trunc else "", n))
        elif path and not has_syms:
            core.out("kbu: %s has no symbols GDB can use: kbu break NAME and kbu addr use "
                     "libkbu's symbols (%s) + slide 0x%x"
                     % (path, core.get_setting("symbols") or "ELF .symtab", slide))
        elif early is None:
            core.out("kbu: the kernel runs at its link address; nothing to reload")
        moved = settle_all(force=True)
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
            "given": addr, "symbol_given": name is not None}


def resolve_link(link, name=None):
    """resolve() for a known link address (an entry from the OS profile, a
    reference libkbu found in the text)."""
    vs, ps = slides()
    pl = v2p(link)
    return {"name": name or lib_symbolize(link), "link": link, "runtime": link + vs,
            "phys_link": pl, "phys_runtime": pl + ps if pl is not None else None,
            "given": None, "symbol_given": True}


def link_of(addr):
    """The link address of a runtime address kbu stopped at, physical or virtual."""
    vs, ps = slides()
    if addr < 1 << 32:
        lv = p2v(addr - ps)
        if lv is not None:
            return lv
    return (addr - vs) & 0xffffffffffffffff


def _gdb_offset():
    """How far GDB's symbols sit above the ELF's link addresses (a symbol file
    loaded with an offset, `kbu reloc apply`), from a symbol both know; 0 if none."""
    for name in PROBE_NAMES:
        g = gdb_sym_addr(name)
        if g is None:
            continue
        try:
            return g - lib_sym(name)
        except KbuError:
            continue
    return 0


def resolve_all(spec):
    """resolve(spec) for each place the code is: one for a symbol of the ELF or
    map or an address; one per location GDB's debug information gives a name
    the symbol table does not have (a static function inlined into its callers:
    FreeBSD's mptable_walk_table has 5 to 7)."""
    try:
        return [resolve(spec)]
    except KbuError as e:
        first = e
    text = spec[1:] if spec.startswith("*") else spec
    try:
        _, sals = gdb.decode_line(text)
    except gdb.error:
        raise first
    off = _gdb_offset()
    vs, ps = slides()
    out = []
    for sal in sals or ():
        if not sal.pc:
            continue
        link = (sal.pc - off) & 0xffffffffffffffff
        pl = v2p(link)
        host = lib_symbolize(link)
        out.append({"name": text, "link": link, "runtime": link + vs, "phys_link": pl,
                    "phys_runtime": pl + ps if pl is not None else None, "given": None,
                    "symbol_given": True,
                    "where": host,
                    "file": sal.symtab.filename if sal.symtab and sal.line else None,
                    "line": sal.line if sal.symtab and sal.line else None})
    if not out:
        raise first
    out.sort(key=lambda r: r["link"])
    return out


def mapped(vaddr):
    try:
        memory.bridge.read(memory.VIRT, vaddr, 1)
        return True
    except KbuError:
        return False


# ---- breakpoints at every alias ---------------------------------------------------

KIND_TEXT = {"low": "physical", "high": "virtual", "candidate": "virtual"}


class AliasBreakpoint(gdb.Breakpoint):
    """One alias of an AliasGroup: a physical (low) or virtual (high) address,
    or a candidate virtual address while the runtime slide is not known."""

    def __init__(self, group, addr, kind):
        super().__init__("*0x%x" % addr, gdb.BP_BREAKPOINT, internal=kind == "candidate")
        self.group, self.addr, self.kind = group, addr, kind

    def stop(self):
        try:
            with core.in_stop_handler():
                return self.group.tripped(self)
        except Exception as e:  # never a traceback out of a stop handler
            if core.debug_enabled():
                gdb.write(traceback.format_exc(), gdb.STDERR)
            gdb.write("%s: at 0x%x: %s\n" % (self.group.who, self.addr, e), gdb.STDERR)
            return True


class AliasGroup:
    """Every alias of one link address that can execute, armed as breakpoints:
    the physical one (paging off), the virtual one (link + slide), and while the
    slide is not known a candidate at every slide libkbu's reloc would try.

    on_trip(group, bp) decides whether the guest stops (default: it does) and
    may print what it saw; `who` prefixes kbu's lines ("kbu break")."""

    def __init__(self, label, link, who="kbu break", on_trip=None, announce=True, tag=None):
        self.label, self.link, self.who = label, link, who
        self.on_trip, self.announce, self.tag = on_trip, announce, tag
        self.bps = []
        self.assumed = None     # the slide the high alias was placed for
        self.settled = False    # True: the high alias is where the kernel runs
        self.found_slide = None  # a candidate proved this slide (cleaned up at the stop)
        self.last = None        # the alias that tripped last

    # -- arming -------------------------------------------------------------------
    def add(self, addr, kind):
        bp = AliasBreakpoint(self, addr & 0xffffffffffffffff, kind)
        self.bps.append(bp)
        if kind != "candidate":
            _kbu_bps[bp.number] = self
        return bp

    def visible(self):
        return [b for b in self.bps if b.is_valid() and b.kind != "candidate"]

    def candidates(self):
        return [b for b in self.bps if b.is_valid() and b.kind == "candidate"]

    def delete(self):
        for b in self.bps:
            _kbu_bps.pop(getattr(b, "number", None), None)
            try:
                if b.is_valid():
                    b.delete()
            except (RuntimeError, gdb.error):
                pass
        self.bps = []
        if self in _groups:
            _groups.remove(self)

    # -- a trip ---------------------------------------------------------------------
    def tripped(self, bp):
        if bp.kind == "candidate":
            slide = (bp.addr - self.link) & 0xffffffffffffffff
            if slide >= 1 << 63:
                slide -= 1 << 64
            if slide_known():
                ok = slides()[0] == slide
            else:
                ok = verify_slide(slide)
            if not ok:
                return False   # other code that happens to sit at this candidate
            self.found_slide = slide
        self.last = bp
        if self.announce:
            why = ""
            if bp.kind == "candidate":
                why = " (runtime slide 0x%x, found now)" % self.found_slide
            gdb.write("%s: %s tripped at its %s alias 0x%x%s\n"
                      % (self.who, self.label, KIND_TEXT[bp.kind], bp.addr, why))
        if self.on_trip is not None:
            return bool(self.on_trip(self, bp))
        return True

    # -- at a stop: follow the slide ----------------------------------------------------
    def settle(self, force=False):
        """Moves the high alias to link + the known slide and drops the candidates.
        Returns True when it moved something."""
        if self.settled and not force:
            return False
        slide = self.found_slide
        if slide is None and slide_known():
            slide = slides()[0]
        if slide is None:
            return False
        moved = False
        target = (self.link + slide) & 0xffffffffffffffff
        cands = self.candidates()
        highs = [b for b in self.visible() if b.kind == "high"]
        # A kernel a loader slid (the candidates were needed) was placed
        # physically by that loader too: the ELF's load address is not its own.
        lows = [b for b in self.visible() if b.kind == "low"] if cands else []
        if cands or not any(b.addr == target for b in highs):
            for b in cands + lows + [h for h in highs if h.addr != target]:
                _kbu_bps.pop(b.number, None)
                try:
                    b.delete()
                except (RuntimeError, gdb.error):
                    pass
            self.bps = [b for b in self.bps if b.is_valid()]
            if not any(b.addr == target for b in self.visible() if b.kind == "high"):
                nb = self.add(target, "high")
                if self.announce:
                    gdb.write("%s: %s follows the runtime slide 0x%x: virtual 0x%x -> "
                              "breakpoint %d\n" % (self.who, self.label, slide, target,
                                                   nb.number))
            moved = True
        self.assumed = slide
        self.found_slide = None
        self.settled = True
        return moved


_groups = []


def settle_all(force=False):
    """At a stop: once the slide is known (found by a candidate, or searched now
    that paging is on), every group's high alias moves there."""
    pending = [g for g in _groups if not g.settled or force]
    if not pending:
        return 0
    if not any(g.found_slide is not None for g in pending):
        ensure_slides()
    moved = 0
    for g in pending:
        if g.found_slide is not None or slide_known():
            moved += bool(g.settle(force))
    return moved


def _on_stop(event):
    if not _groups:
        return
    try:
        for g in list(_groups):
            g.bps = [b for b in g.bps if b.is_valid()]
            if not g.bps:
                _groups.remove(g)
        settle_all()
    except Exception as e:
        if core.debug_enabled():
            gdb.write(traceback.format_exc(), gdb.STDERR)
        gdb.write("kbu break: could not follow the runtime slide: %s\n" % e, gdb.STDERR)


def _on_exit(*unused):
    for g in list(_groups):
        g.delete()
    _groups.clear()
    _kbu_bps.clear()


def _on_deleted(bp):
    g = _kbu_bps.pop(getattr(bp, "number", None), None)
    if g is not None and not [b for b in g.visible() if b is not bp]:
        # The user deleted the last alias they can see: the candidates go too.
        for c in g.candidates():
            try:
                c.delete()
            except (RuntimeError, gdb.error):
                pass
        if g in _groups:
            _groups.remove(g)


gdb.events.stop.connect(_on_stop)
gdb.events.exited.connect(_on_exit)
gdb.events.breakpoint_deleted.connect(_on_deleted)


def plan(r, mode=None):
    """Which aliases of resolve()'s r to arm: (kinds, why, decided).

    kinds is a list of "low", "high", "candidates". mode: "low", "high", "both"
    or None (kbu decides: every alias that can execute until the phase tells)."""
    if mode == "low":
        return ["low"], "asked", True
    if mode == "high":
        return ["high"], "asked", True
    if mode == "both":
        return ["low", "high"], "asked", True
    if not core.is_live():
        return ["low", "high"], "no live target to tell the phase", False
    phase = _phase_now()
    if phase == "paging" and slide_known():
        if mapped(r["runtime"]):
            return ["high"], "the high address is mapped", True
        return ["low", "high"], "the high address is not mapped yet, whichever runs trips", \
            False
    if phase is None:
        return ["low", "high"], "the phase is unknown, whichever runs trips", False
    # Paging off, or no slide found yet: the virtual address is not decided.
    where = {"reset": "CPU 0 is at its reset vector",
             "no-paging": "paging is off (CR0.PG=0)",
             "paging": "no runtime slide found yet"}[phase]
    if r.get("symbol_given") and not _image_placed():
        return (["low", "high", "candidates"],
                "%s and the kernel is not in memory yet: a loader may slide it (KASLR)"
                % where, False)
    return ["low", "high"], "%s, whichever runs trips" % where, False


def _image_placed():
    """True when the kernel's code already sits at its physical load address, so
    no loader will move it (a PVH ELF, a kernel the VMM loaded); False when it is
    not in memory yet or was placed elsewhere (a decompressor chose where)."""
    if _state["key"] != _key() or _state["phys_found"] is None:
        try:
            search(reported=False)
        except KbuError:
            return True
    return bool(_state.get("phys_found")) and not _state.get("phys")


def arm(r, label, mode=None, who="kbu break", on_trip=None, announce=True, tag=None):
    """Arms an AliasGroup for resolve()'s r. Returns (group, lines, plan_dict)."""
    if mode is None and core.is_live():
        ensure_slides()
        # The slide may be known only now: the runtime aliases follow it.
        vs, ps = slides()
        if r.get("given") is None or r["given"] >= 1 << 32:
            r = dict(r, runtime=r["link"] + vs,
                     phys_runtime=r["phys_link"] + ps if r.get("phys_link") is not None
                     else None)
    kinds, why, decided = plan(r, mode)
    g = AliasGroup(label, r["link"], who=who, on_trip=on_trip, announce=announce, tag=tag)
    vs = slides()[0] if slide_known() else 0
    g.assumed = vs if slide_known() else None
    aliases = []
    try:
        if "low" in kinds:
            if r["phys_runtime"] is None:
                if kinds == ["low"]:
                    raise KbuError("%s (0x%x) is in no PT_LOAD segment: no physical alias"
                                   % (label, r["link"]))
            else:
                b = g.add(r["phys_runtime"], "low")
                aliases.append({"kind": "low", "address": b.addr, "breakpoint": b.number})
        if "high" in kinds:
            addr = r["runtime"] if r.get("given") is None or r["given"] >= 1 << 32 \
                else r["link"] + vs
            b = g.add(addr, "high")
            aliases.append({"kind": "high", "address": b.addr, "breakpoint": b.number})
        if "candidates" in kinds:
            n = 0
            first = last = None
            for k in range(1, SLIDE_RANGE // SLIDE_ALIGN):
                a = r["link"] + k * SLIDE_ALIGN
                if a >= 1 << 64:
                    break
                b = g.add(a, "candidate")
                first = a if first is None else first
                last = a
                n += 1
            aliases.append({"kind": "candidates", "count": n, "first": first, "last": last,
                            "step": SLIDE_ALIGN})
    except (KeyboardInterrupt, Exception):
        g.delete()
        raise
    g.settled = decided
    _groups.append(g)
    return g, {"spec": label, "symbol": r["name"], "link": r["link"], "aliases": aliases,
               "why": why, "decided": decided}


def alias_text(p):
    """'physical 0x203427 (breakpoint 1) and virtual 0xffffffff80203427 (breakpoint 2)'."""
    parts = []
    for a in p["aliases"]:
        if a["kind"] == "candidates":
            parts.append("%d candidate virtual addresses 0x%x..0x%x, one per 0x%x slide "
                         "(internal breakpoints)" % (a["count"], a["first"], a["last"],
                                                      a["step"]))
        else:
            parts.append("%s 0x%x (breakpoint %d)" % (KIND_TEXT[a["kind"]], a["address"],
                                                       a["breakpoint"]))
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


class Break(core.KbuCommand):
    """Break on SYMBOL or *ADDR wherever that code executes: physical or virtual alias.

By default kbu arms the alias that will run once the phase of the boot
decides it (virtual once paging is on and the high address is mapped),
and until then every alias that can execute: the physical one (paging
off), the virtual one, and while the runtime slide (KASLR) is not known a
candidate at every 2 MiB slide up to 1 GiB. A trip says which alias ran;
at the next stop the other aliases follow the slide or go. --low, --high
and --both choose. Symbols come from the kernel ELF / symbol map via
libkbu, so 64-bit addresses are right even when GDB truncates them."""

    name = "break"
    completer = gdb.COMPLETE_SYMBOL
    is_prefix = True   # `kbu break assert` and other kbu breakpoints live under it

    def parser(self, p):
        p.add_argument("spec", metavar="SYMBOL|*ADDR")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--low", action="store_true", help="the physical alias only")
        g.add_argument("--high", action="store_true",
                       help="the virtual (runtime) address only")
        g.add_argument("--both", action="store_true", help="both: trips in either phase")
        p.add_argument("--json", action="store_true", help="what was armed, as JSON")

    def run(self, a):
        core.need_kernel("kbu break")
        if core.is_live():
            ensure_slides()
        rs = resolve_all(a.spec)
        mode = "low" if a.low else "high" if a.high else "both" if a.both else None
        plans = []
        for r in rs:
            label = r["name"] or a.spec
            if len(rs) > 1:
                label = "%s (in %s)" % (label, (r.get("where") or "?").split("+")[0])
            g, p = arm(r, label, mode)
            p["where"] = r.get("where")
            p["file"] = r.get("file")
            p["line"] = r.get("line")
            plans.append(p)
        if a.json:
            core.out(json.dumps(plans[0] if len(plans) == 1 else {"spec": a.spec,
                                                                   "locations": plans}))
            return
        if len(rs) == 1:
            core.out("kbu break: %s at %s: %s" % (plans[0]["spec"], alias_text(plans[0]),
                                                  plans[0]["why"]))
            return
        core.out("kbu break: %s has %d locations (inlined; from GDB's debug information): %s"
                 % (a.spec, len(rs), plans[0]["why"]))
        for p in plans:
            core.out("kbu break:   in %s: %s" % ((p["where"] or "?").split("+")[0],
                                                 alias_text(p)))


class Addr(core.KbuCommand):
    """Print every alias of an address or symbol: link, runtime, physical, truncated."""

    name = "addr"
    completer = gdb.COMPLETE_SYMBOL

    def parser(self, p):
        p.add_argument("spec", metavar="SYMBOL|ADDR")
        p.add_argument("--json", action="store_true", help="the aliases as JSON")

    def run(self, a):
        core.need_kernel("kbu addr")
        ensure_slides()
        r = resolve(a.spec)
        vs, ps = slides()
        j = {"symbol": r["name"], "link": r["link"], "runtime": r["runtime"],
             "slide": vs if slide_known() else None, "physical_load": r["phys_link"],
             "physical_runtime": r["phys_runtime"], "physical_slide": ps,
             "truncated": r["link"] & 0xffffffff if r["link"] >= 1 << 32 else None,
             "gdb": None, "gdb_state": None, "mapped": None}
        if r["name"] and "+" not in r["name"]:
            g = gdb_sym_addr(r["name"])
            if g is not None:
                j["gdb"] = g
                j["gdb_state"] = "ok" if g == r["runtime"] else \
                    "truncated" if g == r["link"] & 0xffffffff else \
                    "link_address" if g == r["link"] else "differs"
        if core.is_live():
            j["mapped"] = mapped(r["runtime"])
        if a.json:
            core.out(json.dumps(j))
            return
        rows = [("symbol", r["name"] or "-"),
                ("link (virtual)", "0x%016x" % r["link"]),
                ("runtime (virtual)", "0x%016x%s" % (r["runtime"], "  (slide 0x%x)" % vs
                                                      if vs else "")),
                ("physical (load)", "0x%016x" % r["phys_link"] if r["phys_link"] is not None
                 else "- (in no PT_LOAD segment)"),
                ("physical (runtime)", "0x%016x%s" % (r["phys_runtime"], "  (moved 0x%x)" % ps
                                                       if ps else "")
                 if r["phys_runtime"] is not None else "-"),
                ("cut to 32 bits", "0x%08x" % j["truncated"] if j["truncated"] is not None
                 else "-")]
        if j["gdb"] is not None:
            verdict = {"ok": "ok", "truncated": "TRUNCATED (kbu reloc apply)",
                       "link_address": "at the link address (kbu reloc apply)",
                       "differs": "differs"}[j["gdb_state"]]
            rows.append(("GDB says", "0x%016x  %s" % (j["gdb"], verdict)))
        if j["mapped"] is not None:
            rows.append(("mapped now", "yes" if j["mapped"] else "no"))
        w = max(len(k) for k, _ in rows)
        for k, v in rows:
            core.out("%-*s  %s" % (w + 1, k + ":", v))


class Load(core.KbuCommand):
    """Load a kernel ELF into GDB the way kbu needs: `set osabi none`, file, checks.

Debian's GDB has no FreeBSD or NetBSD OS ABI: without `set osabi none` it
cuts their 64-bit symbols to 32 bits and rejects QEMU's registers. (kbu
also repairs a kernel loaded with plain `file` or `add-symbol-file`.)"""

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
