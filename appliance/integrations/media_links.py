"""Importing a recording from an intranet media link: the administrator's list of media hosts (the
`media_hosts` table) and the fetcher that reads a link's media into memory.

Every connection goes through the egress connector's media path (appliance/core/egress_broker.py,
`open_media`): the host must be on the list at that moment, every address its name resolves to must be
allowed, and the socket is connected to an address from that same lookup. The fetcher adds what only
HTTP knows: each redirect is a new hop checked the same way (a redirect to a host not on the list, or
to a name that resolves to a link-local or metadata address, ends the import), the body is counted
against the upload cap as it arrives and the whole import against a deadline, and nothing is written
to disk: the bytes go into the same in-memory `Upload` a browser upload fills.

A page (an HTML document) is read for its media link with the standard library's HTML parser:
`<video>`/`<audio>` (their `src` or a `<source>`), then `og:video` / `og:audio`; that link is then
fetched as a direct one (docs/decisions.md, "Media links": why not yt-dlp).
"""

from __future__ import annotations

import http.client
import ipaddress
import posixpath
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Protocol
from urllib.parse import unquote, urljoin, urlsplit

import msgspec
import sqlite_utils

from appliance.core.clock import now
from appliance.core.egress_broker import Destination, Refused, Unreachable
from appliance.transcription.jobs import Upload

MAX_REDIRECTS = 5
MAX_PAGE_BYTES = 2 * 1024 * 1024  # a page bigger than this is not a page that embeds one recording
CHUNK = 64 * 1024
USER_AGENT = "Sotto-appliance (media link import)"
REDIRECTS = {301, 302, 303, 307, 308}
OG_MEDIA = {"og:video", "og:video:url", "og:video:secure_url", "og:audio", "og:audio:url", "og:audio:secure_url"}


class LinkError(ValueError):
    """The link cannot be imported; the message says why, for a person."""


class LinkRefused(LinkError):
    """The link's host is not a media host, or resolves to an address never connected to."""


class LinkUnreachable(LinkError):
    """A media host that did not answer, or answered with an error: the link may work later."""


class LinkTooLarge(LinkError):
    """The media is larger than one upload may be."""


class LinkTimeout(LinkError):
    """The media did not arrive within server.link_seconds."""


class MediaHost(msgspec.Struct, kw_only=True):
    name: str  # 'media.intranet.example' (ports 80 and 443) or 'media.intranet.example:8080'
    created_by: str | None
    created_at: str


# --------------------------------------------------------------------------- the list


def normalise_host(text: str) -> str:
    """A host name, an IP address, or either with ':port'; lower case. Refuses URLs and wildcards."""
    value = text.strip().lower().rstrip(".")
    if not value or "/" in value or "@" in value or "*" in value or " " in value:
        raise LinkError("Give a host name such as media.intranet.example, optionally with :port (not a URL).")
    host, port = value, None
    if value.startswith("["):  # [v6]:port
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            raise LinkError(f"{text!r} is not a host name or host:port.")
    elif value.count(":") == 1:
        host, port = value.split(":")
    if port is not None and (not port.isdigit() or not 0 < int(port) < 65536):
        raise LinkError(f"{text!r}: the port must be a number from 1 to 65535.")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        if not all(lbl and len(lbl) <= 63 and all(c.isalnum() or c == "-" for c in lbl) for lbl in labels):
            raise LinkError(f"{text!r} is not a host name.") from None
    return str(Destination(host, int(port))) if port else (f"[{host}]" if ":" in host else host)


def list_hosts(db: sqlite_utils.Database) -> list[MediaHost]:
    rows = db.execute("SELECT name, created_by, created_at FROM media_hosts ORDER BY name").fetchall()
    return [MediaHost(name=r[0], created_by=r[1], created_at=r[2]) for r in rows]


def host_names(db: sqlite_utils.Database) -> list[str]:
    return [
        r[0].strip("[]") if r[0].startswith("[") and r[0].endswith("]") else r[0]
        for r in db.execute("SELECT name FROM media_hosts")
    ]


