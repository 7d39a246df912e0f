"""The documentation keeps up with the code: every command `kbu --help` lists
has its page and its README example, every page's help block is what the
command prints today, and every relative link in the docs resolves."""
import os
import re

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


@pytest.mark.parametrize("name", ["README.md", "docs/walkthrough.md"])
def test_examples_name_real_commands(name):
    # Every example's command starts with a program of this repository or the
    # system, never a placeholder.
    text = read(os.path.join(kbutest.ROOT, name))
    cmds = re.findall(r"<!-- run(?:\[[^\]]*\])?: (.*?) -->", text)
    assert len(cmds) >= 10
    for cmd in cmds:
        first = cmd.split()[0]
        assert first in ("build/kbu", "scripts/kbu-triage", "scripts/kbu-gdb", "gdb", "make",
                         "/usr/bin/python3"), cmd
    # and each was filled in: the block after it starts with the command
    for m in re.finditer(r"<!-- run(?:\[[^\]]*\])?: (.*?) -->\n```text\n(.*?)```", text, re.S):
        assert m.group(2).startswith("$ " + m.group(1)), m.group(1)
