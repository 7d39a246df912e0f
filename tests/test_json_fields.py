"""Every command's --json holds what its page documents: each command (the CLI,
and inside GDB the GDB commands) runs with --json on real inputs (dumps of the
test kernel's boots, Debian's Linux) and its output is checked against the
"## JSON fields" table of docs/commands/NAME.md: every documented field is
there with its type (null only where the table allows it, absent only where
it says "optional"), and no top-level field is undocumented."""
import json
import os
import re
import shutil

import pytest

import kbutest

DOCS = os.path.join(kbutest.ROOT, "docs", "commands")
TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
         "object": dict, "null": type(None), "list": list}


def table(page):
    """[(path, [type words], optional)] of the page's "## JSON fields" table."""
    with open(os.path.join(DOCS, page + ".md")) as f:
        text = f.read()
    m = re.search(r"^## JSON fields\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, "docs/commands/%s.md has no '## JSON fields' section" % page
    rows = []
    for line in m.group(1).splitlines():
        cells = re.match(r"^\| `([^`]+)` \| ([^|]+) \| [^|]* \|$", line)
        if not cells:
            continue
        kind = cells.group(2).strip()
        optional = kind.endswith("(optional)")
        kind = kind.replace("(optional)", "").strip()
        rows.append((cells.group(1), [k.strip() for k in kind.split(" or ")], optional))
    assert rows, "docs/commands/%s.md: the JSON fields table has no rows" % page
    return rows


def type_ok(value, kinds):
    for k in kinds:
        if k.startswith("list of "):
            elem = k[len("list of "):].rstrip("s")
            if isinstance(value, list) and all(type_ok(v, [elem]) for v in value):
                return True
        elif k in TYPES:
            want = TYPES[k]
            # bool is an int in Python: an integer field must not be a boolean
            if k in ("integer", "number") and isinstance(value, bool):
                continue
            if isinstance(value, want):
                return True
        else:
            raise AssertionError("unknown type %r in a JSON fields table" % k)
    return False


def parents(obj, path):
    """(container, key) pairs for every place path names in obj."""
    segs = re.findall(r"[^.\[\]]+|\[\]", path)
    places = [(None, None, obj)]
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        nxt = []
        for _, _, v in places:
            if seg == "[]":
                if isinstance(v, list):
                    nxt += [(v, j, x) for j, x in enumerate(v)]
            elif isinstance(v, dict):
                if seg == "*":
                    nxt += [(v, k, x) for k, x in v.items()]
                elif last:
                    nxt.append((v, seg, v.get(seg, KeyError)))
                elif seg in v:
                    nxt.append((v, seg, v[seg]))
        places = nxt
    return places


def check(obj, page):
    """The differences between obj and its page's table (empty: it matches)."""
    assert isinstance(obj, dict), "not a JSON object: %r" % (obj,)
    rows = table(page)
    errors = []
    documented = {p.split(".")[0].split("[")[0] for p, _, _ in rows}
    for key in obj:
        if key not in documented:
            errors.append("undocumented field %r" % key)
    for path, kinds, optional in rows:
        for _, key, value in parents(obj, path):
            if value is KeyError:
                if not optional:
                    errors.append("%s: missing" % path)
            elif not type_ok(value, kinds):
                errors.append("%s: %r is not %s" % (path, value, " or ".join(kinds)))
    return errors


def assert_matches(obj, page):
    errors = check(obj, page)
    assert not errors, "docs/commands/%s.md does not describe this output:\n  %s" % (
        page, "\n  ".join(errors[:40]))


# ---- the inputs: the test kernel's boots, dumped once for the module ----------

class World:
    pass


@pytest.fixture(scope="module")
def world(tmp_path_factory, guest_kernel):
    w = World()
    d = tmp_path_factory.mktemp("json")
    w.kernel = guest_kernel
    with kbutest.Qemu(guest_kernel, smp=2, memory="128M",
                      append="console=ttyS0 kbu.scenario=tsc kbu.token=json") as q:
        q.start()
        q.wait_serial(r"panic: TSC not initialized", timeout=60)
        w.tsc = q.dump(str(d / "tsc.core"))
        w.lapic_text = str(d / "lapic.txt")
        with open(w.lapic_text, "w") as f:
            f.write(q.monitor("info lapic 0"))
    with kbutest.Qemu(guest_kernel, smp=2, memory="128M", acpi=True,
                      bios="/usr/share/seabios/bios-microvm.bin",
                      append="console=ttyS0 kbu.scenario=mpcorrupt") as q:
        q.start()
        q.wait_serial(r"Unknown MP Config Entry", timeout=60)
        w.seabios = q.dump(str(d / "seabios.core"))
    # A format with a %s (FreeBSD's clock calibration message), for kbu printf.
    rc, refs, err = kbutest.kbu_json("msgrefs", "--kernel", guest_kernel, "%s calibration failed")
    assert rc == 0 and refs["strings"], err
    w.calib = "0x%x" % refs["strings"][0]["addr"]
    yield w
    shutil.rmtree(str(d), ignore_errors=True)


def cli(*argv):
    rc, obj, err = kbutest.kbu_json(*argv)
    assert rc in (0, 1), err
    assert obj is not None, "no JSON from kbu %s: %s" % (" ".join(argv), err)
    return obj


# (case id, page, argv with {tsc}, {seabios}, {kernel}, {lapic}, {calib} filled in)
CLI_CASES = [
    ("acpi-none", "acpi", ["acpi", "--core", "{tsc}", "--kernel", "{kernel}"]),
    ("acpi-seabios", "acpi", ["acpi", "--core", "{seabios}", "--kernel", "{kernel}"]),
    ("asserts", "asserts", ["asserts", "--kernel", "{kernel}"]),
    ("cpuid-decode", "cpuid-decode",
     ["cpuid-decode", "0=0xd,0x68747541,0x444d4163,0x69746e65",
      "1=0x60fb1,0x800,0xf6d8320b,0x1fcbfbfd",
      "0x40000000=0x40000001,0x54474354,0x43544743,0x47435447", "0x15=0,0,0,0"]),
    ("cpus", "cpus", ["cpus", "--core", "{tsc}", "--kernel", "{kernel}"]),
    ("dmesg", "dmesg", ["dmesg", "--core", "{tsc}", "--kernel", "{kernel}"]),
    ("dmesg-quiet", "dmesg", ["dmesg", "-q", "--core", "{tsc}", "--kernel", "{kernel}"]),
    ("lapic-saved", "lapic", ["lapic", "--core", "{tsc}", "--kernel", "{kernel}",
                              "--qemu-text", "{lapic}"]),
    ("layout", "layout", ["layout", "{kernel}"]),
    ("mptable", "mptable", ["mptable", "--core", "{tsc}"]),
    ("mptable-seabios", "mptable", ["mptable", "--core", "{seabios}"]),
    ("mptable-table", "mptable", ["mptable", "--core", "{seabios}", "--kernel", "{kernel}",
                                  "--table", "mpct"]),
    ("msgrefs", "msgrefs", ["msgrefs", "--kernel", "{kernel}", "TSC"]),
    ("msgrefs-data", "msgrefs", ["msgrefs", "--kernel", "{kernel}", "--data", "timecounter"]),
    ("notes", "notes", ["notes", "{kernel}"]),
    ("os", "os", ["os", "--kernel", "{kernel}"]),
    ("os-given", "os", ["os", "--os", "netbsd"]),
    ("printf", "printf", ["printf", "--core", "{tsc}", "--kernel", "{kernel}", "--fmt-at",
                          "panicstr"]),
    ("printf-unreadable", "printf", ["printf", "--core", "{tsc}", "--kernel", "{kernel}",
                                     "--fmt", "{calib}", "--args", "0x8000000000000000"]),
    ("pvh", "pvh", ["pvh", "--core", "{tsc}", "--kernel", "{kernel}"]),
    ("pvh-seabios", "pvh", ["pvh", "--core", "{seabios}", "--kernel", "{kernel}"]),
    ("reloc", "reloc", ["reloc", "--core", "{tsc}", "--kernel", "{kernel}"]),
    ("serve", "serve", ["serve", "--core", "{tsc}"]),
    ("inject-site", "inject-site", ["inject-site", "--core", "{tsc}", "--lapic"]),
    ("inject-site-ap", "inject-site", ["inject-site", "--core", "{tsc}", "--cpu", "1"]),
    ("sym", "sym", ["sym", "--kernel", "{kernel}", "lapic_init", "0xffffffff80200010",
                    "no_such_symbol"]),
    ("sym-list", "sym", ["sym", "--kernel", "{kernel}", "--list"]),
    ("timesource", "timesource", ["timesource", "--core", "{tsc}", "--kernel", "{kernel}"]),
    ("timesource-list", "timesource", ["timesource", "--core", "{tsc}", "--kernel", "{kernel}",
                                       "--list"]),
    ("timesource-at", "timesource", ["timesource", "--core", "{tsc}", "--kernel", "{kernel}",
                                     "--at", "i8254_timecounter"]),
    ("triage", "triage", ["triage", "--core", "{tsc}", "--kernel", "{kernel}"]),
    ("verdict", "verdict", ["verdict", "--core", "{tsc}", "--kernel", "{kernel}",
                            "tsc-not-initialized"]),
    ("verdict-list", "verdict", ["verdict", "--list"]),
    ("vtop", "vtop", ["vtop", "--core", "{tsc}", "--kernel", "{kernel}", "lapic_init"]),
    ("vtop-off", "vtop", ["vtop", "--core", "{tsc}", "--mode", "off", "0x200000"]),
    ("x", "x", ["x", "--core", "{tsc}", "--kernel", "{kernel}", "xen_start32", "40"]),
    ("x-phys", "x", ["x", "-p", "--core", "{tsc}", "0x9fc00", "16"]),
]


def cli_commands():
    rc, out, err = kbutest.kbu("--help")
    return re.findall(r"^  ([a-z][a-z0-9-]*)  ", out.split("Commands:", 1)[1], re.M)


def test_every_cli_command_is_covered():
    covered = {page for _, page, _ in CLI_CASES}
    assert set(cli_commands()) <= covered, set(cli_commands()) - covered


@pytest.mark.parametrize("page,argv", [(p, a) for _, p, a in CLI_CASES],
                         ids=[c for c, _, _ in CLI_CASES])
def test_cli_json_matches_its_page(world, page, argv):
    args = [a.format(tsc=world.tsc, seabios=world.seabios, kernel=world.kernel,
                     lapic=world.lapic_text, calib=world.calib) for a in argv]
    obj = cli(*args)
    assert obj["command"] == argv[0]
    assert_matches(obj, page)


# ---- Debian's Linux -------------------------------------------------------------

LINUX_CASES = [
    ("cpus", ["cpus", "--core", "{core}", "--symbols", "{map}"]),
    ("dmesg", ["dmesg", "--core", "{core}", "--symbols", "{map}"]),
    ("pvh", ["pvh", "--core", "{core}", "--symbols", "{map}"]),
    ("mptable", ["mptable", "--core", "{core}"]),
    ("acpi", ["acpi", "--core", "{core}", "--symbols", "{map}"]),
    ("os", ["os", "--symbols", "{map}"]),
    ("notes", ["notes", "{vmlinux}"]),
    ("layout", ["layout", "{vmlinux}"]),
    ("sym", ["sym", "--symbols", "{map}", "startup_64", "linux_banner"]),
    ("reloc", ["reloc", "--core", "{core}", "--kernel", "{vmlinux}"]),
    ("triage", ["triage", "--core", "{core}", "--kernel", "{vmlinux}", "--symbols", "{map}"]),
    ("vtop", ["vtop", "--core", "{core}", "--symbols", "{map}", "linux_banner"]),
]


@pytest.mark.linux
@pytest.mark.slow
def test_linux_json_matches_the_pages(linux_dump, linux_target):
    d = linux_dump(smp=1)
    bad = []
    for page, argv in LINUX_CASES:
        args = [a.format(core=d.path, map=linux_target.system_map,
                         vmlinux=linux_target.vmlinux) for a in argv]
        errors = check(cli(*args), page)
        bad += ["%s: %s" % (" ".join(argv[:1]), e) for e in errors]
    assert not bad, "\n".join(bad[:40])


# ---- inside GDB -----------------------------------------------------------------

# (case id, page, GDB command). The output of each is read between markers.
GDB_CASES = [
    ("recipe", "recipe", "kbu recipe tsc-not-initialized --json"),
    ("recipe-two", "recipe", "kbu recipe tsc-not-initialized,where-are-my-cpus --json --here"),
    ("recipe-list", "recipe", "kbu recipe --list --json"),
    ("pvh", "pvh", "kbu pvh --json"),
    ("dmesg", "dmesg", "kbu dmesg --json"),
    ("os", "os", "kbu os --json"),
    ("reloc", "reloc", "kbu reloc --json"),
    ("lapic", "lapic", "kbu lapic --json"),
    ("cpuid", "cpuid-decode", "kbu cpuid 1 0x40000000 --json"),
    ("mptable", "mptable", "kbu mptable --json"),
    ("cpus", "cpus", "kbu cpus --json"),
    ("vtop", "vtop", "kbu vtop --json lapic_init"),
    ("x", "x", "kbu x --json -p 0x9fc00 16"),
    ("dump", "dump", "kbu dump {dump} --json"),
    ("inject-site", "inject-site", "kbu inject-site --lapic --json"),
    ("timesource", "timesource", "kbu timesource --list --json"),
    ("addr", "addr", "kbu addr lapic_init --json"),
    ("break", "break", "kbu break lapic_init --json"),
    # a static function inlined into its callers (FreeBSD's MP-table walker): one
    # location per caller, from GDB's debug information
    ("break-inlined", "break", "kbu break mptable_walk_table --json"),
    ("watch-report", "watch", "kbu watch report --json"),
]
# Armed at the first instruction, before the cases: the recipe runs the guest under them.
GDB_SETUP = ["kbu watch x2apic", "kbu watch timecounter"]


@pytest.fixture(scope="module")
def gdb_outputs(tmp_path_factory, guest_kernel):
    """{case id: output} of every GDB case, in one session on a live guest that
    panicked (the recipe runs it there)."""
    d = tmp_path_factory.mktemp("gdbjson")
    dump = str(d / "live.core")
    q = kbutest.Qemu(guest_kernel, smp=2, memory="128M",
                     append="console=ttyS0 kbu.scenario=tsc", paused=True)
    try:
        q.start()
        cmds = list(GDB_SETUP)
        for case, _, cmd in GDB_CASES:
            cmds += ["echo @@@ %s\\n" % case, cmd.format(dump=dump)]
        cmds.append("echo @@@ end\\n")
        out = kbutest.gdb_kbu(guest_kernel, q.port, cmds, timeout=240)
    finally:
        q.stop()
    parts = re.split(r"^@@@ (\S+)\n", out, flags=re.M)
    res = dict(zip(parts[1::2], parts[2::2]))
    yield res
    shutil.rmtree(str(d), ignore_errors=True)


def json_in(text):
    """The JSON object a command printed (GDB's own lines around it aside; one
    line, or indented over several)."""
    for m in re.finditer(r"^\{", text, re.M):
        try:
            return json.JSONDecoder().raw_decode(text[m.start():])[0]
        except ValueError:
            continue
    return None


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize("case,page", [(c, p) for c, p, _ in GDB_CASES],
                         ids=[c for c, _, _ in GDB_CASES])
def test_gdb_json_matches_its_page(gdb_outputs, case, page):
    text = gdb_outputs.get(case, "")
    obj = json_in(text)
    assert obj is not None, "kbu in GDB printed no JSON for %s:\n%s" % (case, text[-2000:])
    assert_matches(obj, page)
    if case == "recipe-list":
        assert obj["recipes"] and all(set(r) == {"name", "summary"} for r in obj["recipes"])
    if case == "dump":
        assert obj["cpus"] == 2 and os.path.getsize(obj["file"]) == obj["bytes"]
    if case == "break-inlined":
        assert len(obj["locations"]) > 1
    if case == "watch-report":
        assert [w["kind"] for w in obj["watches"]] == ["x2apic", "timecounter"]


@pytest.mark.slow
def test_gdb_watch_report_with_changes(qemu, guest_kernel):
    """kbu watch report --json once the watched variables changed: the kernel
    switches to x2APIC mode and selects a timecounter, and runs to its idle loop."""
    q = qemu(guest_kernel, smp=2, memory="128M", paused=True,
             append="console=ttyS0 kbu.scenario=x2apic")
    out = kbutest.gdb_kbu(guest_kernel, q.port, GDB_SETUP + [
        "kbu recipe tsc-not-initialized", "echo @@@ report\\n", "kbu watch report --json"],
        timeout=180)
    obj = json_in(out.split("@@@ report\n", 1)[-1])
    assert obj is not None, out[-2000:]
    assert_matches(obj, "watch")
    by = {w["kind"]: w for w in obj["watches"]}
    assert [(c["old"], c["new"]) for c in by["x2apic"]["changes"]] == [(0, 1)], by["x2apic"]
    assert by["x2apic"]["value"] == 1
    tc = by["timecounter"]
    assert tc["changes"] and tc["changes"][-1]["new"] == tc["value"], tc
    assert tc["changes"][0]["old_source"] == "dummy" and tc["source"] != "dummy", tc
