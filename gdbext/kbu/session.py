"""The libkbu context of this GDB session, rebuilt when its inputs change.

Inputs: the kernel ELF (`set kbu kernel` or GDB's symbol file), the symbol
map (`set kbu symbols`), the OS (`set kbu os`) and whether a live target is
attached (then memory is the GDB bridge).
"""
import gdb

from . import core, memory, native, settings

_state = {"key": None, "ctx": None}


def drop(*unused):
    ctx = _state["ctx"]
    _state["key"] = _state["ctx"] = None
    if ctx is not None:
        ctx.close()


def ctx(live=None):
    """The current native.Ctx (live: None = use the target if attached)."""
    if live is None:
        live = core.is_live()
    key = (core.kernel_path(), settings.get("symbols"), settings.get("os") or "auto",
           bool(live), id(native.lib()))
    if _state["key"] != key:
        drop()
        c = native.Ctx(kernel=key[0], symbols=key[1], os_name=key[2],
                       source=memory.GdbSource() if live else None)
        _state["key"], _state["ctx"] = key, c
    return _state["ctx"]


def run(argv, as_json=False):
    return ctx().run(argv, as_json)


def run_json(argv):
    return ctx().run_json(argv)


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
