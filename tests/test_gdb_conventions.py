"""kbu inside GDB follows GDB's own conventions: GDB's words for an unknown
subcommand (with the nearest one), `help kbu CMD` = `kbu CMD --help`, TAB
completing the options a command's help declares (symbols only where an
address goes), `show kbu` = every `show kbu NAME`, summaries written like
GDB's, and long steps that show progress and stop cleanly on Ctrl-C."""
import os
import re
import signal
import subprocess
import textwrap

import kbutest

# Options the GDB session supplies itself (the CLI's memory source, kernel, symbols, OS).
SESSION_OPTIONS = {"--core", "--phys", "--gdb", "--kernel", "--symbols", "--os", "--strict",
                   "--stats", "--help", "--version"}


def gdb(*commands, kernel=None, env=None):
    argv = kbutest.gdb_command(kernel, None, list(commands), load_kbu=True)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120, env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL)
    out = p.stdout
    assert "Traceback" not in out and "Python Exception" not in out, out
    return out


def complete(lines, kernel=None):
    """{line: the candidates GDB's `complete LINE` printed, without LINE's head}."""
    cmds = []
    for i, line in enumerate(lines):
        cmds += ["echo @@%d\\n" % i, "complete " + line]
    out = gdb(*cmds, kernel=kernel)
    res = {}
    for i, line in enumerate(lines):
        part = out.split("@@%d\n" % i, 1)[1].split("@@%d\n" % (i + 1), 1)[0]
        head = line.rsplit(" ", 1)[0] + " "
        res[line] = {x[len(head):] for x in part.splitlines() if x.startswith(head)}
    return res


def cli_commands():
    rc, out, err = kbutest.kbu("--help")
    assert rc == 0, err
    return re.findall(r"^  ([a-z][a-z0-9-]*)  ", out.split("Commands:", 1)[1], re.M)


def gdb_subcommands():
    out = gdb("help kbu")
    return re.findall(r"^kbu (\S+) -- ", out, re.M)


def test_unknown_subcommand_in_gdbs_words_with_the_nearest_one():
    out = gdb("kbu mptabel", "kbu zzqqxx", "kbu --help", "kbu -h", "echo end\\n")
    assert 'Undefined kbu command: "mptabel".  Try "help kbu".  Did you mean "kbu mptable"?' \
        in out
    assert 'Undefined kbu command: "zzqqxx".  Try "help kbu".\n' in out
    # --help and -h are the prefix's own help, twice, not "unknown command"
    assert out.count("List of kbu subcommands:") == 2
    assert "unknown" not in out.lower()
    assert out.rstrip().endswith("end")


def test_help_kbu_cmd_shows_what_cmd_help_prints():
    names = gdb_subcommands()
    assert set(cli_commands()) <= set(names)
    cmds = []
    for n in names:
        cmds += ["echo @@help %s\\n" % n, "help kbu %s" % n, "echo @@flag %s\\n" % n,
                 "kbu %s --help" % n]
    out = gdb(*cmds)
    parts = dict(re.findall(r"^@@(\w+ \S+)\n(.*?)(?=^@@|\Z)", out, re.M | re.S))
    for n in names:
        via_help, via_flag = parts["help " + n].strip(), parts["flag " + n].strip()
        assert via_flag, n
        assert via_flag in via_help, "help kbu %s lacks `kbu %s --help`:\n%s\n---\n%s" % (
            n, n, via_help, via_flag)
    # a libkbu command's help is the CLI's own text
    rc, cli, err = kbutest.kbu("mptable", "--help")
    assert cli.strip() in parts["help mptable"]


def test_summaries_are_written_like_gdbs():
    out = gdb("help kbu", "help show kbu", "help set kbu", "help breakpoints")
    ours = re.findall(r"^((?:set |show )?kbu \S+) -- (.*)$", out, re.M)
    assert len(ours) > 25
    # GDB's own style, as `help breakpoints` shows it: capital first, final full stop
    gdbs = re.findall(r"^(?:break|delete|tbreak) -- (.*)$", out, re.M)
    assert gdbs and all(s[0].isupper() and s.endswith(".") for s in gdbs), gdbs
    bad = [(c, s) for c, s in ours if not (s[0].isupper() and s.endswith("."))]
    assert not bad, bad


def test_show_kbu_is_every_show_kbu_name():
    names = re.findall(r"^show kbu (\S+) -- ", gdb("help show kbu"), re.M)
    assert {"debug", "os", "kernel", "symbols", "libpath", "profile"} <= set(names)
    out = gdb("set kbu debug on", "echo @@all\\n", "show kbu", "echo @@each\\n",
              *["show kbu %s" % n for n in names])
    every, each = out.split("@@all\n", 1)[1].split("@@each\n", 1)
    assert every == each
    assert "kbu debug: on" in every and "True" not in every and "False" not in every
    assert 'Undefined show kbu command: "debgu".  Try "help show kbu".  Did you mean ' \
        '"show kbu debug"?' in gdb("show kbu debgu")


