"""Named exceptions to the no-egress rule: a broker process that connects only to the hosts an
administrator listed (`security.egress_allow`) and hands the connected socket back to the server.

Why a process: once `appliance serve` has loaded the kernel egress lock, no thread of the server can
create an internet socket (egress_lock.py). The broker is forked before the lock, so the filter does not
bind it, and it does one thing: for a (host, port) on its allow-list, resolve the name, refuse any
address no intranet service has (link-local, which includes the cloud metadata address 169.254.169.254,
multicast, unspecified, reserved), connect, and pass the connected socket back over a Unix socket pair
(SCM_RIGHTS). TLS and HTTP then run in the server over that socket. The allow-list is fixed when the
broker starts; a name that later resolves somewhere else (DNS rebinding) is checked again at each
connection. `serve` always starts the broker (media hosts can be listed at run time, below); with
neither list it connects nowhere.

Media links (an administrator's media hosts, kept in the database and changed at run time) take a
stricter path, `open_media`: the host must be on that list when the connection is asked for (the broker
reads the list itself, read-only, so the server cannot widen it by asking), *every* address the name
resolves to must pass (one link-local or metadata address among them refuses the host, rather than
trying the others), and the connection goes to an address from that same lookup, so a name cannot
resolve to something else between the check and the connect (DNS pinning).

Where the egress lock is off (tests, hosts without seccomp), `DirectConnector` applies the same checks
in the calling process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
# Cloud metadata services outside link-local space (AWS IPv6, Alibaba, Azure's wire server): a server on
# an intranet has no business there, and a redirect there is the classic way to steal credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16")
)
# Ports a media host named without one may be reached on.
MEDIA_DEFAULT_PORTS = (80, 443)


class Refused(ConnectionRefusedError):
    """The destination is not an allowed exception, or resolves to an address that is never allowed."""


class Unreachable(Refused):
    """An allowed destination that did not answer (nothing listens, no route): not a matter of policy."""


@dataclass(frozen=True)
class Destination:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """'host:port' or '[v6]:port'."""
        host, sep, port = text.strip().rpartition(":")
        host = host.strip("[]").lower()
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not host:port (for example hooks.intranet.example:443)")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def address_refusal(address: str, host: str) -> str | None:
    """Why a resolved address is never connected to, or None. Loopback only when the name itself is a
    loopback literal an administrator listed (a local service), never as where some name resolved."""
    ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return f"{address} is link-local (cloud metadata and auto-configured addresses are never reachable)"
    if ip in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return f"{address} is not a host address"
    if ip.is_loopback and not _is_literal(host, loopback=True):
        return f"{host} resolves to loopback {address}; list the loopback address itself if that is meant"
    return None


def _is_literal(host: str, *, loopback: bool = False) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback if loopback else True


def _open(destination: Destination, allowed: frozenset[Destination], timeout: float) -> socket.socket:
    if destination not in allowed:
        raise Refused(f"{destination} is not on this appliance's egress allow-list (security.egress_allow)")
    errors: list[str] = []
    usable = []
    for found in socket.getaddrinfo(destination.host, destination.port, type=socket.SOCK_STREAM):
        why = address_refusal(str(found[4][0]), destination.host)
        if why:
            errors.append(why)
        else:
            usable.append(found)
    sock = _connect_first(usable, timeout, errors)
    if sock is None:
        raise Refused(f"cannot connect to {destination}: {'; '.join(errors) or 'no address'}")
    return sock


AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


def _connect_first(addresses: Sequence[AddressInfo], timeout: float, errors: list[str]) -> socket.socket | None:
    """The first of these (already checked) addresses that answers; each failure is added to `errors`."""
    for family, kind, proto, _name, sockaddr in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            errors.append(f"{sockaddr[0]}: {exc.strerror or exc}")
            continue
        sock.settimeout(None)
        return sock
    return None


def media_destination_allowed(destination: Destination, hosts: Iterable[str]) -> bool:
    """`hosts` are an administrator's media hosts: 'name' (ports 80 and 443) or 'name:port'."""
    names = set(hosts)
    return str(destination) in names or (destination.host in names and destination.port in MEDIA_DEFAULT_PORTS)


