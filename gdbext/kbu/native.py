"""ctypes binding to libkbu: contexts, the callback memory source, kbu_run.

The library is searched in: $KBU_LIB, `set kbu libpath`, then next to this
extension: PREFIX/lib (and PREFIX/lib/<multiarch>) when it is installed as
PREFIX/share/kbu/gdbext, <repo>/build in a source tree; then $KBU_PREFIX/lib
when set, and the system loader path.
"""
import ctypes
import ctypes.util
import json
import os
import sys

from . import core
from .core import KbuError

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(_HERE))  # the source tree, or PREFIX/share/kbu
SONAME = "libkbu.so.0"


class Err(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 512)]

    def text(self):
        return self.msg.decode("utf-8", "replace")


class Regs(ctypes.Structure):
    """Mirror of struct kbu_regs (regs.h)."""
    _fields_ = [("have", ctypes.c_uint32), ("bits", ctypes.c_int)] + \
        [(n, ctypes.c_uint64) for n in
         ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip rflags").split()] + \
        [(n, ctypes.c_uint16) for n in "cs ss ds es fs gs".split()] + \
        [(n, ctypes.c_uint64) for n in
         ("cs_base ss_base ds_base es_base fs_base gs_base kernel_gs_base "
          "cr0 cr2 cr3 cr4 cr8 efer gdt_base idt_base").split()] + \
        [("gdt_limit", ctypes.c_uint32), ("idt_limit", ctypes.c_uint32)]


HAVE_GPR, HAVE_SEG, HAVE_SEGBASE, HAVE_CR, HAVE_EFER, HAVE_DT = 1, 2, 4, 8, 16, 32

READ_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64,
                           ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t)
REGS_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(Regs),
                           ctypes.c_void_p, ctypes.c_size_t)
MONITOR_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                              ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t)


class CtxStruct(ctypes.Structure):
    """Mirror of struct kbu_ctx (command.h)."""
    _fields_ = [("mem", ctypes.c_void_p), ("kernel", ctypes.c_void_p),
                ("syms", ctypes.c_void_p), ("os", ctypes.c_char * 32), ("strict", ctypes.c_int)]


class Command(ctypes.Structure):
    pass


Command._fields_ = [("name", ctypes.c_char_p), ("summary", ctypes.c_char_p),
                    ("help", ctypes.c_char_p), ("needs", ctypes.c_int),
                    ("run", ctypes.c_void_p), ("next", ctypes.POINTER(Command))]

_lib = None
_lib_path = None


def _candidates():
    env = os.environ.get("KBU_LIB")
    if env:
        yield env
    setting = core.get_setting("libpath") if hasattr(core, "get_setting") else None
    if setting:
        yield os.path.join(setting, "libkbu.so") if os.path.isdir(setting) else setting
    for d in installed_libdirs():
        yield os.path.join(d, SONAME)
    if not installed_libdirs():
        yield os.path.join(REPO, "build", "libkbu.so")
    if os.environ.get("KBU_PREFIX"):
        yield os.path.join(os.environ["KBU_PREFIX"], "lib", SONAME)
    found = ctypes.util.find_library("kbu")
    if found:
        yield found


def installed_libdirs():
    """PREFIX/lib/<multiarch> and PREFIX/lib when this extension is installed as
    PREFIX/share/kbu/gdbext (no environment variable needed), else []."""
    share = os.path.dirname(REPO)
    if os.path.basename(REPO) != "kbu" or os.path.basename(share) != "share":
        return []
    libdir = os.path.join(os.path.dirname(share), "lib")
    multiarch = getattr(sys.implementation, "_multiarch", None)
    return ([os.path.join(libdir, multiarch)] if multiarch else []) + [libdir]


