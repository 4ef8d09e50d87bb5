"""The cluster's keys: a node's file is a secret, names its address, is signed by this cluster's CA, and
is refused when it is not a key file, expired, or for another address."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from appliance.cluster import worker_node
from appliance.cluster.keys import Authority, ClusterKeyError, NodeKeys
from tests.support import settings_in


def test_a_node_file_is_owner_only_and_its_certificate_names_its_address(tmp_path: Path) -> None:
    authority = Authority(tmp_path / "cluster")
    keys = authority.issue("gpu-2", "10.20.0.12")
    keys.to_file(tmp_path / "gpu-2.sotto-node")
    assert (tmp_path / "gpu-2.sotto-node").stat().st_mode & 0o777 == 0o600
    assert authority.key_path.stat().st_mode & 0o777 == 0o600
    again = NodeKeys.from_file(tmp_path / "gpu-2.sotto-node")
    assert again == keys
    cert = x509.load_pem_x509_certificate(again.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.20.0.12") in names.get_values_for_type(x509.IPAddress)
    # Signed by this cluster's CA and no other: what both ends of every TLS connection check.
    ca = x509.load_pem_x509_certificate(authority.cert_path.read_bytes())
    cert.verify_directly_issued_by(ca)
    other = Authority(tmp_path / "other").issue("x", "10.20.0.12")
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(other.ca_pem))
    # The same CA for every node issued afterwards.
    assert authority.issue("gpu-3", "10.20.0.13").ca_pem == keys.ca_pem


def test_the_tls_files_make_a_working_mutual_tls_context(tmp_path: Path) -> None:
    files = Authority(tmp_path / "cluster").issue("gpu-2", "10.20.0.12").write_tls_files(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    context.verify_mode = ssl.CERT_REQUIRED
    assert files.environment()["RAY_USE_TLS"] == "1"
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in (files.key, files.cert, files.ca))


def test_bad_key_files_are_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ClusterKeyError, match="cannot read"):
        NodeKeys.from_file(tmp_path / "missing.sotto-node")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ClusterKeyError, match="not a node key file"):
        NodeKeys.from_file(tmp_path / "notes.txt")
    old = Authority(tmp_path / "cluster").issue("gpu-2", "10.20.0.12", days=0)  # valid until the moment it was made
    old.to_file(tmp_path / "old.sotto-node")
    with pytest.raises(ClusterKeyError, match="expired"):
        NodeKeys.from_file(tmp_path / "old.sotto-node")
    with pytest.raises(ClusterKeyError, match="not an IP address"):
        Authority(tmp_path / "cluster").issue("gpu-2", "gpu-2.intranet")


def test_a_node_started_at_another_address_than_its_file_says_is_refused(tmp_path: Path) -> None:
    Authority(tmp_path / "cluster").issue("gpu-2", "10.20.0.12").to_file(tmp_path / "gpu-2.sotto-node")
    settings = settings_in(tmp_path)
    with pytest.raises(worker_node.JoinError, match="add-node gpu-2 --address 10.20.0.13"):
        worker_node.prepare(settings, tmp_path / "gpu-2.sotto-node", "10.20.0.1:6379", "10.20.0.13", None)


def test_joining_a_control_node_that_does_not_answer_says_what_to_check(tmp_path: Path) -> None:
    from appliance.web.server import free_port

    files = Authority(tmp_path / "cluster").issue("gpu-2", "127.0.0.1").write_tls_files(tmp_path / "tls")
    worker_node.JOIN_CHECK_SECONDS, before = 2.0, worker_node.JOIN_CHECK_SECONDS
    try:
        with pytest.raises(worker_node.JoinError, match="could not join the cluster at 127.0.0.1"):
            worker_node.check_join(f"127.0.0.1:{free_port()}", files)
    finally:
        worker_node.JOIN_CHECK_SECONDS = before


def test_rotating_the_ca_cuts_off_every_file_it_signed(tmp_path: Path) -> None:
    authority = Authority(tmp_path / "cluster")
    old = authority.issue("gpu-2", "10.20.0.12")
    old.write_tls_files(tmp_path / "cluster" / "tls")
    authority.rotate()
    assert not (tmp_path / "cluster" / "tls" / "node.key").exists()  # the control node's, made again at start
    new_ca = x509.load_pem_x509_certificate(authority.cert_path.read_bytes())
    with pytest.raises(InvalidSignature):
        x509.load_pem_x509_certificate(old.cert_pem).verify_directly_issued_by(new_ca)
    x509.load_pem_x509_certificate(authority.issue("gpu-2", "10.20.0.12").cert_pem).verify_directly_issued_by(new_ca)
