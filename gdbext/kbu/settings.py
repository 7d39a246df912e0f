"""Settings: `set kbu os|kernel|symbols|libpath|debug` (and any other module's
`kbu NAME` parameter); `show kbu` shows each one exactly as `show kbu NAME` does."""
import re

import gdb

from . import core


class _SetKbu(gdb.Command):
    """Settings of the kbu extension."""

    def __init__(self):
        super().__init__("set kbu", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, True)


def names():
    """Every `kbu NAME` setting, as GDB lists them under `help show kbu`: GDB's
    own help text ("show kbu NAME -- ..." lines), since GDB has no API that
    lists a prefix's parameters."""
    text = gdb.execute("help show kbu", False, True)
    return re.findall(r"^show kbu (\S+) -- ", text, re.M)


class _ShowKbu(gdb.Command):
    """Show the settings of the kbu extension."""

    def __init__(self):
        super().__init__("show kbu", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, True)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        known = names()
        if argv:  # GDB sends the words it does not know here
            raise gdb.GdbError(core.undefined("show kbu", argv[0], known))
        for name in known:
            gdb.execute("show kbu " + name, from_tty)


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
       "The kernel ELF kbu reads (default: GDB's symbol file, else the first add-symbol-file).")
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
