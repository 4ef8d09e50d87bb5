"""HTTPS with the generated certificate: protocol versions, headers, and the HTTP redirect."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest

from appliance.core import tls
from appliance.core.config import load
from appliance.web.server import BackgroundServer


@pytest.fixture
def tls_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load(None, {"APPLIANCE_DATA_DIR": str(tmp_path), "APPLIANCE_SECURITY__TLS": "on"})


def test_tls_wanted_auto_only_off_loopback(tmp_path: Path) -> None:
    assert not tls.wanted(load(None, {"APPLIANCE_SERVER__HOST": "127.0.0.1"}))
    assert tls.wanted(load(None, {"APPLIANCE_SERVER__HOST": "0.0.0.0"}))
    assert not tls.wanted(load(None, {"APPLIANCE_SERVER__HOST": "0.0.0.0", "APPLIANCE_SECURITY__TLS": "off"}))


def test_self_signed_certificate_is_made_once_and_kept(tls_settings) -> None:  # type: ignore[no-untyped-def]
    cert, key = tls.ensure_certificate(tls_settings)
    assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert tls.ensure_certificate(tls_settings) == (cert, key)
    assert cert.read_bytes() == tls.ensure_certificate(tls_settings)[0].read_bytes()


def test_https_protocol_and_security_headers(tls_settings) -> None:  # type: ignore[no-untyped-def]
    from appliance.web.app import create_app

    cert, key = tls.ensure_certificate(tls_settings)
    with BackgroundServer(create_app(tls_settings), certfile=cert, keyfile=key) as server:
        context = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection(("127.0.0.1", server.port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock,
        ):
            assert tls_sock.version() == "TLSv1.3"
        old = ssl.create_default_context(cafile=str(cert))
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", server.port)) as raw:
            old.wrap_socket(raw, server_hostname="127.0.0.1")
        twelve = ssl.create_default_context(cafile=str(cert))
        twelve.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection(("127.0.0.1", server.port)) as raw,
            twelve.wrap_socket(raw, server_hostname="127.0.0.1") as s12,
        ):
            assert s12.version() == "TLSv1.2"
        with httpx.Client(base_url=server.url, verify=context) as client:
            response = client.get("/privacy")
        assert response.status_code == 200
        headers = response.headers
        assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_plain_http_redirects_to_https() -> None:
    with (
        BackgroundServer(tls.redirect_app(8443, {"sotto.example", "::1"}), lifespan="off") as server,
        httpx.Client(base_url=server.url) as client,
    ):
        response = client.get("/api/v1/models?x=1", headers={"host": "sotto.example:80"}, follow_redirects=False)
        assert response.status_code == 308
        assert response.headers["location"] == "https://sotto.example:8443/api/v1/models?x=1"
        ipv6 = client.get("/", headers={"host": "[::1]:80"}, follow_redirects=False)
        assert ipv6.headers["location"] == "https://[::1]:8443/"
        # A Host header the certificate does not name is not reflected into a redirect (open redirect).
        evil = client.get("/login", headers={"host": "evil.example"}, follow_redirects=False)
        assert evil.status_code == 400 and "location" not in evil.headers


def test_self_signed_certificate_is_a_server_certificate_not_a_ca(tls_settings) -> None:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert, _key = tls.ensure_certificate(tls_settings)
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is False
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {"localhost", "127.0.0.1", "::1"} <= tls.certificate_names(cert)
    # A CA certificate left by an older version is replaced at the next start.
    old_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "old")])
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(old_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(old_key, hashes.SHA256())
    )
    cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    renewed, _ = tls.ensure_certificate(tls_settings)
    assert (
        x509.load_pem_x509_certificate(renewed.read_bytes()).extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        is False
    )


def test_tls12_offers_only_forward_secret_aead_suites(tls_settings) -> None:  # type: ignore[no-untyped-def]
    from appliance.web.app import create_app

    cert, key = tls.ensure_certificate(tls_settings)
    with BackgroundServer(create_app(tls_settings), certfile=cert, keyfile=key) as server:
        for suite in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"):
            cbc = ssl.create_default_context(cafile=str(cert))
            cbc.maximum_version = ssl.TLSVersion.TLSv1_2
            cbc.set_ciphers(suite)
            with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", server.port)) as raw:
                cbc.wrap_socket(raw, server_hostname="127.0.0.1")
        good = ssl.create_default_context(cafile=str(cert))
        good.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection(("127.0.0.1", server.port)) as raw,
            good.wrap_socket(raw, server_hostname="127.0.0.1") as s12,
        ):
            name, _, _ = s12.cipher()
        assert "GCM" in name or "CHACHA20" in name


def test_plain_http_on_localhost_has_headers_but_no_hsts(tmp_path: Path) -> None:
    from appliance.web.app import create_app

    with BackgroundServer(create_app(load(None, {"APPLIANCE_DATA_DIR": str(tmp_path)}))) as server:
        response = httpx.get(f"{server.url}/healthz")
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
