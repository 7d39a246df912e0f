"""Every libkbu command not implemented in Python runs as `kbu <command> ...`
through kbu_run, with guest memory read through GDB: the same report as the
CLI. Each one is also registered as a GDB subcommand whose help is the
command's own `--help` text and whose TAB completion comes from the options
libkbu reads out of that text (kbu_command_options / kbu_command_args)."""
import ctypes

import gdb

from . import core, native, session
from .core import KbuError

# enum kbu_value_kind (command.h)
VALUE_NONE, VALUE_FILE, VALUE_ADDRESS, VALUE_NUMBER, VALUE_CHOICE, VALUE_TEXT = range(6)


class OptionInfo(ctypes.Structure):
    """Mirror of struct kbu_option_info (command.h)."""
    _fields_ = [("name", ctypes.c_char * 32), ("short_name", ctypes.c_char * 8),
                ("value", ctypes.c_char * 48), ("kind", ctypes.c_int),
                ("choices", ctypes.c_char * 96), ("context", ctypes.c_int),
                ("text", ctypes.c_char * 240)]


class ArgInfo(ctypes.Structure):
    """Mirror of struct kbu_arg_info (command.h)."""
    _fields_ = [("name", ctypes.c_char * 48), ("kind", ctypes.c_int),
                ("optional", ctypes.c_int), ("repeats", ctypes.c_int)]


_tables = {}   # (id of the library, command) -> (options, positional)


def _spec(kind, choices):
    """What completes a value of this kind (see core.complete_args)."""
    if kind == VALUE_FILE:
        return gdb.COMPLETE_FILENAME
    if kind == VALUE_ADDRESS:
        return gdb.COMPLETE_SYMBOL
    if kind == VALUE_CHOICE:
        return [c for c in choices.split("|") if c]
    return None


def libkbu_completion(name):
    """(options, positional) of libkbu command `name` for core.complete_args.
    Options the GDB session supplies itself (memory source, kernel, symbols,
    --os) are left out; --json is added (this module handles it)."""
    L = native.lib()
    key = (id(L), name)
    if key in _tables:
        return _tables[key]
    f = L.kbu_command_options
    f.restype, f.argtypes = ctypes.c_size_t, [ctypes.c_char_p, ctypes.POINTER(OptionInfo),
                                              ctypes.c_size_t]
    g = L.kbu_command_args
    g.restype, g.argtypes = ctypes.c_size_t, [ctypes.c_char_p, ctypes.POINTER(ArgInfo),
                                              ctypes.c_size_t]
    opts = (OptionInfo * 64)()
    n = min(f(name.encode(), opts, 64), 64)
    options = {}
    for o in opts[:n]:
        if o.context:
            continue
        spec = False if o.kind == VALUE_NONE else _spec(o.kind, o.choices.decode())
        for nm in (o.name, o.short_name):
            if nm:
                options[nm.decode()] = spec
    options["--json"] = False
    args = (ArgInfo * 32)()
    m = min(g(name.encode(), args, 32), 32)
    positional = [_spec(a.kind, "") for a in args[:m]]
    if positional and not args[m - 1].repeats:
        positional.append(None)   # nothing after the last argument
    _tables[key] = (options, positional)
    return _tables[key]


core.libkbu_completion = libkbu_completion


def reading_progress(ctx, name):
    """A context manager for a libkbu command over the GDB bridge: shows the
    bytes it reads (core.Progress), and ends a command the user interrupted
    (Ctrl-C inside a read: libkbu stops with native.Interrupted) with
    "interrupted" and how far it got. Any module running a long libkbu
    command through ctx can use it:
        with forward.reading_progress(session.ctx(), "reloc"):
            j = session.ctx().run_json(["reloc", ...])"""
    source = ctx.source

    class Watch:
        def __enter__(self):
            self.progress = core.Progress("kbu " + name, "reading guest memory",
                                          unit="bytes").__enter__()
            self.nbytes = 0
            if source is not None:
                inner = type(source).read

                def read(addr, length):
                    data = inner(source, addr, length)
                    self.nbytes += length
                    self.progress.update(self.nbytes, unit="bytes")
                    return data
                source.read = read
            return self

        def __exit__(self, etype, value, tb):
            if source is not None:
                source.__dict__.pop("read", None)
            if etype is not None and issubclass(etype, native.Interrupted):
                etype = KeyboardInterrupt
            return self.progress.__exit__(etype, value, tb)

    return Watch()


_notes_shown = {}


def run_libkbu(argv):
    """Runs libkbu command argv[0] with the session context and prints its report."""
    as_json = "--json" in argv
    argv = [x for x in argv if x != "--json"]
    # session.run honours the CLI's --core/--phys/--gdb: then that source, not GDB's.
    with reading_progress(session.ctx(), argv[0]):
        st, text = session.run(argv, as_json)
    if text:
        core.out(text)
    how = session.phys_how()
    if how and how != _notes_shown.get("phys_how"):
        # As the CLI does: how physical memory was read without a physical
        # mode (once, not after every command of the session).
        _notes_shown["phys_how"] = how
        gdb.write("kbu %s: note: %s\n" % (argv[0], how), gdb.STDERR)
    if st == 1:
        gdb.write("kbu %s: problems found (see ! lines)\n" % argv[0], gdb.STDERR)


def command_names():
    return [name for name, _summary in native.command_list()]


core.fallback = run_libkbu
core.fallback_names = command_names


def help_text(name):
    """The text `kbu NAME --help` prints (libkbu's help of the command)."""
    try:
        st, text = session.bare().run([name, "--help"])
    except KbuError:
        return ""
    return text.rstrip("\n")


core.libkbu_help = help_text


class _Forward(gdb.Command):
    def __init__(self, name, summary):
        self.name = name
        # GDB's help: the summary as a sentence, then the command's own --help.
        self.__doc__ = core.sentence(summary or name) + "\n\n" + (
            help_text(name) or "`kbu %s --help` shows its options." % name)
        super().__init__("kbu " + name, gdb.COMMAND_USER, -1)

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        argv = [self.name] + gdb.string_to_argv(arg)
        core.one_line_errors(self.name, run_libkbu, argv)

    def complete(self, text, word):
        try:
            options, positional = libkbu_completion(self.name)
            return core.complete_args(text, word, options, positional)
        except Exception:  # completion must never raise into readline
            return [] if word is not None else None


_forwards = {}


@core.on_loaded
def register_forwards():
    """Registers a subcommand for each libkbu command Python does not own."""
    try:
        cmds = native.command_list()
    except core.KbuError:
        return  # no library yet: `kbu X` still reaches it once it is built
    own = core.commands()
    for name, summary in cmds:
        if name in own or name in _forwards:
            continue
        _forwards[name] = _Forward(name, summary)
