"""The documentation keeps up with the code: every command `kbu --help` lists
has its page and its README example, every page's help block is what the
command prints today, and every relative link in the docs resolves."""
import os
import re
import shutil

import pytest

import kbutest

DOCS = os.path.join(kbutest.ROOT, "docs")
README = os.path.join(kbutest.ROOT, "README.md")


def cli_commands():
    rc, out, err = kbutest.kbu("--help")
    assert rc == 0, err
    names = re.findall(r"^  ([a-z][a-z0-9-]*)  ", out.split("Commands:", 1)[1], re.M)
    assert len(names) >= 10, out
    return names


def read(path):
    with open(path) as f:
        return f.read()


def test_every_command_has_a_page_and_a_readme_example():
    index = read(os.path.join(DOCS, "commands", "README.md"))
    readme = read(README)
    missing = []
    for name in cli_commands():
        page = os.path.join(DOCS, "commands", name + ".md")
        if not os.path.exists(page):
            missing.append("docs/commands/%s.md" % name)
            continue
        if "(%s.md)" % name not in index:
            missing.append("docs/commands/README.md entry for %s" % name)
        if not re.search(r"^### %s\b" % re.escape(name), readme, re.M):
            missing.append("README.md section '### %s'" % name)
    assert not missing, "undocumented: " + ", ".join(missing)


def test_each_page_shows_the_help_the_command_prints():
    # The help block of a page is `kbu NAME --help` as run; a changed usage
    # means the page was not regenerated (docs/commands/regen.py).
    stale = []
    for name in cli_commands():
        page = os.path.join(DOCS, "commands", name + ".md")
        if not os.path.exists(page):
            continue
        m = re.search(r"<!-- run: build/kbu %s --help -->\n```text\n\$ [^\n]*\n(.*?)```" %
                      re.escape(name), read(page), re.S)
        if not m:
            stale.append("%s: no help block" % name)
            continue
        rc, out, err = kbutest.kbu(name, "--help")
        # the usage lines (up to the first blank line): the options a page documents
        shown = m.group(1).split("\n\n", 1)[0].rstrip().split("\n")
        now = (out + err).split("\n\n", 1)[0].rstrip().split("\n")
        if [x.rstrip() for x in shown] != [x.rstrip() for x in now]:
            stale.append(name)
    assert not stale, "usage changed, regenerate these pages: " + ", ".join(stale)


def doc_files():
    yield README
    for top, _dirs, files in os.walk(DOCS):
        for f in files:
            if f.endswith(".md"):
                yield os.path.join(top, f)


def test_relative_links_resolve():
    broken = []
    for path in doc_files():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", read(path)):
            if re.match(r"[a-z]+:", target):
                continue
            if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), target))):
                broken.append("%s -> %s" % (os.path.relpath(path, kbutest.ROOT), target))
    assert not broken, "broken links: " + ", ".join(broken)


# Pages whose output blocks are regenerated examples (docs/commands/regen.py), and
# how many examples each has at least.
EXAMPLE_PAGES = {"README.md": 10, "docs/walkthrough.md": 10, "docs/recipes.md": 15,
                 "docs/triage.md": 10, "docs/tables.md": 4, "docs/testing.md": 1}
# The programs an example may start with: this repository's or the system's.
PROGRAMS = ("build/kbu", "scripts/kbu-triage", "scripts/kbu-gdb", "scripts/microvm", "gdb", "make",
            "/usr/bin/python3")
EXAMPLE = re.compile(r"<!-- run(?:\[(?P<opts>[^\]]*)\])?: (?P<cmd>.*?) -->\n"
                     r"```text\n(?P<out>.*?)```", re.S)


def regen_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "kbu_docs_regen", os.path.join(DOCS, "commands", "regen.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", sorted(EXAMPLE_PAGES))
def test_examples_name_real_commands(name):
    # Every example's command starts with a program of this repository or the
    # system, never a placeholder; the inputs it names are ones regen.py makes;
    # and each was filled in: the block after it starts with the command.
    text = read(os.path.join(kbutest.ROOT, name))
    examples = list(EXAMPLE.finditer(text))
    assert len(examples) >= EXAMPLE_PAGES[name]
    assert len(examples) == len(re.findall(r"^<!-- run", text, re.M)), \
        "a run comment without a text block after it"
    regen = regen_module()
    made = set(regen.DUMPS) | set(regen.INPUTS)
    for m in examples:
        opts = regen.parse_opts(m.group("opts"))
        cmds = m.group("cmd").split(" ;; ") if "multi" in opts else [m.group("cmd")]
        for cmd in cmds:
            first = cmd.split()[0]
            assert first in PROGRAMS, cmd
            assert os.path.isfile(os.path.join(kbutest.ROOT, first)) if "/" in first[1:] \
                else shutil.which(first), "%s: no program %s" % (cmd, first)
            for f in re.findall(r"--(?:core|phys) (\S+)", cmd):
                assert f.startswith("$") or f in made, "%s: regen.py makes no %s" % (cmd, f)
            # a dump an example takes with `kbu dump` serves the examples after it
            made.update(re.findall(r"kbu dump (?:-f )?([\w.-]+)", cmd))
        if "vm" in opts:
            assert opts["vm"] in regen.VMS, m.group("cmd")
        out = m.group("out")
        assert out.startswith("$ " + cmds[0]), "not filled in: " + m.group("cmd")
        assert "(replaced)" not in out and "[TIMEOUT]" not in out, m.group("cmd")
