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

GDB's conventions hold for every subcommand without more code: its summary
reads like GDB's own (a capital first letter, a full stop), `help kbu CMD`
shows what `kbu CMD --help` shows, and TAB completes the options and choices
its parser declares, then `completer` (e.g. gdb.COMPLETE_SYMBOL) for its
arguments. A long loop reports progress and stops cleanly on Ctrl-C with
`with core.Progress("kbu CMD", "what") as p: ... p.update(done, total)`.
"""
import argparse
import difflib
import os
import time
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


_before_command = []  # callables run before every kbu command (pending symbol repairs)


def before_command(fn):
    """fn() runs before each kbu command (not inside convenience functions, which
    GDB evaluates in the middle of an expression). A KbuError from it is reported
    as one line and the command still runs."""
    _before_command.append(fn)
    return fn


def _run_before_command():
    for fn in list(_before_command):
        try:
            fn()
        except KbuError as e:
            gdb.write("kbu: %s\n" % e, gdb.STDERR)
        except gdb.error as e:
            gdb.write("kbu: %s\n" % e, gdb.STDERR)


def one_line_errors(cmdname, fn, *a, **kw):
    """Calls fn; any exception becomes gdb.GdbError('kbu <cmd>: <message>')."""
    try:
        if not cmdname.startswith("$"):
            _run_before_command()
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


def sentence(text):
    """A help summary the way GDB writes its own: a capital first letter, a final full stop."""
    t = " ".join(text.split())
    if not t:
        return t
    t = t[0].upper() + t[1:]
    return t if t.endswith((".", "!", "?")) else t + "."


def _matching(candidates, cur, word):
    """The candidates starting with cur, cut to what GDB replaces (word, the end of cur)."""
    if word is None:
        return None
    cut = len(cur) - len(word)
    return sorted({c[cut:] for c in candidates if c.startswith(cur) and len(c) >= cut})


def complete_args(text, word, options, positional):
    """GDB completion of a command line from a declaration of its arguments.

    options: {"--name": spec}; positional: [spec, ...] (the last one repeats).
    A spec is None (a flag, or a value nothing completes), a list of words,
    or a gdb.COMPLETE_* constant (symbols, file names) GDB then applies.
    Returns what a gdb.Command.complete() returns.
    """
    done = text.split()
    cur = ""
    if done and not text[-1:].isspace():
        cur = done.pop()
    takes_value = {k for k, v in options.items() if v is not False}
    npos, i, dashdash = 0, 0, False
    while i < len(done):
        t = done[i]
        if dashdash or not t.startswith("-") or t == "-":
            npos += 1
        elif t == "--":
            dashdash = True
        elif t in takes_value and "=" not in t:
            i += 1
            if i == len(done):   # the value is being typed
                return _spec_result(options[t], cur, word)
        i += 1
    if not dashdash and cur.startswith("-"):
        return _matching(options.keys(), cur, word)
    spec = None
    if positional:
        spec = positional[min(npos, len(positional) - 1)] if npos < len(positional) or \
            positional[-1] is not None else None
    if spec is None and not cur and not dashdash:
        return _matching(options.keys(), cur, word)  # nothing else to offer: the options
    return _spec_result(spec, cur, word)


def _completing_option(text, options):
    """True when the word being completed is an option or an option's value."""
    done = text.split()
    cur = ""
    if done and not text[-1:].isspace():
        cur = done.pop()
    if "--" in done:
        return False
    if cur.startswith("-"):
        return True
    return bool(done) and options.get(done[-1], False) is not False and done[-1] in options


def _file_names(cur):
    """Paths starting with cur (directories with a final /), as a shell completes them."""
    d, base = os.path.split(os.path.expanduser(cur))
    try:
        names = os.listdir(d or ".")
    except OSError:
        return []
    head = cur[:len(cur) - len(base)]
    res = []
    for n in names:
        if n.startswith(base) and (base.startswith(".") or not n.startswith(".")):
            res.append(head + n + ("/" if os.path.isdir(os.path.join(d or ".", n)) else ""))
    return res


def _spec_result(spec, cur, word):
    if spec is None or spec is False:
        return [] if word is not None else None
    if spec == gdb.COMPLETE_FILENAME:
        # GDB 13 drops the file names its own completer finds after another
        # word when a Python completer hands it over: list them here.
        return _matching(_file_names(cur), cur, word)
    if isinstance(spec, int):
        return spec
    return _matching(spec, cur, word)


def parser_completion(parser, default=None):
    """(options, positional) for complete_args from an argparse parser: option
    values complete their choices, positionals their choices or the lower-case
    words of their metavar ("LEAF|tsc" offers tsc), else `default`."""
    options, positional = {}, []
    for act in parser._actions:
        if act.help == argparse.SUPPRESS or isinstance(act, argparse._HelpAction):
            continue
        if act.option_strings:
            spec = False if act.nargs == 0 else (list(act.choices) if act.choices else None)
            if spec is None and act.metavar in ("FILE", "ELF", "MAP", "DIR", "PATH"):
                spec = gdb.COMPLETE_FILENAME
            for o in act.option_strings:
                options[o] = spec
            continue
        if act.choices:
            positional.append([str(c) for c in act.choices])
            continue
        words = [w for w in str(act.metavar or "").split("|") if w.isalpha() and w.islower()]
        positional.append(words or default)
    return options, positional


