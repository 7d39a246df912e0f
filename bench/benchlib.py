"""What the bench_*.py scripts share: where things are, skipping, timing,
building a C benchmark against libkbu, finding the Linux target, timing boots."""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("KBU_BUILD", os.path.join(ROOT, "build"))
TESTS = os.path.join(ROOT, "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)


def skip(tag, why):
    """A benchmark whose inputs are missing says so and succeeds."""
    print(f"{tag}: skipped: {why}")
    sys.exit(0)


def run_main(tag, main):
    """sys.exit(main()); a RuntimeError is one 'failed' line and exit 1."""
    try:
        sys.exit(main())
    except RuntimeError as ex:
        print(f"{tag}: failed: {ex}")
        sys.exit(1)


def best_wall(argv, runs=5):
    """Best wall time of argv over runs; output discarded, a failure raises."""
    best = None
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.decode()[:300]}")
        best = t if best is None else min(best, t)
    return best


def build_libkbu_bench(tag, name):
    """Builds bench/NAME.c against build/libkbu.a into build/bench/NAME (skips if it cannot)."""
    lib = os.path.join(BUILD, "libkbu.a")
    if not os.path.exists(lib):
        subprocess.run(["make", "-s", "-C", os.path.join(ROOT, "native"), f"BUILD={BUILD}", lib],
                       check=False)
    if not os.path.exists(lib):
        skip(tag, f"{lib} is missing and could not be built")
    exe = os.path.join(BUILD, "bench", name)
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    libs = subprocess.run(["pkg-config", "--libs", "libelf", "capstone"], capture_output=True,
                          text=True).stdout.split()
    r = subprocess.run([os.environ.get("CC", "cc"), "-O2", "-std=c11", "-D_GNU_SOURCE",
                        "-I", os.path.join(ROOT, "native", "include"),
                        os.path.join(ROOT, "bench", name + ".c"), lib, *libs, "-o", exe],
                       capture_output=True, text=True)
    if r.returncode != 0:
        skip(tag, f"{name} did not build: " + r.stderr.strip()[:300])
    return exe


def linux_target_paths():
    """(key=value paths printed by scripts/linux-target, None) or (None, why it failed).
    The script fetches the Debian kernel on first use."""
    script = os.path.join(ROOT, "scripts", "linux-target")
    if not os.access(script, os.X_OK):
        return None, "scripts/linux-target is missing"
    try:
        out = subprocess.run([script, "--quiet"], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return None, "scripts/linux-target took more than 15 minutes"
    if out.returncode != 0:
        return None, "scripts/linux-target failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line), None


def linux_target():
    """The harness's Linux target, or None after saying why there is none."""
    import kbutest
    try:
        return kbutest.fetch_linux_target()
    except kbutest.LinuxTargetError as e:
        print("   no Linux target: %s" % e)
        return None


def boot_times(kernel, append, final, memory, runs, timeout, **kw):
    """Seconds from starting QEMU to the serial line matching final, once per run."""
    import kbutest
    times = []
    for _ in range(runs):
        q = kbutest.Qemu(kernel, memory=memory, append=append, **kw)
        t0 = time.monotonic()
        try:
            q.start()
            q.wait_serial(final, timeout=timeout)
            times.append(time.monotonic() - t0)
        finally:
            q.stop()
    return times
