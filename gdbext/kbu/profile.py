"""The OS profile inside GDB: `set kbu profile FILE`, and helpers the watch,
assert, message-break and dmesg modules share.

The profile itself lives in libkbu (`kbu os --json`): the same roles and
layouts as the CLI, from the built-in profiles, `set kbu os`, or a user's INI
file. Nothing here knows an OS by name.
"""
import gdb

from . import core, session, settings
from .core import KbuError

_cache = {"key": None, "profile": None}


class ProfileParam(gdb.Parameter):
    """An OS profile file (INI, the keys of profiles/*.ini) kbu uses instead of a built-in one."""

    set_doc = "Set the OS profile file kbu uses (empty: built-in, chosen by `set kbu os`)."
    show_doc = "Show the OS profile file kbu uses."

    def __init__(self):
        super().__init__("kbu profile", gdb.COMMAND_DATA, gdb.PARAM_OPTIONAL_FILENAME)

    def get_set_string(self):
        _cache["key"] = None
        return ""

    def get_show_string(self, svalue):
        return "kbu profile: %s" % (svalue or "(built-in, by `set kbu os`)")


ProfileParam()


def profile_args():
    """The options that pass `set kbu profile` on to a libkbu command."""
    path = settings.get("profile")
    return ["--profile", path] if path else []


def drop(*unused):
    _cache["key"] = _cache["profile"] = None


gdb.events.new_objfile.connect(drop)
settings.on_change(lambda name: drop())


def get():
    """The profile as a dict: name, roles{}, symbols{name: addr}, layouts{}."""
    key = (core.kernel_path(), settings.get("symbols"), settings.get("os"),
           settings.get("profile"))
    if _cache["key"] != key or _cache["profile"] is None:
        prof = session.ctx().run_json(["os"] + profile_args())
        prof["addr"] = {}
        for s in prof.get("symbols", []):
            if s.get("addr") is not None:
                prof["addr"][s["name"]] = s["addr"]
        fields = {}
        for lname, lay in prof.get("layouts", {}).items():
            fields[lname] = {f["key"]: (f["offset"], f["size"], f["cname"])
                             for f in lay.get("fields", [])}
        prof["fields"] = fields
        _cache["key"], _cache["profile"] = key, prof
    return _cache["profile"]


def role(prof, name):
    v = prof.get("roles", {}).get(name) or ""
    return v.strip()


def role_words(prof, name):
    return role(prof, name).split()


def slide():
    """The kernel's runtime virtual slide (KASLR) as kbu reloc found it, 0 if none.
    Searched once when the guest runs paged and no slide is known yet."""
    try:
        from . import reloc
        if core.is_live():
            reloc.ensure_slides()
        return reloc.slides()[0] or 0
    except Exception:
        return 0


def runtime(addr):
    """A link address where it runs now (slide applied)."""
    return (addr + slide()) & 0xffffffffffffffff


def symbol_addr(prof, name):
    """Link address of a profile symbol: libkbu's symbols (ELF and map), else GDB's."""
    a = prof["addr"].get(name)
    if a is not None:
        return a
    return lookup(name)


def lookup(name):
    """Address of any symbol: libkbu's symbol table (ELF + System.map), else GDB's."""
    try:
        res = session.ctx().run_json(["sym", name])
        for r in res.get("results", []):
            if r.get("address") is not None and r.get("query") == name:
                return r["address"]
    except KbuError:
        pass
    try:
        sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
        if sym is not None:
            return int(sym.value().address)
    except (gdb.error, AttributeError, TypeError):
        pass
    try:
        m = gdb.lookup_minimal_symbol(name) if hasattr(gdb, "lookup_minimal_symbol") else None
        if m is not None:
            return int(m.value().address)
    except gdb.error:
        pass
    return None


_dwarf_cache = {}


def _dwarf_field(struct, cname):
    """(offset, size) of struct.cname (dotted for nested members) from GDB's debug
    info, or None when GDB has no such type."""
    key = (core.kernel_path(), struct, cname)
    if key in _dwarf_cache:
        return _dwarf_cache[key]
    res = None
    try:
        t = gdb.lookup_type("struct " + struct)
        off = 0
        for part in cname.split("."):
            f = next((f for f in t.fields() if f.name == part), None)
            if f is None or f.bitpos is None:
                raise LookupError(part)
            off += f.bitpos // 8
            t = f.type.strip_typedefs()
        res = (off, t.sizeof)
    except (gdb.error, LookupError, RuntimeError, AttributeError):
        res = None
    _dwarf_cache[key] = res
    return res


def field(prof, layout, key):
    """(offset, size, cname) of a layout field: from DWARF when GDB has the
    struct, else the profile's known layout; None if neither has it."""
    known = prof.get("fields", {}).get(layout, {}).get(key)
    struct = prof.get("layouts", {}).get(layout, {}).get("struct")
    if known is None or not struct or not known[2]:
        return known
    d = _dwarf_field(struct, known[2])
    if d is None:
        return known
    if (d[0], d[1]) != (known[0], known[1] or d[1]) and (struct, key) not in _warned:
        _warned.add((struct, key))
        gdb.write("kbu: DWARF puts %s.%s at offset %d (size %d), the %s profile at %d: "
                  "using DWARF\n" % (struct, known[2], d[0], d[1], prof.get("name"), known[0]),
                  gdb.STDERR)
    return (d[0], d[1], known[2])