class KbuCommand(gdb.Command):
    """Base of every kbu subcommand; subclasses register themselves."""

    name = None
    command_class = gdb.COMMAND_USER
    completer = gdb.COMPLETE_NONE   # what completes the arguments (after the parser's choices)
    is_prefix = False

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        own = cls.__dict__.get("complete")
        if own is not None and not getattr(own, "_kbu_options_first", False):
            # A command's own completer (recipe names, ...) gets the arguments;
            # options and their values still come from its parser.
            def complete(self, text, word, _own=own):
                if _completing_option(text, self.completion()[0]):
                    return KbuCommand.complete(self, text, word)
                return _own(self, text, word)
            complete._kbu_options_first = True
            cls.complete = complete
        if cls.__dict__.get("name"):
            inst = cls()
            _commands[cls.name] = inst

    def __init__(self):
        lines = (type(self).__doc__ or self.name).strip().splitlines()
        lines[0] = sentence(lines[0])
        self.summary = lines[0]
        self._parser = _Parser(prog="%s %s" % (PREFIX, self.name),
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        self.parser(self._parser)
        # GDB takes the help text from __doc__: summary line, then usage;
        # `kbu CMD --help` prints the same text. A command that hands its
        # arguments to libkbu (its own parse()) shows libkbu's usage.
        usage = self._parser.format_help().strip()
        if type(self).parse is not KbuCommand.parse and libkbu_help is not None:
            usage = libkbu_help(self.name) or usage
        self.__doc__ = "\n".join(lines) + "\n\n" + usage
        self._parser.full_doc = self.__doc__ + "\n"
        # -1: no fixed completer class, GDB asks complete() below.
        super().__init__("%s %s" % (PREFIX, self.name), self.command_class, -1, self.is_prefix)

    def completion(self):
        """(options, positional) for complete_args: the parser's declarations,
        plus libkbu's own options when the arguments go through to it."""
        options, positional = parser_completion(self._parser, self.completer)
        if type(self).parse is not KbuCommand.parse and libkbu_completion is not None:
            more_opts, more_pos = libkbu_completion(self.name)
            for k, v in more_opts.items():
                options.setdefault(k, v)
            if not positional or positional == [self.completer]:
                positional = more_pos or positional
        return options, positional

    def complete(self, text, word):
        try:
            options, positional = self.completion()
            return complete_args(text, word, options, positional)
        except Exception:  # completion must never raise into readline
            return [] if word is not None else None

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
fallback_names = None  # set by forward.py: () -> the libkbu command names (KbuError if no lib)
libkbu_completion = None  # set by forward.py: (name) -> (options, positional) of a libkbu command
libkbu_help = None  # set by forward.py: (name) -> the text of `kbu NAME --help`, or ""


def undefined(prefix, name, known, why=None):
    """GDB's own words for an unknown subcommand, with the nearest known one."""
    msg = 'Undefined %s command: "%s".  Try "help %s".' % (prefix, name, prefix)
    near = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    if near:
        msg += '  Did you mean "%s %s"?' % (prefix, near[0])
    if why:
        msg += "  (%s)" % why
    return msg


class KbuPrefix(gdb.Command):
    """Debug a kernel bring-up on a microVM (QEMU -M microvm, Firecracker).

Subcommands run against the paused guest through GDB. Any libkbu command
(the same ones as the `kbu` CLI) is available as `kbu <command> ...`; its
report is the same text the CLI prints. `help kbu COMMAND` shows a command's
options (the text of `kbu COMMAND --help`). Settings: `show kbu`."""

    def __init__(self):
        super().__init__(PREFIX, gdb.COMMAND_USER, gdb.COMPLETE_COMMAND, True)

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        argv = gdb.string_to_argv(arg)
        if not argv or argv[0] in ("--help", "-h"):
            gdb.execute("help %s" % PREFIX, from_tty)
            return
        known = [n.split()[0] for n in _commands]
        why = None
        if fallback_names is not None:
            try:
                names = list(fallback_names())
                if argv[0] in names and fallback is not None:
                    one_line_errors(argv[0], fallback, argv)
                    return
                known += names
            except KbuError as e:
                why = "libkbu's commands are not available: %s" % e
        raise gdb.GdbError(undefined(PREFIX, argv[0], known, why))


KbuPrefix()


# ---- guards -----------------------------------------------------------------

_in_stop = [0]


class in_stop_handler:
    """Marks a gdb.Breakpoint.stop() in progress: the guest is stopped there
    (memory and registers can be read) although GDB still reports its thread
    as running."""

    def __enter__(self):
        _in_stop[0] += 1
        return self

    def __exit__(self, *exc):
        _in_stop[0] -= 1
        return False


def core_target():
    """True when the selected inferior runs on GDB's own core target (core-file)."""
    try:
        conn = gdb.selected_inferior().connection
    except (gdb.error, AttributeError):
        return False
    return conn is not None and getattr(conn, "type", None) == "core"


def is_live():
    """True when GDB is attached to a running (paused) target with threads: a
    remote stub, not GDB's core target (whose memory is the ELF file's)."""
    if core_target():
        return False
    try:
        inf = gdb.selected_inferior()
        return inf.pid != 0 and gdb.selected_thread() is not None
    except gdb.error:
        return False


def need_live(what="this"):
    if core_target():
        from . import memory
        path = memory.core_file()
        raise KbuError("%s needs a live guest: %s" % (
            what, memory.CORE_REFUSAL % (path if path and path != "?" else "DUMP")))
    if not is_live():
        raise KbuError("%s needs a live target (target remote HOST:PORT to a paused guest)"
                       % what)
    if _in_stop[0]:
        return   # a breakpoint's stop(): the vCPU is stopped, GDB only has not said so yet
    th = gdb.selected_thread()
    if th.is_running():
        raise KbuError("%s needs the guest stopped (interrupt it first)" % what)


def kernel_path():
    """The kernel ELF: `set kbu kernel`, else GDB's main symbol file, else the
    first symbol file loaded with add-symbol-file (the devlogs' workflow:
    `target remote`, then `add-symbol-file kernel`), else None."""
    try:
        p = gdb.parameter("kbu kernel")
    except gdb.error:
        p = None
    if p:
        return p
    pf = gdb.current_progspace().filename
    if pf:
        return pf
    return loaded_kernel()


def loaded_kernel():
    """The first objfile of this program space that is a file on disk (not a
    separate debug file, not the vDSO GDB makes up), or None."""
    try:
        objfiles = gdb.current_progspace().objfiles()
    except gdb.error:
        return None
    for of in objfiles:
        try:
            if not of.is_valid() or of.owner is not None:
                continue
            name = of.filename
        except (gdb.error, RuntimeError):
            continue
        if name and os.path.isfile(name):
            return name
    return None


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


class Progress:
    """Progress of a long kbu step, and a clean stop on Ctrl-C:

        with core.Progress("kbu reloc", "searching slides") as p:
            for i, x in enumerate(work):
                p.update(i, len(work))         # or p.update(nbytes, unit="bytes")

    The line is drawn on stderr, at most every `interval` seconds and only
    once the step has run `after` seconds, when GDB's stderr is a terminal
    (or KBU_PROGRESS=1: one line per update then), and erased at the end.
    Ctrl-C inside the block (KeyboardInterrupt) leaves it as a KbuError
    saying how far it got, so the command ends with one line and GDB's
    prompt comes back; the caller's `finally` blocks still run."""

    def __init__(self, cmd, what, after=1.0, interval=0.5, unit=""):
        self.cmd, self.what = cmd, what
        self.after, self.interval = after, interval
        self.start = self.last = 0.0
        self.shown = False
        self.done, self.total, self.unit = 0, None, unit
        forced = os.environ.get("KBU_PROGRESS") == "1"
        try:
            tty = os.isatty(2)
        except OSError:
            tty = False
        self.enabled = tty or forced
        self.inline = tty and not forced

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def text(self):
        if self.unit == "bytes":
            amount = "%.1f MiB" % (self.done / 1048576.0)
            if self.total:
                amount += " of %.1f MiB" % (self.total / 1048576.0)
        elif self.total:
            amount = "%d of %d" % (self.done, self.total)
        else:
            amount = "%d %s" % (self.done, self.unit or "so far")
        pct = " (%d%%)" % (100 * self.done // self.total) if self.total else ""
        return "%s: %s: %s%s, %.0f s" % (self.cmd, self.what, amount, pct,
                                         time.monotonic() - self.start)

    def update(self, done, total=None, unit=None):
        self.done = done
        if total is not None:
            self.total = total
        if unit is not None:
            self.unit = unit
        now = time.monotonic()
        if not self.enabled or now - self.start < self.after or now - self.last < self.interval:
            return
        self.last = now
        line = self.text() + " (Ctrl-C stops)"
        gdb.write(("\r\033[K" + line) if self.inline else line + "\n", gdb.STDERR)
        gdb.flush(gdb.STDERR)
        self.shown = True

    def __exit__(self, etype, value, tb):
        if self.shown and self.inline:
            gdb.write("\r\033[K", gdb.STDERR)
            gdb.flush(gdb.STDERR)
        if etype is KeyboardInterrupt:
            raise KbuError("interrupted: %s" % self.text().split(": ", 1)[1]) from None
        return False


def cpu_index(thread=None):
    """QEMU's CPU index of a GDB thread (its remote thread id minus one)."""
    th = thread or gdb.selected_thread()
    try:
        return th.ptid[1] - 1 if th.ptid[1] > 0 else th.num - 1
    except (AttributeError, TypeError):
        return th.num - 1
