"""ctypes binding to libkbu: contexts, memory sources (the debugger one the GDB
extension drives, a dump, an image, a stub), kbu_run, and one KbuError
subclass per libkbu error code.

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

    def error(self, fallback="failed"):
        """The KbuError subclass of this error's code, with its message."""
        return error(self.code, self.text() or fallback)


# enum kbu_errcode (err.h)
(OK, EINVAL, EIO, EFORMAT, ENOTFOUND, ENOMEM, EUNSUPPORTED, ECONN, EFAULT,
 EINTR) = range(10)


class InputError(KbuError):
    """Bad argument or usage (KBU_EINVAL)."""
    code = EINVAL


class IOFailure(KbuError):
    """The OS refused a read or an open, or a debugger step failed (KBU_EIO)."""
    code = EIO


class FormatError(KbuError):
    """Bytes are not what they claim to be: truncated, corrupt (KBU_EFORMAT)."""
    code = EFORMAT


class NotFound(KbuError):
    """A symbol, table, CPU or structure is not there (KBU_ENOTFOUND)."""
    code = ENOTFOUND


class OutOfMemory(KbuError):
    code = ENOMEM


class Unsupported(KbuError):
    """The source, the stub or the format cannot do this (KBU_EUNSUPPORTED)."""
    code = EUNSUPPORTED


class TransportError(KbuError):
    """The stub or the debugger connection failed (KBU_ECONN)."""
    code = ECONN


class Fault(KbuError):
    """An address has no memory behind it (KBU_EFAULT)."""
    code = EFAULT


class Interrupted(KbuError):
    """The user interrupted it (Ctrl-C) (KBU_EINTR)."""
    code = EINTR


_BY_CODE = {c.code: c for c in (InputError, IOFailure, FormatError, NotFound, OutOfMemory,
                                Unsupported, TransportError, Fault, Interrupted)}


def error(code, text):
    """The exception for libkbu error code `code` (KbuError for an unknown one)."""
    return _BY_CODE.get(code, KbuError)(text)