_warned = set()


def is_code(addr):
    """True if libkbu's symbols put runtime addr inside a function (nm type T/t/W/w)."""
    addr = (addr - slide()) & 0xffffffffffffffff
    try:
        res = session.ctx().run_json(["sym", "0x%x" % addr])
        for r in res.get("results", []):
            if r.get("symbol"):
                return (r.get("type") or "") in "TtWw" and \
                    (not r.get("size") or r.get("offset", 0) < r["size"])
    except KbuError:
        pass
    return False


def symbolize(addr):
    """'func+0xoff' for a runtime address: libkbu's symbols first (System.map,
    through the relocation slide), then GDB."""
    link = (addr - slide()) & 0xffffffffffffffff
    try:
        res = session.ctx().run_json(["sym", "0x%x" % link])
        for r in res.get("results", []):
            if r.get("symbol"):
                return r["symbol"] + ("+0x%x" % r["offset"] if r.get("offset") else "")
    except KbuError:
        pass
    try:
        # GDB's own output: Python has no API for "the minimal symbol at an address".
        text = core.quiet("info symbol 0x%x" % addr).strip()
        if text and not text.startswith("No symbol"):
            name = text.split(" in section")[0]
            return name.replace(" + ", "+0x") if " + " in name else name
    except gdb.error:
        pass
    return "0x%x" % addr


def source_line(addr):
    """'file.c:123' where debug info has the address, else ''."""
    if addr <= 0:
        return ""
    try:
        sal = gdb.find_pc_line(addr)
        if sal and sal.symtab and sal.line:
            return "%s:%d" % (sal.symtab.filename, sal.line)
    except (gdb.error, ValueError, OverflowError, TypeError):
        pass
    return ""


def inlined_at(addr):
    """Functions inlined at a runtime address, innermost first (['mptable_walk_table']
    when the walker is inlined into mptable_probe_cpus), from DWARF; [] if none or no
    debug information. A symbol table names only the function they are inlined into."""
    names = []
    try:
        block = gdb.block_for_pc(addr)
    except (gdb.error, RuntimeError, OverflowError, ValueError):
        return names
    while block is not None and block.function is None:
        block = block.superblock
    # Each inlined subroutine is a block whose function is the inlined one, nested
    # inside the block of the function it was inlined into.
    while block is not None and block.function is not None:
        parent = block.superblock
        while parent is not None and parent.function is None:
            parent = parent.superblock
        if parent is None or parent.function is None or parent.function == block.function:
            break
        names.append(block.function.name)
        block = parent
    return names


def function_text(addr):
    """'func' or 'inlined (inlined in func)' for a code address."""
    outer = symbolize(addr).split("+")[0]
    inner = inlined_at(addr)
    if inner:
        return "%s (inlined in %s)" % (inner[0], outer)
    return outer


def inferior():
    return gdb.selected_inferior()


def read_bytes(addr, n):
    """Guest bytes at a kernel virtual address; through the kernel's physical
    load address when the virtual one is not mapped (paging still off)."""
    try:
        return bytes(inferior().read_memory(addr, n))
    except (gdb.MemoryError, gdb.error) as e:
        first = e
    try:
        from . import memory, reloc
        pa = reloc.v2p((addr - (reloc.slides()[0] or 0)) & 0xffffffffffffffff)
        if pa is not None:
            return memory.bridge.read(memory.PHYS, pa, n)
    except Exception:
        pass
    raise KbuError("cannot read %d bytes at 0x%x: %s" % (n, addr, first))


def read_uint(addr, size):
    return int.from_bytes(read_bytes(addr, size), "little")


def read_int(addr, size):
    return int.from_bytes(read_bytes(addr, size), "little", signed=True)


def read_cstring(addr, limit=256):
    """The NUL-terminated string at addr (at most limit bytes), escaped for printing."""
    if not addr:
        return "(null)"
    out = bytearray()
    a = addr
    while len(out) < limit:
        chunk = min(64, limit - len(out), 4096 - (a & 4095))
        try:
            data = read_bytes(a, chunk)
        except KbuError:
            if not out:
                return "<unreadable 0x%x>" % addr
            break
        z = data.find(b"\0")
        if z >= 0:
            out += data[:z]
            return out.decode("utf-8", "replace")
        out += data
        a += chunk
    return out.decode("utf-8", "replace") + "..."


def ensure_prefix(name):
    """Makes `name` (e.g. "kbu break") a prefix command if nothing defines it."""
    sub = name.split(None, 1)[1] if " " in name else name
    if sub in core.commands() or name in _prefixes:
        return

    class _Prefix(gdb.Command):
        def __init__(self):
            self.__doc__ = "Breakpoints kbu places for you: `help %s` lists them." % name
            super().__init__(name, gdb.COMMAND_BREAKPOINTS, gdb.COMPLETE_COMMAND, True)

    _prefixes[name] = _Prefix()


_prefixes = {}


class OsCmd(core.KbuCommand):
    """Show the OS profile kbu uses: each role's symbol with its address, and the layouts.

The profile is `set kbu profile FILE` if set, else the built-in one `set kbu
os` names, else the one whose detect rule matches the kernel's symbols."""

    name = "os"

    def parser(self, p):
        p.add_argument("--json", action="store_true", help="the report as JSON")

    def run(self, args):
        st, text = session.ctx().run(["os"] + profile_args(), as_json=args.json)
        core.out(text)