def test_option_completion_comes_from_each_commands_help():
    forwards = [n for n in cli_commands() if n not in ("pvh", "reloc", "lapic", "dmesg", "os")]
    lines = ["kbu %s --" % n for n in forwards]
    c = complete(lines)
    for n, line in zip(forwards, lines):
        rc, text, err = kbutest.kbu(n, "--help")
        usage = text.split("\n\n", 1)[0]
        want = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", usage)) - SESSION_OPTIONS
        want.add("--json")
        assert c[line] == want, "kbu %s: completes %s, its usage names %s" % (n, c[line], want)
    assert c["kbu mptable --"] == {"--at", "--table", "--json"}


def test_completion_offers_symbols_only_where_an_address_goes(guest_kernel):
    c = complete(["kbu mptable --t", "kbu mptable --table lapic_i", "kbu sym lapic_i",
                  "kbu x -p lapic_in", "kbu vtop --mode ", "kbu mptable ", "kbu watch ",
                  "kbu cpuid ", "kbu cpuid --r", "kbu break lapic_in", "kbu recipe tsc"],
                 kernel=guest_kernel)
    assert c["kbu mptable --t"] == {"--table"}
    assert "lapic_init" in c["kbu mptable --table lapic_i"]
    assert "lapic_init" in c["kbu sym lapic_i"]
    assert c["kbu x -p lapic_in"] == {"lapic_init"}
    assert c["kbu vtop --mode "] == {"4level", "5level", "pae", "32", "off"}
    # no positional argument: the options, never a list of every symbol
    assert c["kbu mptable "] == {"--at", "--table", "--json"}
    assert {"x2apic", "report", "off"} <= c["kbu watch "]
    assert "tsc" in c["kbu cpuid "]
    assert c["kbu cpuid --r"] == {"--raw"}
    assert c["kbu break lapic_in"] == {"lapic_init"}
    assert c["kbu recipe tsc"] == {"tsc-not-initialized"}


def test_completion_of_files_and_of_options_next_to_a_commands_own_completer(tmp_path):
    (tmp_path / "guest-a.core").write_text("")
    (tmp_path / "guest-dir").mkdir()
    base = str(tmp_path / "guest-")
    c = complete(["kbu dump -f " + base, "kbu layout " + base, "kbu recipe --",
                  "kbu recipe --output " + base, "kbu recipe pvh"])
    files = {base + "a.core", base + "dir/"}
    assert c["kbu dump -f " + base] == files
    assert c["kbu layout " + base] == files
    assert {"--list", "--json", "--timeout", "--here", "--console", "--output"} == \
        c["kbu recipe --"]
    assert c["kbu recipe --output " + base] == files
    assert c["kbu recipe pvh"] == {"pvh-entry"}


PROGRESS = textwrap.dedent('''
    import time
    import gdb
    from kbu import core

    class Slow(core.KbuCommand):
        """Count slowly (a long step that shows progress)."""
        name = "zz-slow"

        def run(self, args):
            with core.Progress("kbu zz-slow", "counting", after=0, interval=0) as p:
                for i in range(100000):
                    p.update(i, 100000)
                    time.sleep(0.05)
''')


def test_progress_shows_and_ctrl_c_stops_cleanly(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(PROGRESS)
    argv = kbutest.gdb_command(None, None, ["source %s" % script, "kbu zz-slow",
                                            "echo after-interrupt\\n"], load_kbu=True)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, KBU_PROGRESS="1"), stdin=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        seen = []
        for line in p.stdout:           # the event: two progress lines drawn
            seen.append(line)
            if len([x for x in seen if "Ctrl-C stops" in x]) == 2:
                break
        assert any(re.match(r"kbu zz-slow: counting: \d+ of 100000 \(\d+%\), \d+ s "
                            r"\(Ctrl-C stops\)", x) for x in seen), seen
        p.send_signal(signal.SIGINT)
        rest = p.stdout.read()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert re.search(r"^kbu zz-slow: interrupted: counting: \d+ of 100000", rest, re.M), rest
    assert "after-interrupt" in rest
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest


INTERRUPTED_READ = textwrap.dedent('''
    import gdb
    from kbu import forward, native, session

    class Source:
        """A debugger whose reads Ctrl-C interrupts (QEMU's physical mode)."""
        max_read = 4096
        def read(self, addr, length):
            raise KeyboardInterrupt()
        def packet(self, text):
            return "0" if text == "qqemu.PhyMemMode" else "OK"
        def regs(self, cpu):
            return {}
        def monitor(self, cmd):
            return ""
        def ncpus(self):
            return 1

    ctx = native.Ctx(source=Source())
    session.ctx = lambda live=None: ctx
''')


def test_ctrl_c_during_a_libkbu_read_ends_the_command_in_one_line(tmp_path):
    script = tmp_path / "interrupt.py"
    script.write_text(INTERRUPTED_READ)
    out = gdb("source %s" % script, "kbu mptable", "echo after\\n")
    assert re.search(r"^kbu mptable: interrupted: reading guest memory", out, re.M), out
    assert out.rstrip().endswith("after")
