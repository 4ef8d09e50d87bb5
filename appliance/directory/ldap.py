"""An LDAP directory (Active Directory, OpenLDAP) through ldap3: who a user is, whether their password
is right, whether the directory disabled them, and their groups, nested ones included.

Every connection's socket comes from the egress broker (core/egress_broker.py): the server process
never opens one itself, and the broker connects only to the host:port an administrator allowed. TLS
(LDAPS or StartTLS) then runs here over that socket, checked against the customer's CA."""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from appliance.core.config import LdapSettings
from appliance.core.egress_broker import Connector

# AD's LDAP_MATCHING_RULE_IN_CHAIN: the server follows nested group membership itself.
IN_CHAIN = "1.2.840.113556.1.4.1941"
MAX_WALK = 64  # levels of nesting followed (a cycle stops earlier: each group is visited once)


VERIFY_FAILED = re.compile(r"certificate verify failed: ([^(']+)")
# OpenSSL's reasons for a certificate whose issuer is not among the trusted CAs.
UNTRUSTED = {
    "self-signed certificate in certificate chain",
    "self-signed certificate",
    "unable to get local issuer certificate",
    "unable to get issuer certificate",
    "unable to verify the first certificate",
}


def _close_quietly(conn: ldap3.Connection) -> None:
    """After a failed TLS handshake the socket may be gone: an unbind then has nothing to send on."""
    try:
        conn.unbind()
    except (LDAPException, OSError):
        if conn.socket is not None:
            conn.socket.close()


class DirectoryUnavailable(Exception):
    """The directory could not be reached or answered an error (not: the password was wrong)."""


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    email: str
    groups: frozenset[str] = field(default_factory=frozenset)  # lowercased DNs
    disabled: bool = False


class _Server(ldap3.Server):
    """One candidate address, never resolved here: the broker resolves (and checks) the name."""

    def candidate_addresses(self) -> list[list[Any]]:
        return [[socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (self.host, self.port), None, None]]


