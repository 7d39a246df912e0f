"""The `kbu` prefix command, command registration, one-line errors, guards.

A module adds a subcommand by defining a class:

    class Addr(KbuCommand):
        \"\"\"Print every alias of an address with its symbol.\"\"\"   # one-line summary
        name = "addr"                       # "reloc apply" for a sub-subcommand
        completer = gdb.COMPLETE_SYMBOL

        def parser(self, p):                # optional: fill an argparse parser
            p.add_argument("address")

        def run(self, args):                # args: the parsed namespace
            ...                             # write output with out(); raise KbuError

The class is registered (instantiated as `kbu addr`) when the module is
imported. Every exception raised by run() reaches the user as one line,
`kbu addr: <message>`, never as a traceback.
"""
import argparse
import traceback

import gdb

PREFIX = "kbu"


class KbuError(Exception):
    """An error the user can act on; its text becomes `kbu <cmd>: <text>`."""


class _HelpShown(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting."""

    def error(self, message):
        raise KbuError("%s (usage: %s)" % (message, self.format_usage().strip()[7:]))

    def exit(self, status=0, message=None):
        if message:
            raise KbuError(message.strip())
        raise _HelpShown()

    full_doc = None  # the command's docstring + usage, set by KbuCommand

    def print_help(self, file=None):
        gdb.write(self.full_doc or self.format_help())


_commands = {}       # name -> instance, Python commands
_after_load = []     # callables run once every module is imported


def out(text):
    """Writes to the GDB console (commands never use print)."""
    gdb.write(text if text.endswith("\n") or not text else text + "\n")


def commands():
    return dict(_commands)


def on_loaded(fn):
    """Runs fn() once all modules are imported (e.g. to register forwards)."""
    _after_load.append(fn)
    return fn


def after_load():
    for fn in _after_load:
        try:
            fn()
        except Exception as e:
            gdb.write("kbu: %s\n" % e, gdb.STDERR)


def one_line_errors(cmdname, fn, *a, **kw):
    """Calls fn; any exception becomes gdb.GdbError('kbu <cmd>: <message>')."""
    try:
        return fn(*a, **kw)
    except _HelpShown:
        return None
    except KbuError as e:
        raise gdb.GdbError("%s %s: %s" % (PREFIX, cmdname, e)) from None
    except gdb.GdbError as e:
        raise gdb.GdbError("%s %s: %s" % (PREFIX, cmdname, e)) from None
    except gdb.MemoryError as e:
        raise gdb.GdbError("%s %s: cannot read memory: %s" % (PREFIX, cmdname, e)) from None
    except gdb.error as e:
        raise gdb.GdbError("%s %s: %s" % (PREFIX, cmdname, e)) from None
    except KeyboardInterrupt:
        raise gdb.GdbError("%s %s: interrupted" % (PREFIX, cmdname)) from None
    except Exception as e:  # a bug in kbu: still one line; details on `set kbu debug on`
        if debug_enabled():
            gdb.write(traceback.format_exc(), gdb.STDERR)
        raise gdb.GdbError("%s %s: internal error: %s: %s"
                           % (PREFIX, cmdname, type(e).__name__, e)) from None


def debug_enabled():
    try:
        return bool(gdb.parameter("kbu debug"))
    except Exception:
        return False


class KbuCommand(gdb.Command):
    """Base of every kbu subcommand; subclasses register themselves."""

    name = None
    command_class = gdb.COMMAND_USER
    completer = gdb.COMPLETE_NONE
    is_prefix = False

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__dict__.get("name"):
            inst = cls()
            _commands[cls.name] = inst

    def __init__(self):
        summary = (type(self).__doc__ or "").strip().splitlines()
        summary = summary[0] if summary else self.name
        self.summary = summary
        self._parser = _Parser(prog="%s %s" % (PREFIX, self.name),
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        self.parser(self._parser)
        # GDB takes the help text from __doc__: summary line, then usage.
        self.__doc__ = (type(self).__doc__ or summary).strip() + "\n\n" + \
            self._parser.format_help().strip()
        self._parser.full_doc = self.__doc__ + "\n"
        super().__init__("%s %s" % (PREFIX, self.name), self.command_class,
                         self.completer, self.is_prefix)

    def parser(self, p):
        """Adds arguments to the argparse parser p (override)."""

    def run(self, args):
        raise KbuError("not implemented")

    def parse(self, arg):
        return self._parser.parse_args(gdb.string_to_argv(arg))

    def invoke(self, arg, from_tty):
        def go():
            args = self.parse(arg)
            return self.run(args)
        self.dont_repeat()
        one_line_errors(self.name, go)


fallback = None  # set by forward.py: fallback(argv) runs a libkbu command


class KbuPrefix(gdb.Command):
    """kbu: debug a kernel bring-up on a microVM (QEMU -M microvm, Firecracker).

Subcommands run against the paused guest through GDB. Any libkbu command
(the same ones as the `kbu` CLI) is available as `kbu <command> ...`; its
report is the same text the CLI prints. Settings: `show kbu`."""

    def __init__(self):
        super().__init__(PREFIX, gdb.COMMAND_USER, gdb.COMPLETE_COMMAND, True)

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        argv = gdb.string_to_argv(arg)
        if not argv:
            gdb.execute("help %s" % PREFIX, from_tty)
            return
        if fallback is None:
            raise gdb.GdbError("%s: unknown command \"%s\" (try: help kbu)" % (PREFIX, argv[0]))
        one_line_errors(argv[0], fallback, argv)


KbuPrefix()


# ---- guards -----------------------------------------------------------------

def is_live():
    """True when GDB is attached to a running (paused) target with threads."""
    try:
        inf = gdb.selected_inferior()
        return inf.pid != 0 and gdb.selected_thread() is not None
    except gdb.error:
        return False


def need_live(what="this"):
    if not is_live():
        raise KbuError("%s needs a live target (target remote HOST:PORT to a paused guest)"
                       % what)
    th = gdb.selected_thread()
    if th.is_running():
        raise KbuError("%s needs the guest stopped (interrupt it first)" % what)


def kernel_path():
    """The kernel ELF: `set kbu kernel`, else GDB's main symbol file, else None."""
    try:
        p = gdb.parameter("kbu kernel")
    except gdb.error:
        p = None
    if p:
        return p
    pf = gdb.current_progspace().filename
    return pf or None


def need_kernel(what="this"):
    p = kernel_path()
    if not p:
        raise KbuError("%s needs a kernel ELF (set kbu kernel PATH, or file PATH)" % what)
    return p


def parse_int(text, what="number"):
    """A number as the user types it: 0x hex, decimal, or a GDB expression."""
    t = text.strip()
    try:
        return int(t, 0)
    except ValueError:
        pass
    try:
        v = gdb.parse_and_eval(t)
        return int(v.cast(gdb.lookup_type("unsigned long long"))) if v.type.code != \
            gdb.TYPE_CODE_PTR else int(v)
    except gdb.error as e:
        raise KbuError("bad %s \"%s\": %s" % (what, text, e))


def quiet(cmd):
    """Runs a GDB command and returns its output instead of printing it."""
    return gdb.execute(cmd, False, True)


def read_reg(name):
    """An integer register of the selected frame (rip, eax, cr0, ...)."""
    try:
        v = gdb.selected_frame().read_register(name)
    except (gdb.error, ValueError) as e:
        raise KbuError("cannot read register %s: %s" % (name, e))
    return int(v) & 0xffffffffffffffff


def cpu_index(thread=None):
    """QEMU's CPU index of a GDB thread (its remote thread id minus one)."""
    th = thread or gdb.selected_thread()
    try:
        return th.ptid[1] - 1 if th.ptid[1] > 0 else th.num - 1
    except (AttributeError, TypeError):
        return th.num - 1