def code_of(exc):
    """The libkbu error code a callback returns for exception exc."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and OK < code <= EINTR else EIO


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
PHYS, VIRT = 0, 1

# struct kbu_debugger_ops (mem.h)
_P, _Z = ctypes.c_void_p, ctypes.c_size_t
READ_CB = ctypes.CFUNCTYPE(ctypes.c_int, _P, ctypes.c_uint64, _P, _Z, _P, _Z)
PACKET_CB = ctypes.CFUNCTYPE(ctypes.c_int, _P, ctypes.c_char_p, _P, _Z, _P, _Z)
MONITOR_CB = ctypes.CFUNCTYPE(ctypes.c_int, _P, ctypes.c_char_p, _P, _Z, _P, _Z)
REGS_CB = ctypes.CFUNCTYPE(ctypes.c_int, _P, ctypes.c_int, ctypes.POINTER(Regs), _P, _Z)
NCPUS_CB = ctypes.CFUNCTYPE(ctypes.c_int, _P)


class DebuggerOps(ctypes.Structure):
    _fields_ = [("read", READ_CB), ("packet", PACKET_CB), ("monitor", MONITOR_CB),
                ("regs", REGS_CB), ("ncpus", NCPUS_CB), ("max_read", ctypes.c_size_t)]


class Stats(ctypes.Structure):
    """Mirror of struct kbu_mem_stats (mem.h)."""
    _fields_ = [("requests", ctypes.c_uint64), ("source_reads", ctypes.c_uint64),
                ("source_bytes", ctypes.c_uint64), ("cache_hits", ctypes.c_uint64)]


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
    E = ctypes.POINTER(Err)
    sig = {
        "kbu_ctx_new": (P, []),
        "kbu_ctx_free": (None, [P]),
        "kbu_ctx_set_mem": (I, [P, P]),
        "kbu_ctx_load_kernel": (I, [P, S, E]),
        "kbu_ctx_load_symbols": (I, [P, S, E]),
        "kbu_run": (I, [P, I, ctypes.POINTER(S), I, ctypes.POINTER(P), E]),
        "kbu_free": (None, [P]),
        "kbu_mem_open_debugger": (P, [ctypes.POINTER(DebuggerOps), P, E]),
        "kbu_mem_open_core": (P, [S, E]),
        "kbu_mem_open_phys_spec": (P, [S, E]),
        "kbu_mem_open_gdb": (P, [S, E]),
        "kbu_mem_learn_kernel": (None, [P, P]),
        "kbu_mem_read": (I, [P, I, ctypes.c_uint64, P, ctypes.c_size_t, E]),
        "kbu_mem_flush": (None, [P]),
        "kbu_mem_ncpus": (I, [P]),
        "kbu_mem_get_stats": (Stats, [P]),
        "kbu_mem_source_error": (I, [P, E]),
        "kbu_mem_clear_source_error": (None, [P]),
        "kbu_mem_phys_how": (S, [P]),
        "kbu_mem_debugger_phys_method": (S, [P]),
        "kbu_mem_kind": (S, [P]),
        "kbu_symtab_count": (ctypes.c_size_t, [P]),
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


class _Calls:
    """The callbacks of a debugger source, kept alive as long as the context.

    Each returns 0, the libkbu code of the exception it met (KbuError
    subclasses carry theirs), or -1 when the user interrupted it: Ctrl-C
    (any BaseException that is not an Exception) never leaves 0 behind with
    a buffer unfilled. After an interruption every call but a packet fails
    at once, so libkbu stops where it is instead of reading on, page by page
    (packets go on: libkbu switches the stub's physical mode back with one)."""

    def __init__(self, source):
        self.source = source
        self.interrupted = False

    def _fail(self, exc, errbuf, errlen):
        if not isinstance(exc, Exception):
            self.interrupted = True
            _put_msg(errbuf, errlen, "interrupted")
            return -1
        if isinstance(exc, KbuError):
            _put_msg(errbuf, errlen, str(exc))
            return code_of(exc)
        _put_msg(errbuf, errlen, "internal error: %s: %s" % (type(exc).__name__, exc))
        return EIO

    def read(self, user, addr, buf, length, errbuf, errlen):
        if self.interrupted:
            return -1
        try:
            data = self.source.read(addr, length)
            if len(data) != length:
                raise Fault("the debugger read %d of %d bytes at 0x%x" % (len(data), length, addr))
            ctypes.memmove(buf, data, length)
            return 0
        except BaseException as e:
            return self._fail(e, errbuf, errlen)

    def packet(self, user, pkt, reply, replylen, errbuf, errlen):
        # Not refused after an interruption: libkbu switches the stub's
        # physical mode back off with one.
        try:
            _put_msg(reply, replylen, self.source.packet(pkt.decode("latin-1")))
            return 0
        except BaseException as e:
            return self._fail(e, errbuf, errlen)

    def monitor(self, user, cmd, out, outlen, errbuf, errlen):
        if self.interrupted:
            return -1
        try:
            _put_msg(out, outlen, self.source.monitor(cmd.decode("utf-8", "replace")))
            return 0
        except BaseException as e:
            return self._fail(e, errbuf, errlen)

    def regs(self, user, cpu, out, errbuf, errlen):
        if self.interrupted:
            return -1
        try:
            vals = self.source.regs(cpu)
            r = out.contents
            ctypes.memset(ctypes.addressof(r), 0, ctypes.sizeof(Regs))
            for k, v in vals.items():
                if hasattr(r, k):
                    setattr(r, k, v)
            return 0
        except BaseException as e:
            return self._fail(e, errbuf, errlen)

    def ncpus(self, user):
        try:
            return int(self.source.ncpus())
        except BaseException as e:
            if not isinstance(e, Exception):
                self.interrupted = True
            return 0


def _member(source, name):
    """source.name when the source has that method, else None."""
    fn = getattr(source, name, None)
    return fn if callable(fn) else None


class Ctx:
    """A libkbu context: kernel ELF, symbols and (optionally) one memory source.

    The memory is one of: source, a debugger the GDB extension drives (an
    object with read(addr, length) -> bytes as the debugger reads memory, and
    optionally packet(text) -> reply, monitor(cmd) -> text, regs(cpu) -> dict
    of struct kbu_regs fields, ncpus() -> int, max_read; see
    memory.GdbSource); core, a QEMU dump; phys, a raw image FILE[@BASE]; gdb,
    a stub HOST:PORT or socket path read by libkbu's own client. libkbu keeps
    the one page cache of that memory (flush() drops it).
    """

    def __init__(self, kernel=None, symbols=None, source=None, os_name="auto", core=None,
                 phys=None, gdb=None):
        L = lib()
        self._L = L
        self._ctx = L.kbu_ctx_new()
        if not self._ctx:
            raise OutOfMemory("kbu_ctx_new failed (out of memory)")
        self._mem = None
        self._calls = self._ops = self._cbs = None
        self.source = source
        self.kernel = kernel
        if sum(x is not None for x in (source, core, phys, gdb)) > 1:
            self.close()
            raise InputError("give one memory source: --core, --phys or --gdb")
        if os_name and os_name != "auto":
            c = ctypes.cast(self._ctx, ctypes.POINTER(CtxStruct)).contents
            c.os = os_name.encode()[:31]
        err = Err()
        if kernel and L.kbu_ctx_load_kernel(self._ctx, kernel.encode(), ctypes.byref(err)) != 0:
            self.close()
            raise err.error()
        if symbols and L.kbu_ctx_load_symbols(self._ctx, symbols.encode(),
                                              ctypes.byref(err)) != 0:
            self.close()
            raise err.error()
        try:
            if source is not None:
                self._attach(source)
            elif core is not None:
                self._open(L.kbu_mem_open_core, core)
            elif phys is not None:
                self._open(L.kbu_mem_open_phys_spec, phys)
            elif gdb is not None:
                self._open(L.kbu_mem_open_gdb, gdb)
        except KbuError:
            self.close()
            raise

    def _set_mem(self, mem):
        self._L.kbu_ctx_set_mem(self._ctx, mem)
        self._mem = mem
        kernel = ctypes.cast(self._ctx, ctypes.POINTER(CtxStruct)).contents.kernel
        if kernel:
            # A source with no physical mode proves a direct map with the
            # kernel's own bytes before it reads physical memory through it.
            self._L.kbu_mem_learn_kernel(mem, kernel)

    def _open(self, opener, spec):
        err = Err()
        mem = opener(str(spec).encode(), ctypes.byref(err))
        if not mem:
            raise err.error()
        self._set_mem(mem)

    def _attach(self, source):
        calls = _Calls(source)
        ops = DebuggerOps()
        ops.read = READ_CB(calls.read)
        for name, ftype in (("packet", PACKET_CB), ("monitor", MONITOR_CB),
                            ("regs", REGS_CB), ("ncpus", NCPUS_CB)):
            if _member(source, name):
                setattr(ops, name, ftype(getattr(calls, name)))
        ops.max_read = int(getattr(source, "max_read", 0) or 0)
        err = Err()
        mem = self._L.kbu_mem_open_debugger(ctypes.byref(ops), None, ctypes.byref(err))
        if not mem:
            raise err.error()
        self._calls, self._ops = calls, ops   # the C side keeps pointers to these
        self._set_mem(mem)

    # -- memory ------------------------------------------------------------
    def has_memory(self):
        return bool(self._mem)

    def flush(self):
        """Drops libkbu's page cache (the guest ran, or memory was written)."""
        if self._mem:
            self._L.kbu_mem_flush(self._mem)

    def read(self, space, addr, length):
        """length bytes of guest memory (PHYS or VIRT) through libkbu's cache."""
        if not self._mem:
            raise InputError("no memory source")
        if length <= 0:
            return b""
        self._begin()
        buf = ctypes.create_string_buffer(length)
        err = Err()
        if self._L.kbu_mem_read(self._mem, space, addr, buf, length, ctypes.byref(err)) != 0:
            raise err.error("cannot read 0x%x" % addr)
        return buf.raw

    def ncpus(self):
        return self._L.kbu_mem_ncpus(self._mem) if self._mem else 0

    def stats(self):
        """{requests, source_reads, source_bytes, cache_hits} of the memory source."""
        if not self._mem:
            return {}
        st = self._L.kbu_mem_get_stats(self._mem)
        return {k: int(getattr(st, k)) for k, _ in Stats._fields_}

    def memory_kind(self):
        return self._L.kbu_mem_kind(self._mem).decode() if self._mem else None

    def phys_how(self):
        """How a source without physical reads read physical memory, or why it
        could not (None while that was not needed)."""
        v = self._L.kbu_mem_phys_how(self._mem) if self._mem else None
        return v.decode("utf-8", "replace") if v else None

    def phys_method(self):
        """A debugger source's way to physical memory: packet, xp, none, "" (not yet)."""
        v = self._L.kbu_mem_debugger_phys_method(self._mem) if self._mem else None
        return v.decode() if v is not None else None

    def nsyms(self):
        """How many symbols the context holds (kernel ELF and symbol map)."""
        syms = ctypes.cast(self._ctx, ctypes.POINTER(CtxStruct)).contents.syms
        return int(self._L.kbu_symtab_count(syms)) if syms else 0

    def _begin(self):
        if self._calls is not None:
            self._calls.interrupted = False
        if self._mem:
            self._L.kbu_mem_clear_source_error(self._mem)

    def _source_fault(self):
        """The transport fault or interruption met during the last command, if any:
        it is the answer even when the command carried on around it."""
        if not self._mem:
            return None
        err = Err()
        if self._L.kbu_mem_source_error(self._mem, ctypes.byref(err)) and \
                err.code in (ECONN, EINTR):
            return err.error()
        return None

    # -- commands ------------------------------------------------------------
    def run(self, argv, as_json=False):
        """Runs a libkbu command: (status, text). Status 2 raises the KbuError
        subclass of libkbu's error code."""
        argv = [str(a) for a in argv]
        arr = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
        outp = ctypes.c_void_p()
        err = Err()
        self._begin()
        st = self._L.kbu_run(self._ctx, len(argv), arr, 1 if as_json else 0,
                             ctypes.byref(outp), ctypes.byref(err))
        text = ""
        if outp.value:
            text = ctypes.string_at(outp.value).decode("utf-8", "replace")
            self._L.kbu_free(outp)
        fault = self._source_fault()
        if fault is not None:
            raise fault
        if st == 2 and err.code:
            raise err.error()
        return st, text

    def run_json(self, argv):
        st, text = self.run(argv, as_json=True)
        try:
            return json.loads(text)
        except ValueError:
            raise FormatError("%s: libkbu returned no JSON" % argv[0])

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
