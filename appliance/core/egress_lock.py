"""The kernel egress lock: after `appliance serve` has bound its listeners, no thread of the process
(native ones included) and no process it starts can open a network socket again.

Why at the kernel, and why this cut (docs/decisions.md, "Egress lock"):

- The audit hook in `appliance/core/egress.py` only sees Python code. onnxruntime, CTranslate2, torch and
  FFmpeg open sockets from C++ threads that Python never hears about.
- A seccomp filter cannot read the address a `connect()` points to (it only sees registers, not the
  memory behind them), so the filter does not try: once the listeners exist, the server never needs
  to *create* an internet socket again. Accepted connections come from `accept()`, not `socket()`.
  So the filter refuses `socket()` for every address family except AF_UNIX and AF_NETLINK (kernel
  route queries; they leave no machine). A DNS lookup, a telemetry upload, a `curl` started by some
  library: all need a new socket and all fail with EPERM. That covers UDP `sendto`/`sendmsg` too,
  since there is no socket to send from. io_uring, which can create sockets without the `socket()`
  system call, is refused outright, and the 32-bit system call table (`int 0x80`, `socketcall`) kills
  the process (libseccomp's default for a foreign architecture).
- Refusals are counted: the filter hands each refused `socket()` to a small supervisor process
  (seccomp user notification) that answers EPERM, counts it in memory shared with the server and
  records it in `<data>/run/egress-lock.json` for `appliance doctor`. The supervisor is forked after
  the filter is loaded, so it is under the same lock. Kernels without user notification (before 5.0)
  get the same refusal as a plain EPERM, uncounted.
- Works under Docker's `no-new-privileges`, `cap_drop: [ALL]` and read-only root: an unprivileged
  process may load a seccomp filter once no_new_privs is set, which libseccomp does.

An on-prem endpoint that must be reachable later (a directory server, a local LLM server) will not
reopen this: a broker process, forked before the lock with only that allow-list, connects to those
names and passes connected sockets back over a Unix socket (SCM_RIGHTS). The server itself still
never creates an internet socket.

libseccomp is used through ctypes: its own Python binding is not on PyPI (only in distributions'
packages, built for their system interpreter), and the PyPI ctypes wrappers lack user notification.
The handful of calls here is the library's documented C API.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import logging
import mmap
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_NOTIFY = 0x7FC00000
SCMP_FLTATR_CTL_TSYNC = 4
SCMP_CMP_EQ = 4
SCMP_CMP_GE = 5
AF_MAX = 64  # above every family Linux defines (46 in 6.x); everything from here up is refused too

ALLOWED_FAMILIES = {socket.AF_UNIX, socket.AF_NETLINK}
FAMILY_NAMES = {int(f): f.name for f in socket.AddressFamily}


def scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _SeccompData(ctypes.Structure):
    _fields_ = [
        ("nr", ctypes.c_int),
        ("arch", ctypes.c_uint32),
        ("instruction_pointer", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 6),
    ]


class _Notif(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("data", _SeccompData)]


class _NotifResp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32), ("flags", ctypes.c_uint32)]


class LockError(RuntimeError):
    """The egress lock could not be installed (no libseccomp, seccomp disabled, ...)."""


@dataclass
class LockState:
    """What doctor, /metrics and the start-up log say about the lock."""

    mode: str = "off"  # off | counted | uncounted
    since: float = 0.0
    supervisor_pid: int | None = None
    state_file: Path | None = None
    _counter: mmap.mmap | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.mode != "off"

    @property
    def refused(self) -> int | None:
        """Refused socket() calls so far; None where the kernel cannot count them."""
        if self._counter is None:
            return None if self.active else 0
        return int(struct.unpack_from("<Q", self._counter, 0)[0])


_state = LockState()
_state_lock = threading.Lock()


def state() -> LockState:
    return _state


def state_path(data_dir: Path) -> Path:
    """Where the running server records its lock (read by `appliance doctor`)."""
    return data_dir / "run" / "egress-lock.json"


def _library() -> ctypes.CDLL:
    # The soname first: find_library would run `ldconfig -p` (a child process) at every start.
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        name = ctypes.util.find_library("seccomp")
        try:
            lib = ctypes.CDLL(name or "libseccomp.so", use_errno=True)
        except OSError as exc:
            raise LockError(f"libseccomp is not installed ({exc}); install the libseccomp2 package") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    if hasattr(lib, "seccomp_notify_fd"):
        lib.seccomp_notify_fd.argtypes = [ctypes.c_void_p]
        lib.seccomp_notify_receive.argtypes = [ctypes.c_int, ctypes.POINTER(_Notif)]
        lib.seccomp_notify_respond.argtypes = [ctypes.c_int, ctypes.POINTER(_NotifResp)]
    return lib


def _syscall(lib: ctypes.CDLL, name: str) -> int:
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number < 0:
        raise LockError(f"libseccomp does not know the system call {name}")
    return int(number)


def _build(lib: ctypes.CDLL, action: int) -> ctypes.c_void_p:
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise LockError("seccomp_init failed")
    add = lib.seccomp_rule_add_array
    sock = _syscall(lib, "socket")
    rules = [_ArgCmp(0, SCMP_CMP_EQ, family, 0) for family in range(AF_MAX) if family not in ALLOWED_FAMILIES]
    rules.append(_ArgCmp(0, SCMP_CMP_GE, AF_MAX, 0))
    for rule in rules:
        if add(ctx, action, sock, 1, ctypes.byref(rule)) < 0:
            lib.seccomp_release(ctx)
            raise LockError("could not add the socket() rule")
    # io_uring can create and connect sockets without the socket() system call.
    for name in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        if add(ctx, scmp_act_errno(errno.EPERM), _syscall(lib, name), 0, None) < 0:
            lib.seccomp_release(ctx)
            raise LockError(f"could not add the {name} rule")
    return ctypes.c_void_p(ctx)


def _load(lib: ctypes.CDLL, action: int) -> ctypes.c_void_p:
    ctx = _build(lib, action)
    # Every thread that exists now (OpenBLAS pools, ...) gets the filter too; new ones inherit it.
    lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)
    rc = lib.seccomp_load(ctx)
    if rc < 0:
        lib.seccomp_release(ctx)
        raise LockError(f"the kernel refused the seccomp filter ({os.strerror(-rc)})")
    return ctx


def install(state_file: Path | None = None) -> LockState:
    """Load the filter into this process (all its threads; children inherit it). Idempotent."""
    global _state
    with _state_lock:
        if _state.active:
            return _state
        lib = _library()
        counted = hasattr(lib, "seccomp_notify_fd")
        ctx = None
        if counted:
            try:
                ctx = _load(lib, SCMP_ACT_NOTIFY)
            except LockError as exc:
                log.info("seccomp user notification unavailable (%s); refusals will not be counted", exc)
                counted = False
        if ctx is None:
            ctx = _load(lib, scmp_act_errno(errno.EPERM))
            lib.seccomp_release(ctx)
            _state = LockState(mode="uncounted", since=time.time(), state_file=state_file)
            _write_state_file(_state, 0, [])
            return _state
        notify_fd = lib.seccomp_notify_fd(ctx)
        counter = mmap.mmap(-1, 8)  # MAP_SHARED | MAP_ANONYMOUS: the supervisor's count, read here
        pid = _start_supervisor(lib, notify_fd, counter, state_file)
        os.close(notify_fd)  # if the supervisor dies, refused calls fail at once instead of hanging
        lib.seccomp_release(ctx)
        _state = LockState(mode="counted", since=time.time(), supervisor_pid=pid, state_file=state_file, _counter=counter)
        _write_state_file(_state, 0, [])
        return _state


def _write_state_file(lock: LockState, refused: int, recent: list[dict[str, Any]], *, server_pid: int | None = None) -> None:
    if lock.state_file is None:
        return
    document = {
        "server_pid": server_pid or os.getpid(),
        "supervisor_pid": lock.supervisor_pid,
        "mode": lock.mode,
        "since": lock.since,
        "refused": refused if lock.mode == "counted" else None,
        "recent": recent,
    }
    lock.state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = lock.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(document), encoding="utf-8")
    os.replace(tmp, lock.state_file)


def read_state_file(path: Path) -> dict[str, Any] | None:
    """The running server's lock as recorded on disk, or None (no server has locked this data dir)."""
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document


