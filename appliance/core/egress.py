"""The no-egress guard: refuse any non-loopback network connection made from this process.

An audit hook (PEP 578) sees every `socket.connect` and `socket.getaddrinfo` in Python code, including
libraries' (huggingface_hub, telemetry clients). Refused attempts are logged with their stack.
Native code that opens sockets itself is outside its reach; that is why models load by local path
and incomplete model directories are refused before the native tokenizer could fetch anything.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import sys
import threading
import traceback
from typing import Any

log = logging.getLogger(__name__)

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYANNOTE_METRICS_ENABLED": "0",
    "DO_NOT_TRACK": "1",
    # onnxruntime >= 1.29's native telemetry opt-out (latched at its first session). The pinned 1.28.0
    # has no telemetry client; this keeps a later upgrade silent too.
    "ORT_DISABLE_TELEMETRY": "1",
}
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class EgressBlocked(ConnectionRefusedError):
    """A connection to a non-loopback address was refused by the appliance."""


_installed = False
_permitted = False  # only in the egress broker's own process (egress_broker.py), which checks its allow-list
_lock = threading.Lock()
attempts: list[dict[str, Any]] = []  # refused attempts, newest last (kept short for doctor/tests)
_also: set[str] = set()  # names and addresses allow() added: the one appliance a client command talks to


def is_loopback_host(host: Any) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) resolves the local wildcard, used for binding
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in LOOPBACK_NAMES or host == "":
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a hostname: resolving it could itself go to a DNS server
    return address.is_loopback or address.is_unspecified


def _also_allowed(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    return str(host).strip("[]").split("%")[0].lower() in _also


def _address_allowed(family: int, address: Any) -> bool:
    if family == getattr(socket, "AF_UNIX", None):
        return True
    if isinstance(address, tuple) and address:
        return is_loopback_host(address[0]) or _also_allowed(address[0])
    return False


def _refuse(event: str, target: Any) -> None:
    record = {"event": event, "target": repr(target), "stack": "".join(traceback.format_stack(limit=12))}
    with _lock:
        attempts.append(record)
        del attempts[:-50]
    log.warning("blocked outbound network attempt: %s %r\n%s", event, target, record["stack"])
    raise EgressBlocked(f"outbound network access is disabled on this appliance ({event} {target!r})")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _permitted:
        return
    if event == "socket.connect":
        sock, address = args
        if not _address_allowed(sock.family, address):
            _refuse(event, address)
    elif event == "socket.getaddrinfo":
        host = args[0]
        if not is_loopback_host(host) and not _also_allowed(host):
            _refuse(event, host)
    elif event == "socket.sendto":
        sock, address = args
        if not _address_allowed(sock.family, address):
            _refuse(event, address)


def install() -> None:
    """Set the offline environment and install the audit hook (once per process; it cannot be removed)."""
    global _installed
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    with _lock:
        if _installed:
            return
        sys.addaudithook(_hook)
        _installed = True


def permit_this_process() -> None:
    """For the egress broker's forked process only: its connections are the administrator's named
    exceptions, each checked against the allow-list before it is made (appliance/core/egress_broker.py)."""
    global _permitted
    _permitted = True


def allow(host: str) -> None:
    """Let this process also reach `host`: the appliance that a client of its API (`appliance mcp`) was
    pointed at, by name and by the addresses the name resolves to now. Nothing else is opened."""
    name = host.strip("[]").split("%")[0].lower()
    with _lock:
        _also.add(name)
    try:
        found = socket.getaddrinfo(name, None)
    except OSError:
        return  # unresolvable now: connecting will fail with the resolver's own error
    with _lock:
        _also.update(str(sockaddr[0]).split("%")[0].lower() for *_, sockaddr in found)