def _declare(lib):
    P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    sig = {
        "kbu_ctx_new": (P, []),
        "kbu_ctx_free": (None, [P]),
        "kbu_ctx_set_mem": (I, [P, P]),
        "kbu_ctx_load_kernel": (I, [P, S, ctypes.POINTER(Err)]),
        "kbu_ctx_load_symbols": (I, [P, S, ctypes.POINTER(Err)]),
        "kbu_run": (I, [P, I, ctypes.POINTER(S), I, ctypes.POINTER(P), ctypes.POINTER(Err)]),
        "kbu_free": (None, [P]),
        "kbu_mem_open_callback": (P, [READ_CB, REGS_CB, MONITOR_CB, I, P, ctypes.c_size_t,
                                      ctypes.POINTER(Err)]),
        "kbu_mem_flush": (None, [P]),
        "kbu_command_list": (ctypes.c_size_t, [ctypes.POINTER(ctypes.POINTER(Command)),
                                               ctypes.c_size_t]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args


def lib():
    """The loaded libkbu, or a KbuError saying where it was looked for."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    tried = []
    for path in _candidates():
        if not os.path.exists(path) and os.sep in path:
            tried.append(path)
            continue
        try:
            handle = ctypes.CDLL(path)
            _declare(handle)
        except (OSError, AttributeError) as e:
            tried.append("%s (%s)" % (path, e))
            continue
        _lib, _lib_path = handle, path
        return _lib
    raise KbuError("libkbu.so not found (build it: make -C native; or set kbu libpath); "
                   "tried: " + ", ".join(tried))


def lib_path():
    lib()
    return _lib_path


def forget_lib():
    """Drops the loaded handle so the next call searches again (libpath changed)."""
    global _lib
    _lib = None


def command_list():
    """[(name, summary)] of every libkbu command."""
    L = lib()
    arr = (ctypes.POINTER(Command) * 256)()
    n = L.kbu_command_list(arr, 256)
    res = []
    for i in range(min(n, 256)):
        c = arr[i].contents
        res.append((c.name.decode(), (c.summary or b"").decode()))
    return res


def _put_msg(buf, buflen, msg):
    if buf and buflen:
        data = msg.encode("utf-8", "replace")[:buflen - 1] + b"\0"
        ctypes.memmove(buf, data, len(data))


class Ctx:
    """A libkbu context: kernel ELF, symbols and (optionally) a memory source.

    source: an object with read(space, addr, length) -> bytes, regs(cpu) ->
    dict, monitor(cmd) -> str, ncpus() -> int (see memory.GdbSource). The
    ctypes callbacks are kept on this object so they outlive every C call.
    """

    def __init__(self, kernel=None, symbols=None, source=None, os_name="auto"):
        L = lib()
        self._L = L
        self._ctx = L.kbu_ctx_new()
        if not self._ctx:
            raise KbuError("kbu_ctx_new failed (out of memory)")
        self._mem = None
        self._cbs = None
        self.source = source
        self.kernel = kernel
        if os_name and os_name != "auto":
            c = ctypes.cast(self._ctx, ctypes.POINTER(CtxStruct)).contents
            c.os = os_name.encode()[:31]
        err = Err()
        if kernel and L.kbu_ctx_load_kernel(self._ctx, kernel.encode(), ctypes.byref(err)) != 0:
            self.close()
            raise KbuError(err.text())
        if symbols and L.kbu_ctx_load_symbols(self._ctx, symbols.encode(),
                                              ctypes.byref(err)) != 0:
            self.close()
            raise KbuError(err.text())
        if source is not None:
            self._attach(source)

    def _attach(self, source):
        L = self._L

        def read_cb(user, space, addr, buf, length, errbuf, errlen):
            try:
                data = source.read(space, addr, length)
                if len(data) != length:
                    raise KbuError("short read at 0x%x" % addr)
                ctypes.memmove(buf, data, length)
                return 0
            except Exception as e:
                _put_msg(errbuf, errlen, str(e))
                return -1

        def regs_cb(user, cpu, out, errbuf, errlen):
            try:
                vals = source.regs(cpu)
                r = out.contents
                ctypes.memset(ctypes.addressof(r), 0, ctypes.sizeof(Regs))
                for k, v in vals.items():
                    if hasattr(r, k):
                        setattr(r, k, v)
                return 0
            except Exception as e:
                _put_msg(errbuf, errlen, str(e))
                return -1

        def monitor_cb(user, cmd, outbuf, outlen, errbuf, errlen):
            try:
                text = source.monitor(cmd.decode())
                _put_msg(outbuf, outlen, text)
                return 0
            except Exception as e:
                _put_msg(errbuf, errlen, str(e))
                return -1

        self._cbs = (READ_CB(read_cb), REGS_CB(regs_cb), MONITOR_CB(monitor_cb))
        err = Err()
        mem = L.kbu_mem_open_callback(self._cbs[0], self._cbs[1], self._cbs[2],
                                      source.ncpus(), None, source.max_read, ctypes.byref(err))
        if not mem:
            raise KbuError(err.text())
        L.kbu_ctx_set_mem(self._ctx, mem)
        self._mem = mem

    def flush(self):
        if self._mem:
            self._L.kbu_mem_flush(self._mem)

    def run(self, argv, as_json=False):
        """Runs a libkbu command: (status, text). status 2 raises KbuError."""
        argv = [str(a) for a in argv]
        arr = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
        outp = ctypes.c_void_p()
        err = Err()
        st = self._L.kbu_run(self._ctx, len(argv), arr, 1 if as_json else 0,
                             ctypes.byref(outp), ctypes.byref(err))
        text = ""
        if outp.value:
            text = ctypes.string_at(outp.value).decode("utf-8", "replace")
            self._L.kbu_free(outp)
        if st == 2 and err.code:
            raise KbuError(err.text())
        return st, text

    def run_json(self, argv):
        st, text = self.run(argv, as_json=True)
        try:
            return json.loads(text)
        except ValueError:
            raise KbuError("%s: libkbu returned no JSON" % argv[0])

    def close(self):
        if self._ctx:
            self._L.kbu_ctx_free(self._ctx)
            self._ctx = None
            self._mem = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
