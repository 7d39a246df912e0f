"""The libkbu context of this GDB session, rebuilt when its inputs change.

Inputs: the kernel ELF (`set kbu kernel` or GDB's symbol file), the symbol
map (`set kbu symbols`), the OS (`set kbu os`) and the memory: the GDB bridge
when a live target is attached; the dump itself, read by libkbu, when GDB's
own core target has one open (GDB would answer kernel addresses from the ELF
file); or, for one command, the CLI's own `--core FILE`, `--phys FILE[@BASE]`
or `--gdb STUB` (`kbu mptable --core dump.core` works in GDB as in a shell).
"""
import ctypes

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


def _declare(L):
    P, S = ctypes.c_void_p, ctypes.c_char_p
    E = ctypes.POINTER(native.Err)
    for name, res, args in (("kbu_mem_open_core", P, [S, E]),
                            ("kbu_mem_open_phys_spec", P, [S, E]),
                            ("kbu_mem_open_gdb", P, [S, E]),
                            ("kbu_mem_learn_kernel", None, [P, P])):
        f = getattr(L, name)
        f.restype, f.argtypes = res, args


def attach_memory(c, option, spec):
    """Gives native.Ctx c the memory source the CLI option names (a KbuError if
    it cannot be opened)."""
    L = native.lib()
    _declare(L)
    opener = {"--core": L.kbu_mem_open_core, "--phys": L.kbu_mem_open_phys_spec,
              "--gdb": L.kbu_mem_open_gdb}[option]
    err = native.Err()
    mem = opener(spec.encode(), ctypes.byref(err))
    if not mem:
        raise KbuError(err.text())
    raw = c._ctx  # the struct kbu_ctx this context owns
    L.kbu_ctx_set_mem(raw, mem)
    kernel = ctypes.cast(raw, ctypes.POINTER(native.CtxStruct)).contents.kernel
    if kernel:
        L.kbu_mem_learn_kernel(mem, kernel)


def _new_ctx(kernel, symbols, os_name, live, dump):
    if dump:
        c = native.Ctx(kernel=kernel, symbols=symbols, os_name=os_name)
        try:
            attach_memory(c, "--core", dump)
        except KbuError as e:
            c.close()
            raise KbuError("GDB's core target has %s open, which libkbu cannot read (%s); "
                           "GDB itself answers kernel addresses from the ELF file there"
                           % (dump, e))
        return c
    c = native.Ctx(kernel=kernel, symbols=symbols, os_name=os_name,
                   source=memory.GdbSource() if live else None)
    if live and c._mem:
        # On a stub with no physical mode, libkbu proves a direct map with the
        # kernel's own bytes before it reads physical memory through it.
        L = native.lib()
        _declare(L)
        kernel_ptr = ctypes.cast(c._ctx, ctypes.POINTER(native.CtxStruct)).contents.kernel
        if kernel_ptr:
            L.kbu_mem_learn_kernel(c._mem, kernel_ptr)
    return c


def ctx(live=None):
    """The current native.Ctx (live: None = use the target if attached)."""
    dump = memory.core_file()
    if dump == "?":
        raise KbuError("GDB's core target does not say which file it read: "
                       + memory.CORE_REFUSAL % "DUMP")
    if live is None:
        live = core.is_live() and dump is None
    key = (core.kernel_path(), settings.get("symbols"), settings.get("os") or "auto",
           bool(live), dump, id(native.lib()))
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
                    raise KbuError("option '%s' needs a value" % name)
                i += 1
                value = argv[i]
            found.append((name, value))
        else:
            rest.append(a)
        i += 1
    if len(found) > 1:
        raise KbuError("give one memory source: --core, --phys or --gdb")
    return rest, (found[0] if found else None)


def _escaped(e):
    """A libkbu message made safe for the terminal (it may quote guest bytes)."""
    text = str(e)
    return "".join(ch if 0x20 <= ord(ch) < 0x7f else "\\x%02x" % (ord(ch) & 0xff)
                   for ch in text)


def run(argv, as_json=False):
    argv, source = split_memory_option(list(argv))
    try:
        if source is None:
            return ctx().run(argv, as_json)
        c = native.Ctx(kernel=core.kernel_path(), symbols=settings.get("symbols"),
                       os_name=settings.get("os") or "auto")
        try:
            attach_memory(c, *source)
            return c.run(argv, as_json)
        finally:
            c.close()
    except KbuError as e:
        raise KbuError(_escaped(e)) from None


def run_json(argv):
    st, text = run(argv, as_json=True)
    try:
        import json
        return json.loads(text)
    except ValueError:
        raise KbuError("%s: libkbu returned no JSON" % argv[0])


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
