"""strace, read the way an auditor would: every outbound connection or datagram, and every file a
process (each thread and child, native ones too) opened for writing or created. Shared by the single
box's no-egress test (tests/core/test_no_egress.py) and the cluster's (tests/cluster/test_cluster.py)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TRACED = (
    "socket,connect,sendto,sendmsg,sendmmsg,open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,"
    "link,linkat,symlink,symlinkat,truncate,unlink,unlinkat"
)
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
# Pseudo-files a process may open for writing without storing anything: the null device, terminals,
# its own /proc entries (thread names, OOM score).
HARMLESS_PREFIXES = (
    "/dev/null",
    "/dev/tty",
    "/dev/pts/",
    "/proc/self/",
    "/proc/thread-self/",
    "/dev/shm/sem.",
)  # POSIX semaphores (multiprocessing, joblib): RAM, and hold a counter


def _strace() -> str:
    path = shutil.which("strace")
    if path is None:
        pytest.fail("strace is required (scripts/test installs it)")
    return path


@dataclass
class Trace:
    """Parsed strace -ff output of every thread and child of the server."""

    lines: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, directory: Path) -> Trace:
        return cls([line for f in sorted(directory.glob("t.*")) for line in f.read_text(errors="replace").splitlines()])

    def calls(self, *names: str) -> list[str]:
        return [line for line in self.lines if line.split("(", 1)[0] in names]

    def outbound(self, peer_allowed: Callable[[str, int], bool] = lambda host, port: False) -> list[str]:
        """connect/sendto/sendmsg aimed at anything but loopback, a Unix socket or an allowed peer (the
        cluster's nodes, at their cluster ports), and any port-53 traffic."""
        bad = []
        for line in self.calls("connect", "sendto", "sendmsg", "sendmmsg"):
            if "sa_family=AF_UNIX" in line or "sa_family=AF_NETLINK" in line:
                continue
            loopback = re.search(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|"::ffff:127\.', line)
            if "sa_family=AF_INET" not in line:
                continue
            if "htons(53)" in line:
                bad.append(line)
                continue
            if loopback:
                continue
            peer = re.search(
                r'sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([\d.]+)"\)|inet_pton\(AF_INET6?, "(?:::ffff:)?([^"]+)")', line
            )
            if peer and peer_allowed(peer.group(2) or peer.group(3), int(peer.group(1))):
                continue
            bad.append(line)
        return bad

    def refused_sockets(self) -> list[str]:
        return [
            line for line in self.calls("socket") if "AF_UNIX" not in line and "AF_NETLINK" not in line and "= -1 EPERM" in line
        ]

    def writes_outside(self, data_dir: Path, cwd: Path, also: tuple[str, ...] = ()) -> list[str]:
        """Files opened for writing, created, renamed or removed anywhere but under `data_dir` (or the
        prefixes in `also`, e.g. a RAM filesystem)."""
        bad = []
        for line in self.lines:
            name = line.split("(", 1)[0]
            if name not in (
                "open",
                "openat",
                "openat2",
                "creat",
                "mkdir",
                "mkdirat",
                "rename",
                "renameat",
                "renameat2",
                "link",
                "linkat",
                "symlink",
                "symlinkat",
                "truncate",
                "unlink",
                "unlinkat",
            ):
                continue
            if name in ("open", "openat", "openat2") and not any(flag in line for flag in WRITE_FLAGS):
                continue
            for path in _paths(line, cwd):
                if path.startswith(HARMLESS_PREFIXES + also) or path == str(data_dir) or path.startswith(f"{data_dir}/"):
                    continue
                bad.append(line)
        return bad


def _paths(line: str, cwd: Path) -> list[str]:
    """The file paths a traced call names, made absolute (strace -y prints a directory fd as 3</path>)."""
    out = []
    base = str(cwd)
    dirfd = re.match(r"\w+\((\d+)<([^>]*)>,", line)
    if dirfd:
        base = dirfd.group(2)
    for quoted in re.findall(r'"((?:[^"\\]|\\.)*)"', line.split(") = ", 1)[0]):
        if quoted.startswith("/"):
            out.append(os.path.normpath(quoted))
        elif quoted and not quoted.startswith(("AF_", "O_")):
            out.append(os.path.normpath(os.path.join(base, quoted)))
    return out
