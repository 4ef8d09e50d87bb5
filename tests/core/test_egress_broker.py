"""The egress broker: a forked process that connects only to listed host:port pairs and never to a
link-local (metadata) address or to loopback reached through a name, handing back connected sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core.egress_broker import Broker, Destination, DirectConnector, Refused, Unreachable, address_refusal
from appliance.web.server import free_port


@pytest.fixture
def echo() -> Iterator[int]:
    port = free_port()
    server = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"hello " + conn.recv(100))

    threading.Thread(target=serve, daemon=True).start()
    yield port
    server.close()


def test_the_broker_connects_only_where_it_is_allowed(echo: int) -> None:
    broker = Broker([Destination("127.0.0.1", echo), Destination("169.254.169.254", 80), Destination("localhost", echo)])
    broker.start()
    try:
        with broker.connect("127.0.0.1", echo) as sock:  # a socket this process did not create
            sock.sendall(b"server")
            assert sock.recv(100) == b"hello server"
        with pytest.raises(Refused, match="not on this appliance's egress allow-list"):
            broker.connect("127.0.0.1", echo + 1)
        with pytest.raises(Refused, match="link-local"):
            broker.connect("169.254.169.254", 80)  # listed by mistake: still never the metadata service
        with pytest.raises(Refused, match="resolves to loopback"):
            broker.connect("localhost", echo)  # a name that lands on loopback (the rebinding trick)
        with broker.connect("127.0.0.1", echo) as sock:  # it kept serving after the refusals
            sock.sendall(b"again")
            assert sock.recv(100) == b"hello again"
    finally:
        broker.stop()


def test_media_hosts_are_read_by_the_broker_at_each_connection(echo: int, tmp_path: Path) -> None:
    """The media list changes at run time: the forked broker reads it itself (a file here, the database
    in `serve`), so a host listed after the fork is reachable and a removed one is not."""
    listed = tmp_path / "hosts"
    listed.write_text("")
    broker = Broker([], media_hosts=lambda: listed.read_text().split())
    broker.start()
    try:
        with pytest.raises(Refused, match="not one of this appliance's media hosts"):
            broker.connect_media("127.0.0.1", echo)
        listed.write_text(f"127.0.0.1:{echo} localhost:{echo} fd00:ec2::254")
        with broker.connect_media("127.0.0.1", echo) as sock:
            sock.sendall(b"media")
            assert sock.recv(100) == b"hello media"
        with pytest.raises(Refused, match="resolves to loopback"):
            broker.connect_media("localhost", echo)
        with pytest.raises(Refused, match="cloud metadata address"):
            broker.connect_media("fd00:ec2::254", 80)  # not link-local, still the metadata service
        with pytest.raises(Refused, match="not on this appliance's egress allow-list"):
            broker.connect("127.0.0.1", echo)  # a media host is not a general exception
        listed.write_text(f"127.0.0.1:{echo + 1}")
        with pytest.raises(Unreachable, match="cannot connect"):
            broker.connect_media("127.0.0.1", echo + 1)  # listed, nothing listening: not a refusal
    finally:
        broker.stop()


def test_the_same_rules_without_a_broker(echo: int) -> None:
    direct = DirectConnector([Destination("127.0.0.1", echo)])
    with direct.connect("127.0.0.1", echo) as sock:
        sock.sendall(b"x")
        assert sock.recv(100) == b"hello x"
    with pytest.raises(Refused):
        direct.connect("127.0.0.2", echo)
    assert address_refusal("::ffff:169.254.169.254", "metadata.internal") is not None  # mapped IPv4 too
    assert address_refusal("10.1.2.3", "hooks.intranet.example") is None
    with pytest.raises(ValueError, match="host:port"):
        Destination.parse("hooks.intranet.example")
