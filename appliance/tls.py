"""TLS for the appliance: the operator's certificate, or a self-signed one made at first start."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import Any

from appliance.config import Settings

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def wanted(settings: Settings) -> bool:
    """auto: HTTPS everywhere except on a loopback address, where plain HTTP serves development."""
    mode = settings.security.tls
    return mode == "on" or (mode == "auto" and settings.server.host not in LOOPBACK_HOSTS)


def ensure_certificate(settings: Settings) -> tuple[Path, Path]:
    """(certificate, key): the operator's if configured, else a self-signed pair kept in the data dir."""
    security = settings.security
    if security.tls_cert:
        cert, key = Path(security.tls_cert), Path(security.tls_key)
        for path in (cert, key):
            if not path.is_file():
                raise FileNotFoundError(f"TLS file {path} does not exist (security.tls_cert / security.tls_key)")
        return cert, key
    folder = settings.storage.data_dir / "tls"
    cert, key = folder / "self-signed.crt", folder / "self-signed.key"
    if not (cert.is_file() and key.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        _self_signed(cert, key)
    return cert, key


def _self_signed(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    hostname = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sotto appliance")])
    names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost"),
                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """TLS 1.2 at least; 1.3 is preferred by every client that has it."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    return context


def redirect_app(https_port: int) -> Any:
    """A plain-HTTP ASGI app that only sends clients to the HTTPS address."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope.get("headers", [])).get(b"host", b"localhost").decode("latin-1").rsplit(":", 1)[0]
        target = f"https://{host}:{https_port}{scope.get('path', '/')}"
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        await send({"type": "http.response.start", "status": 308, "headers": [(b"location", target.encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    return app
