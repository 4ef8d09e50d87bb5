"""egress.allow: a client command (`appliance mcp`) opens the no-egress guard for its one appliance and
nothing else. In a child process: the guard cannot be removed once installed."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO

PROBE = """
import socket
from appliance.core import egress

egress.install()
egress.allow("192.0.2.10")  # TEST-NET-1: never routed, so a connection fails fast or times out


def attempt(host):
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect((host, 9))
        except egress.EgressBlocked:
            return "blocked"
        except OSError:
            return "tried"
        return "connected"


print(attempt("192.0.2.10"), attempt("192.0.2.11"), attempt("127.0.0.1"))
try:
    socket.getaddrinfo("example.org", 443)
    print("resolved")
except egress.EgressBlocked:
    print("lookup blocked")
"""


def test_allow_opens_the_guard_for_one_host_only() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    allowed, other, loopback = result.stdout.split("\n")[0].split()
    assert (allowed, other, loopback) == ("tried", "blocked", "tried")
    assert result.stdout.split("\n")[1] == "lookup blocked"
