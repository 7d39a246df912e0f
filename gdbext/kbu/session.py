"""The libkbu context of this GDB session, rebuilt when its inputs change.

Inputs: the kernel ELF (`set kbu kernel` or GDB's symbol file), the symbol
map (`set kbu symbols`), the OS (`set kbu os`) and the memory: the GDB bridge
when a live target is attached; the dump itself, read by libkbu, when GDB's
own core target has one open (GDB would answer kernel addresses from the ELF
file); or, for one command, the CLI's own `--core FILE`, `--phys FILE[@BASE]`
or `--gdb STUB` (`kbu mptable --core dump.core` works in GDB as in a shell).
"""
import json

import gdb

from . import core, memory, native, settings
from .core import KbuError

_state = {"key": None, "ctx": None}

# The CLI's memory options: a command given one reads that source instead.
MEMORY_OPTIONS = ("--core", "--phys", "--gdb")


def drop(*unused):
    ctx = _state["ctx"]
    _state["key"] = _state["ctx"] = None
    if ctx is not None:
        ctx.close()


_OPEN = {"--core": "core", "--phys": "phys", "--gdb": "gdb"}


def _new_ctx(kernel, symbols, os_name, live, dump):
    if dump:
        try:
            return native.Ctx(kernel=kernel, symbols=symbols, os_name=os_name, core=dump)
        except KbuError as e:
            raise type(e)("GDB's core target has %s open, which libkbu cannot read (%s); "
                          "GDB itself answers kernel addresses from the ELF file there"
                          % (dump, e)) from None
    return native.Ctx(kernel=kernel, symbols=symbols, os_name=os_name,
                      source=memory.GdbSource() if live else None)


def _connection():
    """Which connection the selected inferior uses (a new `target remote` is
    another stub, with its own physical mode)."""
    try:
        inf = gdb.selected_inferior()
        return (inf.num, getattr(inf, "connection_num", None), inf.pid)
    except gdb.error:
        return None


def ctx(live=None):
    """The current native.Ctx (live: None = use the target if attached)."""
    dump = memory.core_file()
    if dump == "?":
        raise KbuError("GDB's core target does not say which file it read: "
                       + memory.CORE_REFUSAL % "DUMP")
    if live is None:
        live = core.is_live() and dump is None
    key = (core.kernel_path(), settings.get("symbols"), settings.get("os") or "auto",
           bool(live), dump, id(native.lib()), _connection() if live else None)
    if _state["key"] != key:
        drop()
        _state["ctx"] = _new_ctx(key[0], key[1], key[2], live, dump)
        _state["key"] = key
    return _state["ctx"]


def split_memory_option(argv):
    """(argv without the CLI's memory options, (option, value) or None)."""
    rest, found = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i:]
            break
        name, eq, value = a.partition("=")
        if name in MEMORY_OPTIONS:
            if not eq:
                if i + 1 >= len(argv):
                    raise native.InputError("option '%s' needs a value" % name)
                i += 1
                value = argv[i]
            found.append((name, value))
        else:
            rest.append(a)
        i += 1
    if len(found) > 1:
        raise native.InputError("give one memory source: --core, --phys or --gdb")
    return rest, (found[0] if found else None)


def _escaped(e):
    """A libkbu error made safe for the terminal (its message may quote guest
    bytes), of the same class."""
    text = str(e)
    safe = "".join(ch if 0x20 <= ord(ch) < 0x7f else "\\x%02x" % (ord(ch) & 0xff)
                   for ch in text)
    return e if safe == text else type(e)(safe)


def run(argv, as_json=False):
    """Runs libkbu command argv: with the CLI's --core/--phys/--gdb in argv, on
    that source; else on the session's context. (status, text)."""
    argv, source = split_memory_option(list(argv))
    _state["phys_how"] = None
    try:
        if source is None:
            c = ctx()
            try:
                return c.run(argv, as_json)
            finally:
                _state["phys_how"] = c.phys_how()
        c = native.Ctx(kernel=core.kernel_path(), symbols=settings.get("symbols"),
                       os_name=settings.get("os") or "auto", **{_OPEN[source[0]]: source[1]})
        try:
            return c.run(argv, as_json)
        finally:
            _state["phys_how"] = c.phys_how()
            c.close()
    except KbuError as e:
        raise _escaped(e) from None


def phys_how():
    """After run(): how a source without physical reads read physical memory
    (through the guest's direct map), or why it could not; None if not needed."""
    return _state.get("phys_how")


def run_json(argv):
    st, text = run(argv, as_json=True)
    try:
        return json.loads(text)
    except ValueError:
        raise native.FormatError("%s: libkbu returned no JSON" % argv[0])


def _flush_native():
    c = _state["ctx"]
    if c is not None:
        c.flush()


memory.bridge.listeners.append(_flush_native)
gdb.events.new_objfile.connect(drop)
if hasattr(gdb.events, "clear_objfiles"):
    gdb.events.clear_objfiles.connect(drop)
gdb.events.exited.connect(drop)


@settings.on_change
def _setting_changed(name):
    if name == "libpath":
        native.forget_lib()
    drop()


_bare = {}


def bare():
    """A context without kernel or memory, for pure decoders (cpuid-decode)."""
    key = id(native.lib())
    if key not in _bare:
        _bare.clear()
        _bare[key] = native.Ctx()
    return _bare[key]