def open_media(destination: Destination, hosts: Iterable[str], timeout: float) -> socket.socket:
    """Connect to a media host: on the list now, every resolved address allowed, connected to one of them."""
    if not media_destination_allowed(destination, hosts):
        raise Refused(f"{destination.host} is not one of this appliance's media hosts")
    if _is_literal(destination.host):  # refused before any lookup: an address says what it is
        why = address_refusal(destination.host, destination.host)
        if why:
            raise Refused(why)
    try:
        found = socket.getaddrinfo(destination.host, destination.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"{destination.host} cannot be resolved: {exc.strerror or exc}") from None
    for _family, _kind, _proto, _name, sockaddr in found:
        why = address_refusal(str(sockaddr[0]), destination.host)
        if why:
            raise Refused(why)
    errors: list[str] = []
    sock = _connect_first(found, timeout, errors)  # the checked addresses, not a second lookup
    if sock is None:
        raise Unreachable(f"cannot connect to {destination}: {'; '.join(errors) or 'no address'}")
    return sock


MediaHosts = Callable[[], Iterable[str]]


class Connector(Protocol):
    def connect(self, host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket: ...


class DirectConnector:
    """The same rules, in this process: for where no egress lock is loaded."""

    def __init__(self, allowed: Iterable[Destination], media_hosts: MediaHosts | None = None) -> None:
        self.allowed = frozenset(allowed)
        self.media_hosts = media_hosts

    def connect(self, host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
        return _open(Destination(host.lower(), port), self.allowed, timeout)

    def connect_media(self, host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
        return open_media(Destination(host.lower(), port), self.media_hosts() if self.media_hosts else (), timeout)


class Broker:
    """Forked before the egress lock; `connect()` is safe to call from any thread afterwards."""

    def __init__(self, allowed: Iterable[Destination], media_hosts: MediaHosts | None = None) -> None:
        """`media_hosts` is called in the broker process at each media connection (it reads the list)."""
        self.allowed = frozenset(allowed)
        self.media_hosts = media_hosts
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.pid: int | None = None

    def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:  # the broker: never returns
            parent.close()
            code = 0
            try:
                self._serve(child)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        child.close()
        self._sock, self.pid = parent, pid
        listed = ", ".join(sorted(map(str, self.allowed))) or "no configured host"
        log.info("egress broker %d: connections only to %s%s", pid, listed, " and the media hosts" if self.media_hosts else "")

    def _serve(self, channel: socket.socket) -> None:
        from appliance.core import egress

        egress.permit_this_process()  # this process's connections are the exceptions, checked below
        reader = channel.makefile("rb")
        for line in reader:
            try:
                request = json.loads(line)
                destination = Destination(str(request["host"]).lower(), int(request["port"]))
                timeout = float(request.get("timeout", CONNECT_TIMEOUT))
                if request.get("media"):
                    sock = open_media(destination, self.media_hosts() if self.media_hosts else (), timeout)
                else:
                    sock = _open(destination, self.allowed, timeout)
            except Exception as exc:  # every failure is answered; the broker keeps serving
                kind = b"U" if isinstance(exc, Unreachable) else b"E"
                socket.send_fds(channel, [kind + str(exc).encode()[:1000]], [])
                continue
            with contextlib.closing(sock):
                socket.send_fds(channel, [b"K"], [sock.fileno()])

    def connect(self, host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
        return self._ask({"host": host, "port": port, "timeout": timeout})

    def connect_media(self, host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
        return self._ask({"host": host, "port": port, "timeout": timeout, "media": True})

    def _ask(self, request: dict[str, object]) -> socket.socket:
        if self._sock is None:
            raise Refused("the egress broker is not running")
        with self._lock:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            message, fds, _flags, _addr = socket.recv_fds(self._sock, 2048, 1)
        if not message:
            raise Refused("the egress broker has stopped")
        if message[:1] != b"K" or not fds:
            for fd in fds:
                os.close(fd)
            raise (Unreachable if message[:1] == b"U" else Refused)(message[1:].decode(errors="replace"))
        return socket.socket(fileno=fds[0])

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None
