"""Settings: `set kbu os|kernel|symbols|libpath|debug`, shown by `show kbu`."""
import gdb

from . import core


class _SetKbu(gdb.Command):
    """Settings of the kbu extension."""

    def __init__(self):
        super().__init__("set kbu", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, True)


class _ShowKbu(gdb.Command):
    """Show the settings of the kbu extension."""

    def __init__(self):
        super().__init__("show kbu", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, True)

    def invoke(self, arg, from_tty):
        for name in ("os", "kernel", "symbols", "libpath", "debug"):
            gdb.write("kbu %-8s %s\n" % (name, gdb.parameter("kbu " + name)))


_SetKbu()
_ShowKbu()

_listeners = []


def on_change(fn):
    """fn(name) is called after any kbu setting changes."""
    _listeners.append(fn)
    return fn


class _Param(gdb.Parameter):
    def __init__(self, name, kind, doc, *extra):
        self.__doc__ = doc
        self.set_doc = "Set " + doc[0].lower() + doc[1:]
        self.show_doc = "Show " + doc[0].lower() + doc[1:]
        self.short = name
        super().__init__("kbu " + name, gdb.COMMAND_DATA, kind, *extra)

    def get_set_string(self):
        for fn in _listeners:
            try:
                fn(self.short)
            except Exception as e:
                return "kbu: %s" % e
        return ""

    def get_show_string(self, svalue):
        return "kbu %s: %s" % (self.short, svalue or "(not set)")


class OsParam(_Param):
    def __init__(self):
        super().__init__("os", gdb.PARAM_ENUM,
                         "The guest OS profile kbu uses (auto guesses from the kernel ELF).",
                         ["auto", "freebsd", "netbsd", "linux"])
        self.value = "auto"


OsParam()
_Param("kernel", gdb.PARAM_OPTIONAL_FILENAME,
       "The kernel ELF kbu reads (default: GDB's symbol file).")
_Param("symbols", gdb.PARAM_OPTIONAL_FILENAME,
       "An extra nm-format symbol map (System.map) for kbu.")
_Param("libpath", gdb.PARAM_OPTIONAL_FILENAME,
       "Where to find libkbu.so (a file or a directory).")
_Param("debug", gdb.PARAM_BOOLEAN,
       "Whether kbu shows Python tracebacks of its own internal errors.")


def get(name):
    v = gdb.parameter("kbu " + name)
    return v if v not in (None, "") else None


core.get_setting = get