def _start_supervisor(lib: ctypes.CDLL, notify_fd: int, counter: mmap.mmap, state_file: Path | None) -> int:
    server_pid = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    # The supervisor: single-threaded, under the same filter, holding nothing but the notify fd.
    try:
        os.closerange(3, notify_fd)
        os.closerange(notify_fd + 1, 1 << 16)
        _supervise(lib, notify_fd, counter, state_file, server_pid)
    finally:
        os._exit(0)


def _thread_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return "?"


def _supervise(lib: ctypes.CDLL, fd: int, counter: mmap.mmap, state_file: Path | None, server_pid: int) -> None:
    request, response = _Notif(), _NotifResp()
    recent: list[dict[str, Any]] = []
    lock = LockState(mode="counted", since=time.time(), supervisor_pid=os.getpid(), state_file=state_file)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while os.getppid() == server_pid:
        events = poller.poll(1000)
        if not events:
            continue
        if any(flags & (select.POLLHUP | select.POLLERR) for _, flags in events):
            return
        ctypes.memset(ctypes.byref(request), 0, ctypes.sizeof(request))
        if lib.seccomp_notify_receive(fd, ctypes.byref(request)) < 0:
            continue  # the caller gave up (signal) before we read it
        # Counted and named before answering, so the count is current when the refused call returns.
        refused = int(struct.unpack_from("<Q", counter, 0)[0]) + 1
        struct.pack_into("<Q", counter, 0, refused)
        family = int(request.data.args[0] & 0xFFFFFFFF)
        thread = _thread_name(request.pid)
        response.id, response.val, response.error, response.flags = request.id, 0, -errno.EPERM, 0
        lib.seccomp_notify_respond(fd, ctypes.byref(response))
        recent = [
            *recent,
            {"at": time.time(), "family": FAMILY_NAMES.get(family, str(family)), "thread": thread, "tid": int(request.pid)},
        ][-20:]
        # Content-free: which thread asked for which kind of socket; there is no address to log.
        os.write(
            2,
            f"egress lock: refused socket({FAMILY_NAMES.get(family, family)}) from thread {thread!r} "
            f"(tid {request.pid}); {refused} refused so far\n".encode(),
        )
        with contextlib.suppress(OSError):
            _write_state_file(lock, refused, recent, server_pid=server_pid)
