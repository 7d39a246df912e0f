"""kbu inside GDB: the `kbu` prefix command and its modules.

Adding a command is one file: a module in this package that defines a
subclass of kbu.core.KbuCommand; it is registered when imported. Modules are
imported in MODULES order, then any other kbu/*.py that is present, so a new
module needs no edit here.
"""
import importlib
import os

import gdb

from . import core

MODULES = ["settings", "native", "memory", "session", "forward", "reloc", "lapic", "cpuid"]


def _load_all():
    here = os.path.dirname(os.path.abspath(__file__))
    names = [m for m in MODULES if os.path.exists(os.path.join(here, m + ".py"))]
    for f in sorted(os.listdir(here)):
        if f.endswith(".py") and not f.startswith("_") and f[:-3] not in names \
                and f[:-3] != "core":
            names.append(f[:-3])
    failed = []
    for name in names:
        try:
            importlib.import_module("." + name, __name__)
        except Exception as e:  # one broken module must not take the others down
            failed.append("%s (%s)" % (name, e))
    if failed:
        gdb.write("kbu: could not load: %s\n" % ", ".join(failed), gdb.STDERR)
    core.after_load()


_load_all()
