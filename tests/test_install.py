"""kbu installed the way a Debian library and tool is: `make install` into a
staging tree (DESTDIR) and used from elsewhere with no KBU_* variable; `make
deb` unpacked and run; `make uninstall`; and a repository that names no
build machine's paths."""
import os
import re
import shutil
import subprocess

import pytest

import kbutest

PREFIX = "/opt/kbu-test"
ENV_KEEP = ("HOME", "LANG", "TERM", "TMPDIR", "ASAN_OPTIONS")


def clean_env(bindir=None, **extra):
    """An environment with no KBU_* variable and the installed bin/ first on PATH."""
    env = {k: v for k, v in os.environ.items() if k in ENV_KEEP}
    env["PATH"] = (bindir + ":" if bindir else "") + "/usr/bin:/bin"
    env.update(extra)
    return env


def run(argv, cwd, env, timeout=300, input=None):
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout, input=input)
    return p.returncode, p.stdout, p.stderr


def make(target, *args, timeout=600):
    p = subprocess.run(["make", "-s", "-C", kbutest.ROOT, target, "BUILD=" + kbutest.BUILD]
                       + list(args), capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "make %s failed:\n%s%s" % (target, p.stdout, p.stderr)
    return p.stdout + p.stderr


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """make install DESTDIR=<tmp> PREFIX=/opt/kbu-test; yields (destdir, root of the prefix)."""
    dest = str(tmp_path_factory.mktemp("destdir"))
    make("install", "DESTDIR=" + dest, "PREFIX=" + PREFIX)
    yield dest, dest + PREFIX
    shutil.rmtree(dest, ignore_errors=True)


def test_layout_is_a_debian_library_and_tool(staged):
    dest, p = staged
    for f in ("bin/kbu", "bin/kbu-gdb", "bin/kbu-triage"):
        assert os.access(os.path.join(p, f), os.X_OK), f
    lib = os.path.join(p, "lib")
    real = [f for f in os.listdir(lib) if re.match(r"libkbu\.so\.0\.\d+\.\d+$", f)]
    assert len(real) == 1, os.listdir(lib)
    assert os.readlink(os.path.join(lib, "libkbu.so.0")) == real[0]
    assert os.path.realpath(os.path.join(lib, "libkbu.so")) == os.path.join(lib, real[0])
    assert os.path.isfile(os.path.join(lib, "libkbu.a"))
    dyn = subprocess.run(["readelf", "-d", os.path.join(lib, real[0])], capture_output=True,
                         text=True).stdout
    assert "Library soname: [libkbu.so.0]" in dyn
    for f in ("include/kbu/command.h", "include/kbu/mptable.h", "lib/pkgconfig/kbu.pc",
              "share/kbu/gdbext/kbu.py", "share/kbu/gdbext/kbu/core.py",
              "share/kbu/recipes/tsc_not_initialized.py", "share/kbu/profiles/freebsd.ini",
              "share/man/man1/kbu.1", "share/man/man1/kbu-gdb.1", "share/man/man1/kbu-triage.1",
              "share/bash-completion/completions/kbu"):
        assert os.path.isfile(os.path.join(p, f)), f
    # nothing of the build machine leaks into what is installed
    for top, _dirs, files in os.walk(p):
        for f in files:
            path = os.path.join(top, f)
            if os.path.islink(path) or f.endswith((".a", ".so")) or ".so." in f or \
                    top.endswith("/bin") and f == "kbu":
                continue
            with open(path, errors="replace") as fh:
                assert kbutest.ROOT not in fh.read(), path


def test_installed_tools_run_from_elsewhere_without_kbu_variables(staged, guest_kernel,
                                                                   tmp_path):
    dest, p = staged
    env = clean_env(os.path.join(p, "bin"))
    rc, out, err = run(["kbu", "--version"], tmp_path, env)
    assert rc == 0 and re.match(r"kbu \d+\.\d+\.\d+$", out.strip()), out + err
    rc, cli, err = run(["kbu", "sym", "--kernel", guest_kernel, "lapic_init"], tmp_path, env)
    assert rc == 0, err
    addr = re.search(r"^  lapic_init\s+(0x[0-9a-f]+)", cli, re.M).group(1)
    rc, out, err = run(["kbu-gdb", "--batch", "--no-connect", guest_kernel, "--",
                        "-ex", "kbu sym lapic_init",
                        "-ex", "python import kbu.native; print('LIB', kbu.native.lib_path())",
                        "-ex", "kbu recipe --list"], tmp_path, env)
    out += err
    assert "Traceback" not in out, out
    assert re.search(r"^  lapic_init\s+%s" % addr, out, re.M), out
    lib = re.search(r"^LIB (.*)$", out, re.M).group(1)
    assert lib == os.path.join(p, "lib", "libkbu.so.0"), out
    assert "tsc-not-initialized" in out
    rc, out, err = run(["kbu-triage", "--help"], tmp_path, env)
    assert rc == 0 and out.startswith("usage: kbu-triage "), out + err


def test_a_c_program_builds_against_libkbu_with_pkg_config(staged, tmp_path):
    dest, p = staged
    (tmp_path / "prog.c").write_text(
        "#include <stdio.h>\n#include <kbu/command.h>\n#include <kbu/util.h>\n"
        "int main(void)\n{\n\tstruct kbu_option_info o[16];\n"
        "\tsize_t n = kbu_command_options(\"mptable\", o, 16);\n"
        "\tprintf(\"libkbu %s: mptable has %zu options\\n\", KBU_VERSION, n);\n"
        "\treturn n ? 0 : 1;\n}\n")
    env = clean_env(PKG_CONFIG_PATH=os.path.join(p, "lib", "pkgconfig"),
                    PKG_CONFIG_SYSROOT_DIR=dest)
    rc, flags, err = run(["pkg-config", "--cflags", "--libs", "kbu"], tmp_path, env)
    assert rc == 0, err
    assert "-lkbu" in flags and "-I%s/include" % p in flags, flags
    rc, out, err = run(["cc", "-o", "prog", "prog.c"] + flags.split(), tmp_path, env)
    assert rc == 0, err
    dyn = subprocess.run(["readelf", "-d", str(tmp_path / "prog")], capture_output=True,
                         text=True).stdout
    assert "Shared library: [libkbu.so.0]" in dyn
    rc, out, err = run(["./prog"], tmp_path, clean_env(LD_LIBRARY_PATH=os.path.join(p, "lib")))
    assert rc == 0 and re.match(r"libkbu \S+: mptable has \d+ options", out), out + err


def test_man_pages_render_with_a_section_per_command(staged, tmp_path):
    dest, p = staged
    env = clean_env(MANWIDTH="100")
    pages = {}
    for name in ("kbu", "kbu-gdb", "kbu-triage"):
        rc, out, err = run(["man", "-l", os.path.join(p, "share/man/man1/%s.1" % name)],
                           tmp_path, env)
        assert rc == 0 and "NAME" in out and "SYNOPSIS" in out, name + err
        assert "warning" not in err.lower(), err
        pages[name] = out
    rc, helptext, err = kbutest.kbu("--help")
    names = re.findall(r"^  ([a-z][a-z0-9-]*)  ", helptext.split("Commands:", 1)[1], re.M)
    for n in names:
        assert re.search(r"^   %s$" % re.escape(n), pages["kbu"], re.M), "no section for " + n
        rc, h, err = kbutest.kbu(n, "--help")
        usage = h.split("\n", 1)[0].split()
        assert " ".join(usage[1:4]) in " ".join(pages["kbu"].split()), n
    for opt in ("--core FILE", "--kernel ELF", "--json"):
        assert opt in pages["kbu"]
    assert "--port PORT" in pages["kbu-gdb"] and "--smp N" in pages["kbu-triage"]


def test_bash_completion_loads_and_completes(staged, tmp_path):
    dest, p = staged
    script = os.path.join(p, "share/bash-completion/completions/kbu")
    probe = (
        'source "$1" || exit 9\n'
        't() { COMP_WORDS=("${@}"); COMP_CWORD=$(($# - 1)); COMPREPLY=();\n'
        '      _kbu_complete "$1" "${@: -1}" "${@: -2:1}"; echo "${COMPREPLY[*]}"; }\n'
        't kbu mpt\n'
        't kbu mptable --t\n'
        't kbu vtop --mode 5\n'
        't kbu-triage tsc\n'
        't kbu-gdb --no-c\n'
        'complete -p kbu kbu-gdb kbu-triage\n')
    env = clean_env(os.path.join(p, "bin"))
    rc, out, err = run(["bash", "--norc", "--noprofile", "-c", probe, "probe", script],
                       tmp_path, env)
    assert rc == 0, out + err
    lines = out.splitlines()
    # --timeout is a global option, valid after the command too (kbu mptable --timeout 5 ...)
    assert lines[:5] == ["mptable", "--table --timeout", "5level", "tsc-not-initialized",
                         "--no-connect"], out
    assert "complete -F _kbu_complete kbu" in out


def test_deb_unpacks_and_runs(guest_kernel, tmp_path):
    if not shutil.which("dpkg-deb") or not shutil.which("dpkg-shlibdeps"):
        pytest.skip("dpkg-dev is not installed (scripts/deps --deb)")
    out = make("deb")
    deb = re.search(r"mkdeb: (\S+\.deb) ", out).group(1)
    rc, info, err = run(["dpkg-deb", "--info", deb], tmp_path, clean_env())
    assert rc == 0, err
    depends = re.search(r"^ Depends: (.*)$", info, re.M)
    assert depends and "libelf1" in depends.group(1) and "libcapstone" in depends.group(1), info
    unpacked = tmp_path / "root"
    rc, out, err = run(["dpkg-deb", "-x", deb, str(unpacked)], tmp_path, clean_env())
    assert rc == 0, err
    usr = str(unpacked / "usr")
    env = clean_env(os.path.join(usr, "bin"))
    rc, out, err = run(["kbu", "--version"], tmp_path, env)
    assert rc == 0 and out.startswith("kbu "), out + err
    rc, out, err = run(["kbu-gdb", "--batch", "--no-connect", guest_kernel, "--",
                        "-ex", "kbu sym lapic_init",
                        "-ex", "python import kbu.native; print('LIB', kbu.native.lib_path())"],
                       tmp_path, env)
    assert re.search(r"^  lapic_init\s+0x", out, re.M), out + err
    assert re.search(r"^LIB %s/lib/[^/]*/?libkbu\.so\.0$" % re.escape(usr), out, re.M), out
    assert os.path.isfile(os.path.join(usr, "share/man/man1/kbu.1.gz"))


def test_uninstall_removes_what_install_put(tmp_path):
    dest = str(tmp_path / "d")
    make("install", "DESTDIR=" + dest, "PREFIX=" + PREFIX)
    make("uninstall", "DESTDIR=" + dest, "PREFIX=" + PREFIX)
    left = [os.path.join(t, f) for t, _d, fs in os.walk(dest) for f in fs]
    assert not left, left


def test_repository_names_no_build_machine_path():
    # Absolute paths of a particular machine: a checkout, a home directory.
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    p = subprocess.run(["git", "grep", "-n", "-I", "-E",
                        r"(^|[^A-Za-z0-9_.$}])/(work|root|home|Users)/"],
                       cwd=kbutest.ROOT, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        pytest.skip("not a git checkout: %s" % p.stderr.strip())
    assert p.stdout == "", "machine paths in the repository:\n" + p.stdout
