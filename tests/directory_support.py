"""A real OpenLDAP server (Debian's slapd) for the directory tests: a throwaway configuration and
database under a temp directory, loaded with slapadd, served in the foreground on a loopback port.

The directory: people lena (in sotto-admins: admin), nico (in team-radio, which is itself a member of
sotto-users: nested), olga (in no mapped group), dora (locked by the ppolicy overlay's
pwdAccountLockedTime: disabled), and the service account that searches."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BASE = "dc=example,dc=org"
SERVICE_DN = f"cn=sotto-service,ou=services,{BASE}"
SERVICE_PASSWORD = "service secret 42"
PASSWORDS = {
    "lena": "lena's long password",
    "nico": "nico's long password",
    "olga": "olga's long password",
    "dora": "dora's long password",
}
GROUPS = f"ou=groups,{BASE}"
SLAPD = "/usr/sbin/slapd"
OTHER_HOST = "127.0.0.2"  # the same directory under another address (TLS tests: the wrong host)
SLAPADD = "/usr/sbin/slapadd"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
{tls}database mdb
maxsize 10485760
suffix "{base}"
rootdn "cn=admin,{base}"
rootpw "root secret"
directory {root}/db
overlay ppolicy
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"""


def _person(uid: str, mail: bool = True, locked: bool = False) -> str:
    lines = [
        f"dn: uid={uid},ou=people,{BASE}",
        "objectClass: inetOrgPerson",
        f"uid: {uid}",
        f"cn: {uid.title()}",
        f"sn: {uid.title()}",
        f"userPassword: {PASSWORDS[uid]}",
    ]
    if mail:
        lines.append(f"mail: {uid}@example.org")
    if locked:
        lines.append("pwdAccountLockedTime: 000001010000Z")  # locked for good (ppolicy)
    return "\n".join(lines)


def _group(cn: str, *members: str) -> str:
    return "\n".join([f"dn: cn={cn},{GROUPS}", "objectClass: groupOfNames", f"cn: {cn}", *(f"member: {m}" for m in members)])


def people(uid: str) -> str:
    return f"uid={uid},ou=people,{BASE}"


LDIF = "\n\n".join(
    [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example",
        f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: sotto-service\nuserPassword: {SERVICE_PASSWORD}",
        _person("lena"),
        _person("nico"),
        _person("olga"),
        _person("dora", locked=True),
        _group("sotto-admins", people("lena")),
        _group("team-radio", people("nico")),
        _group("sotto-users", f"cn=team-radio,{GROUPS}", people("dora")),
        _group("unrelated", people("olga")),
    ]
)


@dataclass(frozen=True)
class ServerTls:
    """The directory's certificate (PEM files): the CA that signed it, the certificate and its key."""

    ca: Path
    certificate: Path
    key: Path


@dataclass(frozen=True)
class Slapd:
    host: str
    port: int
    root: Path
    tls_port: int | None = None  # LDAPS, when started with a certificate (StartTLS is then on `port` too)

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def password_file(self) -> Path:
        return self.root / "service-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def slapd(root: Path, tls: ServerTls | None = None) -> Iterator[Slapd]:
    if not Path(SLAPD).exists():
        pytest.fail("Debian's slapd is required for the directory tests; scripts/test installs it")
    (root / "db").mkdir(parents=True)
    config = root / "slapd.conf"
    tls_config = (
        f"TLSCACertificateFile {tls.ca}\nTLSCertificateFile {tls.certificate}\nTLSCertificateKeyFile {tls.key}\n" if tls else ""
    )
    config.write_text(CONFIG.format(root=root, base=BASE, tls=tls_config))
    (root / "data.ldif").write_text(LDIF + "\n")
    subprocess.run([SLAPADD, "-f", str(config), "-l", str(root / "data.ldif")], check=True, capture_output=True)
    server = Slapd("127.0.0.1", _free_port(), root, _free_port() if tls else None)
    server.password_file.write_text(SERVICE_PASSWORD + "\n")
    listen = [f"{server.url}/"]
    if server.tls_port:
        # Also under a second loopback address, which a certificate for the first one does not name.
        listen += [f"ldaps://{server.host}:{server.tls_port}/", f"ldap://{OTHER_HOST}:{server.port}/"]
        listen += [f"ldaps://{OTHER_HOST}:{server.tls_port}/"]
    # -d 0: stays in the foreground (ours to stop), logs nothing.
    process = subprocess.Popen(
        [SLAPD, "-d", "0", "-h", " ".join(listen), "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                for port in (server.port, server.tls_port or server.port):
                    socket.create_connection((server.host, port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"slapd did not start: {process.stderr.read().decode() if process.stderr else ''}"
                    ) from None
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root / "db", ignore_errors=True)
