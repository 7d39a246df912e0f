"""Every libkbu command not implemented in Python runs as `kbu <command> ...`
through kbu_run, with guest memory read through GDB: the same report as the
CLI. Each one is also registered as a GDB subcommand (help, completion)."""
import gdb

from . import core, native, session


def run_libkbu(argv):
    """Runs libkbu command argv[0] with the session context and prints its report."""
    as_json = "--json" in argv
    st, text = session.run([x for x in argv if x != "--json"], as_json)
    if text:
        core.out(text)
    if st == 1:
        gdb.write("kbu %s: problems found (see ! lines)\n" % argv[0], gdb.STDERR)


core.fallback = run_libkbu


class _Forward(gdb.Command):
    def __init__(self, name, summary):
        self.name = name
        self.__doc__ = "%s\n\nA libkbu command: `kbu %s --help` shows its options." % (
            summary or name, name)
        super().__init__("kbu " + name, gdb.COMMAND_USER, gdb.COMPLETE_SYMBOL)

    def invoke(self, arg, from_tty):
        self.dont_repeat()
        argv = [self.name] + gdb.string_to_argv(arg)
        core.one_line_errors(self.name, run_libkbu, argv)


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
