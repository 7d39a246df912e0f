"""One set of rules: `kbu triage` on a dump and a recipe on the live guest ask
the same C code (kbu verdict). A change to what a rule weighs — here the
profile's placeholder time sources — changes both answers at once."""
import json
import os
import re

import pytest

import kbutest
from test_recipes import triage, verdict

PROFILES = os.path.join(kbutest.ROOT, "profiles")


@pytest.fixture(scope="module")
def ok_dump(tmp_path_factory):
    """The test kernel at its idle loop after a healthy boot (timecounter i8254)."""
    q = kbutest.Qemu(kbutest.GUEST_KERNEL, smp=2, memory="128M",
                     append="console=ttyS0 kbu.scenario=ok")
    try:
        q.start()
        q.wait_serial(r"^kbu-guest: idle", timeout=60)
        path = q.dump(str(tmp_path_factory.mktemp("verdict") / "ok.core"))
    finally:
        q.stop()
    return path


def strict_profile(tmp_path):
    """FreeBSD's profile, except that it calls i8254 a placeholder time source."""
    with open(os.path.join(PROFILES, "freebsd.ini")) as f:
        text = f.read()
    text = re.sub(r"^timesource_placeholders = .*$", "timesource_placeholders = dummy i8254",
                  text, flags=re.M)
    assert "dummy i8254" in text
    p = tmp_path / "strict.ini"
    p.write_text(text)
    return str(p)


def triage_timecounter(dump, *opts):
    rc, j, err = kbutest.kbu_json("triage", "--core", dump, "--kernel", kbutest.GUEST_KERNEL,
                                  *opts)
    assert rc == 0, err
    return {q["question"]: q for q in j["verdict"]["questions"]}["timecounter-stuck"]


def test_one_rule_for_triage_and_recipe(ok_dump, guest_kernel, tmp_path):
    # The built-in profile: i8254 is a real time source, in both.
    assert triage_timecounter(ok_dump)["status"] == 0
    j = verdict(triage("timecounter-stuck", guest_kernel, "kbu.scenario=ok"), 0)
    assert j["facts"]["now"] == "i8254"
    # The same rule weighing a different profile: both now call it stuck.
    strict = strict_profile(tmp_path)
    t = triage_timecounter(ok_dump, "--profile", strict)
    assert t["status"] == 1 and t["cause"].startswith("timecounter is still i8254"), t
    j = verdict(triage("timecounter-stuck", guest_kernel, "kbu.scenario=ok",
                       opts=["--profile", strict]), 1)
    assert j["verdict"]["code"] == "timesource.placeholder"
    assert j["verdict"]["cause"] == ("timecounter went 'dummy' -> 'i8254' and is still a "
                                     "placeholder (the freebsd profile's placeholders: dummy "
                                     "i8254)"), j["verdict"]["cause"]
    assert j["facts"]["now"] == "i8254"


def test_triage_lists_every_question_a_dump_can_answer(ok_dump):
    rc, j, err = kbutest.kbu_json("triage", "--core", ok_dump, "--kernel", kbutest.GUEST_KERNEL)
    assert rc == 0, err
    rc, qs, err = kbutest.kbu_json("verdict", "--list")
    assert rc == 0, err
    dump_questions = [q["name"] for q in qs["questions"] if not q["live_only"]]
    assert [q["question"] for q in j["verdict"]["questions"]] == dump_questions
    for q in j["verdict"]["questions"]:
        assert q["result"] in ("no problem", "problem", "undecided") and q["cause"]


def test_verdict_over_a_dump_matches_the_rule_inside_gdb(ok_dump, guest_kernel):
    """The same question from the CLI on the dump and from GDB on the live guest."""
    rc, cli, err = kbutest.kbu_json("verdict", "where-are-my-cpus", "--core", ok_dump,
                                    "--kernel", guest_kernel)
    assert rc == 0, err
    assert cli["status"] == 0 and cli["facts"]["kernel_cpus"] == 2
    out = kbutest.gdb_kbu(guest_kernel, None, [
        "target remote | %s serve --core %s --kernel %s" % (kbutest.KBU, ok_dump, guest_kernel),
        "kbu verdict where-are-my-cpus --json"], timeout=120)
    line = next(l for l in out.splitlines() if l.startswith('{"command": "verdict"'))
    gdb = json.loads(line)
    assert gdb["verdict"] == cli["verdict"]
    assert gdb["facts"]["table_cpus"] == cli["facts"]["table_cpus"] == 2
