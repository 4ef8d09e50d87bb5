"""The cluster's keys: a certificate authority on the control node, and one key file per worker node.

All Ray traffic between nodes is gRPC over mutual TLS (Ray's RAY_USE_TLS): each side shows a
certificate signed by the cluster's CA and checks the other's. A process without such a certificate
cannot join the cluster, reach the control node's store or submit work. Ray checks the name in a
certificate against the address it dialled, so each node's certificate names its cluster address.

The CA's private key never leaves the control node's data dir. `appliance cluster add-node` makes a
node's key and certificate there and writes them, with the CA certificate, into one file (0600) that
the administrator carries to the node: an air-gapped site moves files by hand anyway, and the node
then needs nothing from the control node to start.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NODE_DAYS = 365
CA_DAYS = 3650
FILE_FORMAT = "sotto-cluster-node/1"
CONTROL_NAME = "control"


class ClusterKeyError(ValueError):
    """A key file is missing, unreadable or not for this cluster; the message says which."""


@dataclass(frozen=True)
class NodeKeys:
    """What a node needs for mutual TLS: its name, its address, its key and certificate, the CA's certificate."""

    name: str
    address: str
    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert_pem)

    @property
    def expires_at(self) -> datetime.datetime:
        return x509.load_pem_x509_certificate(self.cert_pem).not_valid_after_utc

    def to_file(self, path: Path) -> None:
        document = {
            "format": FILE_FORMAT,
            "name": self.name,
            "address": self.address,
            "key": self.key_pem.decode(),
            "certificate": self.cert_pem.decode(),
            "ca": self.ca_pem.decode(),
        }
        _write_secret(path, json.dumps(document, indent=1).encode())

    @classmethod
    def from_file(cls, path: Path) -> NodeKeys:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ClusterKeyError(f"cannot read the node key file {path}: {exc.strerror}") from None
        except ValueError:
            raise ClusterKeyError(f"{path} is not a node key file (made by `appliance cluster add-node`)") from None
        if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
            raise ClusterKeyError(f"{path} is not a node key file (made by `appliance cluster add-node`)")
        keys = cls(
            str(document["name"]),
            str(document["address"]),
            str(document["key"]).encode(),
            str(document["certificate"]).encode(),
            str(document["ca"]).encode(),
        )
        if keys.expires_at < datetime.datetime.now(datetime.UTC):
            raise ClusterKeyError(f"the key file for node {keys.name!r} expired on {keys.expires_at:%Y-%m-%d}: issue a new one")
        return keys

    def write_tls_files(self, directory: Path) -> TlsFiles:
        """The three PEM files Ray reads (RAY_TLS_SERVER_KEY and friends), private to this user."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = TlsFiles(directory / "node.key", directory / "node.crt", directory / "ca.crt")
        _write_secret(files.key, self.key_pem)
        _write_secret(files.cert, self.cert_pem)
        _write_secret(files.ca, self.ca_pem)
        return files


@dataclass(frozen=True)
class TlsFiles:
    key: Path
    cert: Path
    ca: Path

    def environment(self) -> dict[str, str]:
        return {
            "RAY_USE_TLS": "1",
            "RAY_TLS_SERVER_KEY": str(self.key),
            "RAY_TLS_SERVER_CERT": str(self.cert),
            "RAY_TLS_CA_CERT": str(self.ca),
        }


class Authority:
    """The cluster CA, kept in `<data>/cluster/` on the control node."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.key_path = directory / "ca.key"
        self.cert_path = directory / "ca.crt"

    def exists(self) -> bool:
        return self.key_path.is_file() and self.cert_path.is_file()

    def ensure(self) -> None:
        if self.exists():
            return
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sotto cluster CA")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_secret(self.key_path, _private_pem(key))
        _write_secret(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))

    def rotate(self) -> None:
        """A new CA: every certificate the old one signed stops working (the control node's own is made
        again at its next start). The way to cut off a node whose file was lost."""
        for path in (self.key_path, self.cert_path, *(self.directory / "tls").glob("*")):
            path.unlink(missing_ok=True)
        self.ensure()

    def issue(self, name: str, address: str, days: int = NODE_DAYS) -> NodeKeys:
        """A new key and certificate for the node `name` reachable at `address` (an IP address)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise ClusterKeyError(f"{address!r} is not an IP address (Ray connects to nodes by address)") from None
        self.ensure()
        ca_key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_pem = self.cert_path.read_bytes()
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            # Its cluster address, and loopback: a node's own processes dial each other there too.
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ip), x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            # Every node is both a server (its raylet, its workers) and a client of the others.
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        return NodeKeys(name, address, _private_pem(key), cert.public_bytes(serialization.Encoding.PEM), ca_pem)


def fingerprint(cert_pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _write_secret(path: Path, data: bytes) -> None:
    """Written 0600 from the first byte (never world-readable, even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
