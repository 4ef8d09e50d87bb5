"""Importing from an intranet media link, through the real app: an intranet media server started here
(a real HTTP server on 127.0.0.1, which is also reachable by a second name, `localhost`) serves a
recording, a page that embeds it and redirects. An administrator lists 127.0.0.1:<port> as a media host;
a link to the file and one to the page both become jobs that the real tiny Whisper transcribes. The
second name, a redirect to it, a redirect to the cloud metadata address (even when an administrator
listed that address by mistake), a file over the upload cap and a server slower than server.link_seconds
are refused with a plain message, and nothing is left queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.core.egress_broker import Destination, DirectConnector, Refused, open_media
from appliance.integrations import media_links
from appliance.transcription import jobs
from appliance.web.server import free_port
from tests.support import Scenario, settings_in, wait_for_job

PAGE = """<!doctype html><html><head><title>All hands</title></head><body>
<h1>All hands, recorded</h1><video controls width="640"><source src="media/speech.wav" type="audio/wav"></video>
</body></html>"""
OG_PAGE = '<html><head><meta property="og:video" content="/media/speech.wav"></head><body>No player here.</body></html>'
BIG = 3 * 1024 * 1024  # over the 2 MiB upload cap these tests set


class MediaServer:
    """An intranet media server: a recording, pages that embed it, redirects, a large and a slow file."""

    def __init__(self, recording: bytes) -> None:
        self.port = free_port()
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                port = outer.port
                routes: dict[str, tuple[int, dict[str, str], bytes]] = {
                    "/media/speech.wav": (200, {"Content-Type": "audio/wav"}, recording),
                    "/all-hands.html": (200, {"Content-Type": "text/html; charset=utf-8"}, PAGE.encode()),
                    "/og.html": (200, {"Content-Type": "text/html"}, OG_PAGE.encode()),
                    "/empty.html": (200, {"Content-Type": "text/html"}, b"<html><body><p>Nothing to play.</p></body></html>"),
                    "/moved": (302, {"Location": "/media/speech.wav"}, b""),
                    "/to-second-name": (302, {"Location": f"http://localhost:{port}/media/speech.wav"}, b""),
                    "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
                    "/missing": (404, {"Content-Type": "text/plain"}, b"no such file"),
                }
                if self.path == "/big.wav":  # no Content-Length: the cap must hold while the bytes stream in
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/wav")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        for _ in range(BIG // 65536):
                            self.wfile.write(b"\0" * 65536)
                    except ConnectionError:  # the appliance stopped reading at its cap
                        pass
                    return
                if self.path == "/slow.wav":  # a trickle: each byte in time, the whole too late
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/wav")
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    try:
                        for _ in range(100):
                            self.wfile.write(b"\0")
                            self.wfile.flush()
                            time.sleep(0.1)
                    except ConnectionError:  # the appliance gave up at its deadline
                        pass
                    return
                status, headers, body = routes.get(self.path.split("?")[0], (404, {}, b""))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def media(speech_bytes: bytes) -> Iterator[MediaServer]:
    server = MediaServer(speech_bytes)
    yield server
    server.close()


def test_host_names_pages_and_the_checked_connection(media: MediaServer) -> None:
    assert media_links.normalise_host(" Media.Intranet.Example. ") == "media.intranet.example"
    assert media_links.normalise_host("10.0.0.5:8080") == "10.0.0.5:8080"
    assert media_links.normalise_host("[fd00::5]:8443") == "[fd00::5]:8443"
    for bad, says in [
        ("https://media.example/x", "not a URL"),
        ("*.example", "not a URL"),
        ("media.example:99999", "port"),
        ("me dia", "not a URL"),
        ("bad_name!", "not a host name"),
    ]:
        with pytest.raises(media_links.LinkError, match=says):
            media_links.normalise_host(bad)
    assert media_links.media_in_page(PAGE, "http://h/a/all-hands.html") == "http://h/a/media/speech.wav"
    assert media_links.media_in_page(OG_PAGE, "https://h/page") == "https://h/media/speech.wav"
    assert media_links.media_in_page("<video src='javascript:alert(1)'></video>", "http://h/") is None
    assert media_links.parse_link("http://h/a%20b/Board%20meeting.m4a?x=1").filename == "Board meeting.m4a"

    # The connection itself: listed host and port only; a name that resolves to loopback is not the
    # loopback literal an administrator listed (the rebinding trick); a metadata address never.
    hosts = [media.host, f"localhost:{media.port}", "169.254.169.254"]
    with open_media(Destination("127.0.0.1", media.port), hosts, 5) as sock:
        assert sock.getpeername()[0] == "127.0.0.1"
    for host, port, says in [
        ("127.0.0.1", media.port + 1, "not one of this appliance's media hosts"),
        ("localhost", media.port, "resolves to loopback"),
        ("169.254.169.254", 80, "link-local"),
        ("media.invalid", 80, "not one of"),
    ]:
        with pytest.raises(Refused, match=says):
            open_media(Destination(host, port), hosts, 5)
    with pytest.raises(Refused, match="cannot be resolved"):
        open_media(Destination("media.invalid", 80), ["media.invalid"], 5)


def test_the_fetcher_reads_into_memory_under_the_caps(media: MediaServer, speech_bytes: bytes) -> None:
    vault = jobs.AudioVault(capacity=16 * 1024 * 1024, max_upload=2 * 1024 * 1024)
    fetcher = media_links.Fetcher(DirectConnector((), lambda: [media.host]), seconds=30)
    upload = vault.upload()
    fetched = fetcher.fetch(media.url("/moved"), upload)
    assert upload.data() == speech_bytes and fetched.link.filename == "speech.wav" and vault.used == len(speech_bytes)
    upload.discard()
    assert vault.used == 0
    with pytest.raises(jobs.UploadTooLarge):
        fetcher.fetch(media.url("/big.wav"), vault.upload())
    assert vault.used == 0  # the partial download was given back
    slow = media_links.Fetcher(DirectConnector((), lambda: [media.host]), seconds=1)
    started, trickle = time.monotonic(), vault.upload()
    with pytest.raises(media_links.LinkTimeout, match="within 1 seconds"):
        slow.fetch(media.url("/slow.wav"), trickle)
    assert time.monotonic() - started < 3 and 0 < trickle.size < 100
    trickle.discard()  # the caller's part (appliance/app/link_import.py), as for an upload
    assert vault.used == 0


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory, media: MediaServer) -> Iterator[dict[str, Any]]:
    """The real app with the real tiny Whisper, an admin and a member; shared by the tests below."""
    root = tmp_path_factory.mktemp("links")
    scenario = Scenario(
        settings_in(
            root,
            APPLIANCE_SERVER__MAX_UPLOAD_BYTES=str(2 * 1024 * 1024),
            APPLIANCE_SERVER__LINK_SECONDS="3",
            APPLIANCE_WORKER__WORKERS_PER_DEVICE="1",
        )
    )
    admin = scenario.person("alice@example.org", role="admin", scope="admin")
    member = scenario.person("bob@example.org")
    with (
        scenario.serve() as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin.key}"}, timeout=60) as as_admin,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {member.key}"}, timeout=60) as as_member,
    ):
        yield {"admin": as_admin, "member": as_member, "settings": scenario.settings, "url": server.url, "key": member.key}
    scenario.close()


def test_a_link_and_a_page_become_transcripts_and_the_link_is_not_kept(appliance: dict[str, Any], media: MediaServer) -> None:
    admin, member = appliance["admin"], appliance["member"]
    assert admin.post("/api/v1/media-hosts", json={"name": "http://media.example/"}).status_code == 400
    assert member.post("/api/v1/media-hosts", json={"name": media.host}).status_code == 403  # admins only
    refused = member.post("/api/v1/transcriptions/from-link", json={"url": media.url("/media/speech.wav")})
    assert refused.status_code == 403 and "not one of this appliance's media hosts" in refused.json()["detail"]

    added = admin.post("/api/v1/media-hosts", json={"name": media.host.upper()})
    assert added.status_code == 201 and added.json()["name"] == media.host
    assert [h["name"] for h in admin.get("/api/v1/media-hosts").json()] == [media.host]

    page = member.post(
        "/api/v1/transcriptions/from-link", json={"url": media.url("/all-hands.html"), "options": {"language": "en"}}
    )
    assert page.status_code == 202, page.text
    direct = member.post(
        "/api/v1/transcriptions/from-link", json={"url": media.url("/media/speech.wav?v=2"), "keep_source": True}
    )
    assert direct.status_code == 202, direct.text
    for job, name in [(page.json(), "speech.wav"), (direct.json(), media.url("/media/speech.wav?v=2"))]:
        done = wait_for_job(member.get, job["job_id"])
        assert done["state"] == "done" and done["filename"] == name, done
        text = member.get(f"/api/v1/transcripts/{done['transcript_id']}").json()["text"].lower()
        assert "quick brown fox" in text and "lazy dog" in text, text
    assert page.json()["options"]["language"] == "en"

    # The page's address was never stored: not in a row, not in the write-ahead log.
    data_dir = appliance["settings"].storage.data_dir
    stored = b"".join(p.read_bytes() for p in data_dir.glob("appliance.db*"))
    assert b"all-hands" not in stored and media.url("/media/speech.wav?v=2").encode() in stored


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/to-second-name", 403, "resolves to loopback"),  # localhost is the same server, not the listed name
        ("/to-metadata", 403, "169.254.169.254 is not one of this appliance's media hosts"),
        ("/missing", 502, "HTTP 404"),
        ("/empty.html", 400, "no video or audio"),
        ("/big.wav", 413, "larger than this appliance accepts (2 MiB per file)"),
        ("/slow.wav", 504, "within 3 seconds"),
    ],
)
def test_what_is_refused_says_why_and_queues_nothing(
    appliance: dict[str, Any], media: MediaServer, path: str, status: int, says: str
) -> None:
    admin, member = appliance["admin"], appliance["member"]
    admin.post("/api/v1/media-hosts", json={"name": media.host})
    admin.post("/api/v1/media-hosts", json={"name": f"localhost:{media.port}"})  # listed, still refused: it is loopback
    before = len(member.get("/api/v1/transcripts").json()["items"])
    answer = member.post("/api/v1/transcriptions/from-link", json={"url": media.url(path)})
    assert answer.status_code == status and says in answer.json()["detail"], answer.text
    assert len(member.get("/api/v1/transcripts").json()["items"]) == before


def test_the_python_client_and_the_cli_import_a_link(appliance: dict[str, Any], media: MediaServer, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from appliance.cli import app
    from appliance.client import SottoClient, SottoError

    appliance["admin"].post("/api/v1/media-hosts", json={"name": media.host})
    with SottoClient(appliance["url"], appliance["key"]) as sotto:
        job = sotto.import_link(media.url("/og.html"), language="en")
        assert job["filename"] == "speech.wav" and job["options"]["language"] == "en"
        assert "quick brown fox" in sotto.transcript(sotto.wait(job["job_id"])["transcript_id"]).text.lower()
        with pytest.raises(SottoError, match="not one of this appliance's media hosts") as refused:
            sotto.import_link(media.url("/moved", host=f"media.invalid:{media.port}"))
        assert refused.value.status == 403
    runner = CliRunner()
    out = tmp_path / "all-hands.srt"
    common = ["--url", appliance["url"], "--api-key", appliance["key"]]
    done = runner.invoke(app, ["remote", "import-link", media.url("/all-hands.html"), *common, "-f", "srt", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text().startswith("1\n00:00:0") and "brown fox" in out.read_text().lower()
    refused_cli = runner.invoke(app, ["remote", "import-link", media.url("/to-second-name"), *common])
    assert refused_cli.exit_code == 1 and "resolves to loopback" in refused_cli.output


def test_a_metadata_address_listed_by_mistake_is_still_refused_and_a_removed_host_is_gone(
    appliance: dict[str, Any], media: MediaServer
) -> None:
    admin, member = appliance["admin"], appliance["member"]
    admin.post("/api/v1/media-hosts", json={"name": media.host})
    assert admin.post("/api/v1/media-hosts", json={"name": "169.254.169.254"}).status_code == 201
    answer = member.post("/api/v1/transcriptions/from-link", json={"url": media.url("/to-metadata")})
    assert answer.status_code == 403 and "169.254.169.254 is link-local" in answer.json()["detail"], answer.text
    bad = member.post("/api/v1/transcriptions/from-link", json={"url": "ftp://media.example/a.wav"})
    assert bad.status_code == 400 and "http:// or https://" in bad.json()["detail"]
    unknown = member.post("/api/v1/transcriptions/from-link", json={"url": media.url("/moved"), "options": {"colour": "red"}})
    assert unknown.status_code == 400, unknown.text
    assert admin.delete(f"/api/v1/media-hosts/{media.host}").status_code == 204
    assert admin.delete(f"/api/v1/media-hosts/{media.host}").status_code == 404
    gone = member.post("/api/v1/transcriptions/from-link", json={"url": media.url("/moved")})
    assert gone.status_code == 403, gone.text


def test_in_chromium_an_admin_lists_a_host_and_a_page_link_becomes_a_transcript(
    appliance: dict[str, Any], media: MediaServer, browser: Any
) -> None:
    """On a phone-sized screen, keyboard where it matters: Enter adds a host, Esc keeps one, Enter removes
    it; on New transcription, Enter adds the link to the list, Transcribe imports it with the page's
    options and the same progress row ends with the transcript; a link to an unlisted host says why."""
    from tests.support import ADMIN_PASSWORD

    url = appliance["url"]
    admin = appliance["admin"]
    for host in admin.get("/api/v1/media-hosts").json():
        admin.delete(f"/api/v1/media-hosts/{host['name']}")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/login")
    page.fill("input[name=email]", "alice@example.org")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/")

    page.goto(f"{url}/integrations")
    page.wait_for_selector(".media-host-list li.muted")
    for name in ("old.intranet.example", media.host):
        page.fill(".media-host-form input[name=name]", name)
        page.keyboard.press("Enter")
        page.wait_for_selector(f".media-host[data-added=true] code:text-is('{name}')")
    page.click("button[aria-label='Remove old.intranet.example']")
    page.wait_for_selector("#media-host-delete[open]")
    page.keyboard.press("Escape")  # changed its mind: nothing removed
    assert page.locator(".media-host code").all_inner_texts() == [media.host, "old.intranet.example"]
    page.click("button[aria-label='Remove old.intranet.example']")
    page.wait_for_selector("#media-host-delete[open]")
    page.keyboard.press("Enter")
    page.locator(".media-host code:text-is('old.intranet.example')").wait_for(state="detached")
    assert [h["name"] for h in admin.get("/api/v1/media-hosts").json()] == [media.host]

    page.goto(f"{url}/new")
    page.uncheck("input[name=diarize]")
    page.select_option("select[name=language]", "en")
    page.fill("#link-input", "not a link")
    page.keyboard.press("Enter")
    assert "http://" in page.inner_text("#link-why") and page.locator("#pending li").count() == 0
    page.fill("#link-input", media.url("/all-hands.html"))
    page.keyboard.press("Enter")
    page.fill("#link-input", media.url("/media/speech.wav", host=f"media.invalid:{media.port}"))
    page.keyboard.press("Enter")
    assert page.locator("#pending .p-name").all_inner_texts() == [
        f"all-hands.html · {media.host}",
        f"speech.wav · media.invalid:{media.port}",
    ]
    assert page.get_attribute("#pending li:first-child .p-name", "title") == media.url("/all-hands.html")
    page.click("#transcribe")
    done = page.locator("#queue li", has_text="all-hands.html")
    done.locator(".f-open:not(.hidden)").wait_for(timeout=120_000)
    refused = page.locator("#queue li", has_text="media.invalid")
    refused.locator(".f-error:text('not one of this appliance')").wait_for()
    assert "administrator listed" in refused.locator(".f-help").inner_text()
    page.screenshot(path=str(Path("test-artifacts/screenshots").resolve() / "new-from-a-link-390.png"), full_page=True)
    transcript = done.locator(".f-open").get_attribute("data-transcript")
    doc = appliance["member"].get(f"/api/v1/transcripts/{transcript}")
    text = admin.get(f"/api/v1/transcripts/{transcript}").json()["text"].lower()
    assert doc.status_code == 404 and "quick brown fox" in text  # alice's transcript, not bob's
    job = admin.get(f"/api/v1/transcripts/{transcript}").json()
    assert job["language"] == "en" and not job["speakers"], job["speakers"]  # the page's options
    assert errors == []