def add_host(db: sqlite_utils.Database, text: str, created_by: str | None) -> MediaHost:
    name = normalise_host(text)
    host = MediaHost(name=name, created_by=created_by, created_at=now())
    db.execute(
        "INSERT INTO media_hosts (name, created_by, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        [host.name, host.created_by, host.created_at],
    )
    db.conn.commit()
    return next(h for h in list_hosts(db) if h.name == name)


def remove_host(db: sqlite_utils.Database, name: str) -> bool:
    try:
        key = normalise_host(name)
    except LinkError:
        return False
    cursor = db.execute("DELETE FROM media_hosts WHERE name = ?", [key])
    db.conn.commit()
    return cursor.rowcount > 0


def host_names_in_file(path: str) -> list[str]:
    """For the egress broker, which reads the list itself at each connection: read-only, no migrations."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return host_names(sqlite_utils.Database(conn))
    except sqlite3.OperationalError:  # before the first migration: no list yet, no host
        return []
    finally:
        conn.close()


# --------------------------------------------------------------------------- links


@dataclass(frozen=True)
class Link:
    scheme: str
    destination: Destination
    target: str  # path and query, as sent in the request line
    url: str

    @property
    def filename(self) -> str:
        """The last part of the path: what the job is called when the URL is not kept."""
        name = unquote(posixpath.basename(urlsplit(self.url).path)).strip()
        return name[:255] or self.destination.host


def parse_link(url: str) -> Link:
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise LinkError("The link must start with http:// or https:// and name a host.")
    if parts.username or parts.password:
        raise LinkError("Put no user name or password in the link.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise LinkError("The link's port is not a number from 1 to 65535.") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Link(parts.scheme, Destination(parts.hostname.lower().rstrip("."), port), target, text)


# --------------------------------------------------------------------------- pages


class _MediaFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.element: list[str] = []  # src of <video>/<audio> or of a <source> inside one
        self.meta: list[str] = []  # og:video / og:audio
        self._inside = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("video", "audio"):
            self._inside += 1
            if a.get("src"):
                self.element.append(a["src"])
        elif tag == "source" and self._inside and a.get("src"):
            self.element.append(a["src"])
        elif tag == "meta":
            prop = (a.get("property") or a.get("name") or "").lower()
            if prop in OG_MEDIA and a.get("content"):
                self.meta.append(a["content"])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("video", "audio") and self._inside:
            self._inside -= 1


def media_in_page(html: str, base: str) -> str | None:
    """The first media link a page embeds, made absolute; None when it embeds none."""
    finder = _MediaFinder()
    finder.feed(html)
    finder.close()
    for candidate in finder.element + finder.meta:
        absolute = urljoin(base, candidate.strip())
        if urlsplit(absolute).scheme in ("http", "https"):
            return absolute
    return None


# --------------------------------------------------------------------------- fetching


class MediaConnector(Protocol):
    def connect_media(self, host: str, port: int, timeout: float = ...) -> socket.socket: ...


@dataclass(frozen=True)
class Fetched:
    link: Link  # where the media came from, after redirects and a page
    content_type: str | None


@dataclass
class Fetcher:
    """Reads one link's media into an `Upload`; blocking, so the caller runs it in a thread."""

    connector: MediaConnector
    seconds: float  # the whole import, every hop included
    ca_file: str | None = None

    def fetch(self, url: str, upload: Upload) -> Fetched:
        deadline = time.monotonic() + self.seconds
        link = parse_link(url)
        followed_page = False
        for _hop in range(MAX_REDIRECTS + 2):
            response, connection, sock = self._get(link, deadline)
            try:
                if response.status in REDIRECTS:
                    location = response.getheader("location")
                    if not location:
                        raise LinkError(f"{link.destination.host} answered a redirect without a destination.")
                    link = parse_link(urljoin(link.url, location))
                    continue
                if response.status != 200:
                    raise LinkUnreachable(f"{link.destination.host} answered HTTP {response.status} for the link.")
                content_type = (response.getheader("content-type") or "").split(";")[0].strip().lower() or None
                if content_type in ("text/html", "application/xhtml+xml"):
                    if followed_page:
                        raise LinkError("The page links to another page, not to a recording.")
                    page = self._read_page(response, sock, deadline)
                    media = media_in_page(page, link.url)
                    if media is None:
                        raise LinkError("The page has no video or audio in it (no <video>, <audio> or og:video).")
                    link, followed_page = parse_link(media), True
                    continue
                self._read_into(response, sock, upload, deadline)
                if upload.size == 0:
                    raise LinkError("The link's file is empty.")
                return Fetched(link, content_type)
            finally:
                connection.close()
        raise LinkError(f"The link redirects more than {MAX_REDIRECTS} times.")

    def _get(self, link: Link, deadline: float) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, socket.socket]:
        left = self._left(deadline)
        host, port = link.destination.host, link.destination.port
        try:
            sock = self.connector.connect_media(host, port, min(left, 10.0))
        except Unreachable as exc:
            raise LinkUnreachable(f"{host} could not be reached ({exc}).") from None
        except Refused as exc:
            raise LinkRefused(f"The link was refused: {exc}.") from None
        sock.settimeout(left)
        try:
            if link.scheme == "https":
                context = ssl.create_default_context(cafile=self.ca_file or None)
                sock = context.wrap_socket(sock, server_hostname=host)
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise LinkError(f"{host}'s certificate could not be verified: {exc}") from None
        connection = http.client.HTTPConnection(host, port, timeout=left)
        connection.sock = sock  # already connected, to the checked address: http.client never resolves
        try:
            connection.putrequest("GET", link.target, skip_accept_encoding=True)
            connection.putheader("User-Agent", USER_AGENT)
            connection.putheader("Accept-Encoding", "identity")
            connection.endheaders()
            return connection.getresponse(), connection, sock
        except TimeoutError:
            connection.close()
            raise LinkTimeout(self._timeout_text()) from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise LinkUnreachable(f"{host} did not answer the request: {exc}") from None

    def _left(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LinkTimeout(self._timeout_text())
        return left

    def _timeout_text(self) -> str:
        return f"The media did not arrive within {self.seconds:g} seconds (server.link_seconds)."

    def _chunks(self, response: http.client.HTTPResponse, sock: socket.socket, deadline: float) -> Iterable[bytes]:
        while True:
            sock.settimeout(self._left(deadline))  # a slow trickle cannot outlast the deadline either
            try:
                chunk = response.read1(CHUNK)  # one receive: read() would wait for all of CHUNK
            except TimeoutError:
                raise LinkTimeout(self._timeout_text()) from None
            except (OSError, http.client.HTTPException) as exc:
                raise LinkError(f"The download was cut off: {exc}") from None
            if not chunk:
                return
            self._left(deadline)
            yield chunk

    def _read_page(self, response: http.client.HTTPResponse, sock: socket.socket, deadline: float) -> str:
        body = bytearray()
        for chunk in self._chunks(response, sock, deadline):
            body += chunk
            if len(body) > MAX_PAGE_BYTES:
                raise LinkError("The page is too large to look for a recording in.")
        charset = response.headers.get_content_charset() or "utf-8"
        try:
            return body.decode(charset, "replace")
        except LookupError:
            return body.decode("utf-8", "replace")

    def _read_into(self, response: http.client.HTTPResponse, sock: socket.socket, upload: Upload, deadline: float) -> None:
        length = response.getheader("content-length")
        if length and length.isdigit() and int(length) > upload.vault.max_upload:
            raise LinkTooLarge(too_large_text(upload.vault.max_upload))
        for chunk in self._chunks(response, sock, deadline):
            upload.append(chunk)  # counted against the upload cap and the audio memory, as an upload is


def too_large_text(limit: int) -> str:
    gib = limit / 1024**3
    size = f"{gib:.1f} GiB" if gib >= 1 else f"{limit / 1024**2:.0f} MiB"
    return f"The linked file is larger than this appliance accepts ({size} per file)."