class Directory:
    def __init__(self, settings: LdapSettings, connector: Connector) -> None:
        self.settings = settings
        self.connector = connector
        url = urlsplit(settings.url)
        self.host = url.hostname or ""
        self.use_ssl = url.scheme == "ldaps"
        self.port = url.port or (636 if self.use_ssl else 389)
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=settings.ca_file or None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        self.server = _Server(self.host, port=self.port, use_ssl=self.use_ssl, tls=tls, connect_timeout=settings.timeout_seconds)

    @property
    def destination(self) -> str:
        return f"{self.host}:{self.port}"

    def _connection(self, user: str | None, password: str | None) -> ldap3.Connection:
        conn = ldap3.Connection(
            self.server,
            user=user,
            password=password,
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=self.settings.timeout_seconds,
            raise_exceptions=False,
            read_only=True,
        )
        strategy = conn.strategy
        timeout = float(self.settings.timeout_seconds)

        def open_socket(address: Any, use_ssl: bool = False, unix_socket: bool = False) -> None:
            # ldap3 would create and connect a socket here; the broker's connected one replaces it.
            try:
                conn.socket = self.connector.connect(self.host, self.port, timeout)
            except OSError as exc:
                raise DirectoryUnavailable(f"cannot connect to {self.destination}: {exc}") from None
            conn.socket.settimeout(timeout)
            if use_ssl:
                conn.server.tls.wrap_socket(conn, do_handshake=True)
            conn.closed = False

        strategy._open_socket = open_socket
        return conn

    def _open(self, user: str | None, password: str | None) -> tuple[ldap3.Connection, bool]:
        """A connection (TLS as configured) and whether the bind succeeded. A certificate that is not
        trusted, or not for the configured host, ends it before any password is sent."""
        conn = self._connection(user, password)
        try:
            conn.open()
            if self.settings.start_tls and not conn.start_tls():
                raise DirectoryUnavailable(f"StartTLS with {self.destination} failed: {conn.last_error}")
            bound = bool(conn.bind())
        except (LDAPException, ssl.SSLError, ssl.CertificateError) as exc:
            _close_quietly(conn)
            raise DirectoryUnavailable(self._tls_refusal(exc) or f"{self.destination}: {exc}") from None
        return conn, bound

    def _tls_refusal(self, exc: BaseException) -> str | None:
        """What an operator reads (the admin page's last check, the log) when TLS refused the directory:
        which setting to look at, rather than ldap3's dump of the certificate."""
        seen: BaseException | None = exc
        while seen is not None:
            # ldap3 re-raises OpenSSL's error as text (its own exception types): read the reason from that.
            verify = VERIFY_FAILED.search(str(seen))
            if verify:
                reason = verify.group(1).strip()
                if reason in UNTRUSTED:
                    ca = self.settings.ca_file or "empty: the system's CAs"
                    return (
                        f"the TLS certificate of {self.destination} is not signed by the CA in ldap.ca_file ({ca}): "
                        f"set ldap.ca_file to the PEM file of the CA that issued the directory's certificate ({reason})"
                    )
                return f"the TLS certificate of {self.destination} is refused: {reason}"
            if "doesn't match any name" in str(seen):
                return (
                    f"the TLS certificate of {self.destination} is not for {self.host}: write the name the "
                    "certificate was issued for in ldap.url (and allow that name in security.egress_allow)"
                )
            seen = seen.__cause__ or seen.__context__
        return None

    def _service(self) -> ldap3.Connection:
        password = Path(self.settings.bind_password_file).read_text().strip() if self.settings.bind_password_file else ""
        conn, bound = self._open(self.settings.bind_dn, password)
        if not bound:
            conn.unbind()
            raise DirectoryUnavailable(f"the service account could not bind to {self.destination}")
        return conn

    # --------------------------------------------------------------------------- sign-in

    def sign_in(self, username: str, password: str) -> DirectoryUser | None:
        """The user, with their groups and disabled flag, when the password is right; a disabled user
        also when the bind failed (a locked account cannot bind: the caller refuses either way, with
        one message); None when the user is unknown or the password wrong. Raises DirectoryUnavailable
        when the directory cannot answer."""
        username = (username or "").strip()
        # An empty password would be an "unauthenticated bind", which many servers answer as a success.
        if not username or not password or len(username) > 256:
            return None
        service = self._service() if self.settings.bind_dn else None
        try:
            if service is not None:
                dn = self._find(service, username)
                if dn is None:
                    return None
            else:
                dn = self.settings.user_dn_template.replace("{username}", escape_rdn(username))
            conn, bound = self._open(dn, password)
            try:
                if not bound:
                    found = self._describe(service, dn) if service is not None else None
                    return found if found is not None and found.disabled else None
                # The service account reads groups when there is one: users may not be allowed to.
                return self._describe(service or conn, dn)
            finally:
                conn.unbind()
        finally:
            if service is not None:
                service.unbind()

    def _find(self, conn: ldap3.Connection, username: str) -> str | None:
        search = self.settings.user_filter.replace("{username}", escape_filter_chars(username))
        conn.search(self.settings.base_dn, search, search_scope=ldap3.SUBTREE, attributes=[], size_limit=2)
        entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        return str(entries[0]["dn"]) if len(entries) == 1 else None  # none, or ambiguous: not signed in

    def _describe(self, conn: ldap3.Connection, dn: str) -> DirectoryUser | None:
        conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[self.settings.email_attribute])
        entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
        if not entries:
            return None
        values = entries[0]["attributes"].get(self.settings.email_attribute) or []
        email = (values[0] if isinstance(values, list) and values else values) or ""
        disabled = False
        if self.settings.disabled_filter:
            conn.search(dn, self.settings.disabled_filter, search_scope=ldap3.BASE, attributes=[])
            disabled = any(e.get("type") == "searchResEntry" for e in conn.response or [])
        return DirectoryUser(dn, str(email).strip().lower(), self._groups(conn, dn), disabled)

    def _groups(self, conn: ldap3.Connection, dn: str) -> frozenset[str]:
        base = self.settings.group_base_dn or self.settings.base_dn
        if not base:
            return frozenset()
        mode = self.settings.nested_groups
        if mode == "ad":
            return frozenset(self._members_of(conn, base, f"(member:{IN_CHAIN}:={escape_filter_chars(dn)})"))
        found: set[str] = set()
        frontier = {dn}
        for _ in range(MAX_WALK if mode == "walk" else 1):
            level: set[str] = set()
            for member in frontier:
                level |= self._members_of(
                    conn, base, f"(|(member={escape_filter_chars(member)})(uniqueMember={escape_filter_chars(member)}))"
                )
            frontier = level - found
            found |= level
            if not frontier:
                break
        return frozenset(found)

    @staticmethod
    def _members_of(conn: ldap3.Connection, base: str, search: str) -> set[str]:
        conn.search(base, search, search_scope=ldap3.SUBTREE, attributes=[])
        return {str(e["dn"]).lower() for e in conn.response or [] if e.get("type") == "searchResEntry"}

    def check_password(self, dn: str, password: str) -> bool:
        """A step-up check for a signed-in directory account: does this password bind as its DN now?"""
        if not password:
            return False
        conn, bound = self._open(dn, password)
        conn.unbind()
        return bound

    def lookup(self, dn: str) -> DirectoryUser | None:
        """The account as the directory has it now (the periodic check): None when it is gone."""
        if not self.settings.bind_dn:
            raise DirectoryUnavailable("checking accounts between sign-ins needs a service account (ldap.bind_dn)")
        conn = self._service()
        try:
            return self._describe(conn, dn)
        finally:
            conn.unbind()
