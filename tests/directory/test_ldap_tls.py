"""The directory over TLS with the customer's own CA, against a real slapd with a certificate made here
(a CA and a server certificate for 127.0.0.1, with the cryptography package): LDAPS and StartTLS sign
in; a directory whose certificate another CA signed, and one whose certificate names another host, are
both refused before any password is sent, with an error an operator understands."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.core.config import LdapSettings
from appliance.core.egress_broker import Destination, DirectConnector
from appliance.directory.ldap import Directory, DirectoryUnavailable
from tests.directory_support import BASE, GROUPS, OTHER_HOST, PASSWORDS, SERVICE_DN, ServerTls, Slapd, people, slapd

# The same directory under a second loopback address is the "wrong host" (its certificate names 127.0.0.1).
pytestmark = pytest.mark.allow_hosts(["127.0.0.1", OTHER_HOST])


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(root: Path, common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = root / f"{common.replace(' ', '-')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _server_certificate(root: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, ip: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(ip))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = root / "server.pem", root / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass(frozen=True)
class World:
    server: Slapd
    ca: Path  # the customer's CA: it signed the directory's certificate
    other_ca: Path  # a CA that did not


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ldap-tls")
    ca_key, ca, ca_path = _ca(root, "Example Corp Root CA")
    _, _, other = _ca(root, "Somebody Else CA")
    # The certificate names 127.0.0.1 only: reached as 127.0.0.2, the same server is the wrong host.
    certificate, key = _server_certificate(root, ca_key, ca, "127.0.0.1")
    with slapd(root / "slapd", ServerTls(ca_path, certificate, key)) as running:
        yield World(running, ca_path, other)


def _directory(world: World, url: str, **overrides: object) -> Directory:
    port = int(url.rsplit(":", 1)[1])
    settings = LdapSettings(
        **{
            "url": url,
            "bind_dn": SERVICE_DN,
            "bind_password_file": str(world.server.password_file),
            "base_dn": BASE,
            "group_base_dn": GROUPS,
            "ca_file": str(world.ca),
            **overrides,  # type: ignore[arg-type]
        }
    )
    allowed = [Destination.parse(f"{host}:{port}") for host in ("127.0.0.1", OTHER_HOST)]
    return Directory(settings, DirectConnector(allowed))


def _ldaps(world: World, host: str = "127.0.0.1") -> str:
    return f"ldaps://{host}:{world.server.tls_port}"


def _ldap(world: World, host: str = "127.0.0.1") -> str:
    return f"ldap://{host}:{world.server.port}"


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_ldaps_and_starttls_with_the_customers_ca_sign_in(world: World, how: str) -> None:
    directory = _directory(world, _ldaps(world)) if how == "ldaps" else _directory(world, _ldap(world), start_tls=True)
    found = directory.sign_in("lena", PASSWORDS["lena"])
    assert found is not None and found.dn == people("lena") and found.email == "lena@example.org"
    assert directory.sign_in("lena", "a wrong password") is None


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_a_certificate_from_another_ca_is_refused_with_a_clear_error(world: World, how: str) -> None:
    other = {"ca_file": str(world.other_ca)}
    directory = (
        _directory(world, _ldaps(world), **other) if how == "ldaps" else _directory(world, _ldap(world), start_tls=True, **other)
    )
    with pytest.raises(DirectoryUnavailable) as refused:
        directory.sign_in("lena", PASSWORDS["lena"])
    message = str(refused.value)
    assert "not signed by the CA in ldap.ca_file" in message and str(world.other_ca) in message, message


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_a_certificate_for_another_host_is_refused_with_a_clear_error(world: World, how: str) -> None:
    directory = (
        _directory(world, _ldaps(world, OTHER_HOST))
        if how == "ldaps"
        else _directory(world, _ldap(world, OTHER_HOST), start_tls=True)
    )
    with pytest.raises(DirectoryUnavailable) as refused:
        directory.sign_in("lena", PASSWORDS["lena"])
    message = str(refused.value)
    assert f"is not for {OTHER_HOST}" in message and "ldap.url" in message, message
