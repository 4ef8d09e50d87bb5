"""TLS for the appliance: the operator's certificate, or a self-signed one made at first start."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import Any

from appliance.core.config import Settings

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
    if not (cert.is_file() and key.is_file()) or _is_ca(cert):
        # An older appliance made its certificate a CA (any certificate it signed would be trusted by
        # whoever trusted this one): replaced by a leaf certificate.
        folder.mkdir(parents=True, exist_ok=True)
        _self_signed(cert, key)
    return cert, key


def _is_ca(cert_path: Path) -> bool:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (ValueError, x509.ExtensionNotFound):
        return False


def certificate_names(cert_path: Path) -> set[str]:
    """The host names and addresses a certificate is for (its subject alternative names), lower case."""
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {n.lower() for n in names.get_values_for_type(x509.DNSName)} | {
        str(a) for a in names.get_values_for_type(x509.IPAddress)
    }


def _self_signed(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    hostname = socket.gethostname()
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, hostname), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sotto appliance")]
    )
    names: list[x509.GeneralName] = [
        x509.DNSName(hostname),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # A server certificate, not a CA: it cannot vouch for any other certificate.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


# TLS 1.2 suites: forward secrecy and AEAD only (no CBC, no RSA key exchange). TLS 1.3's own suites are
# all AEAD and are not affected by this list.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """TLS 1.2 at least; 1.3 is preferred by every client that has it."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_ciphers(TLS12_CIPHERS)
    return context


def redirect_app(https_port: int, allowed_hosts: set[str] | None = None) -> Any:
    """A plain-HTTP ASGI app that only sends clients to the HTTPS address: on one of `allowed_hosts` (the
    certificate's names), never to whatever Host header a request brings (that would be an open
    redirect to any site)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        host = raw[1:].split("]", 1)[0] if raw.startswith("[") else raw.rsplit(":", 1)[0]
        if allowed_hosts is not None and host.lower() not in allowed_hosts:
            body = b"Unknown host name. Use the appliance's address with https://\n"
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        shown = f"[{host}]" if ":" in host else host
        target = f"https://{shown}:{https_port}{scope.get('path', '/')}"
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        await send(
            {"type": "http.response.start", "status": 308, "headers": [(b"location", target.encode()), (b"content-length", b"0")]}
        )
        await send({"type": "http.response.body", "body": b""})

    return app
