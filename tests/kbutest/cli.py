"""Run the kbu command-line tool."""
import json
import os

from . import load, paths


class KbuMissing(Exception):
    """build/kbu (or kbu-asan) is not built."""


def kbu(*args, asan=False, timeout=120, input=None):
    """Run build/kbu (build/kbu-asan with asan=True) with args; return (rc, stdout, stderr).
    ASan/UBSan reports make the sanitized binary exit non-zero (and print on stderr).
    `timeout` is in idle seconds (kbutest.load)."""
    exe = paths.KBU_ASAN if asan else paths.KBU
    if not os.access(exe, os.X_OK):
        raise KbuMissing("%s is not built (make -C native BUILD=%s)" % (exe, paths.BUILD))
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=98")
    p = load.run([exe] + [str(a) for a in args], input=input, timeout=timeout, env=env,
                 errors="replace")
    return p.returncode, p.stdout, p.stderr


def kbu_json(*args, asan=False, timeout=120):
    """kbu(..., '--json'); return (rc, parsed JSON or None if stdout is not JSON, stderr)."""
    rc, out, err = kbu(*args, "--json", asan=asan, timeout=timeout)
    try:
        obj = json.loads(out) if out.strip() else None
    except ValueError:
        obj = None
    return rc, obj, err
