import re
from contextlib import closing
from pathlib import Path

import httpx

from tests.support import ADMIN_EMAIL, bootstrap, running, signed_in

BOB = "bob@example.org"


def test_privacy_page_states_what_is_and_is_not_stored(settings) -> None:  # type: ignore[no-untyped-def]
    with running(settings) as http:
        page = httpx.get(f"{str(http.base_url).rstrip('/')}/privacy")
    assert page.status_code == 200
    text = page.text
    assert "Audio and video" in text and "never written to disk" in text
    assert "purged after" in text and "90 days" in text
    assert "off: transcripts stay until someone deletes them" in text
    assert "Earlier versions of each edited transcript (the newest 50)" in " ".join(text.split())
    # Nothing the CSP would have to allow: no inline script (the theme chooser's is a file) and no style attribute.
    assert re.findall(r"<script(?![^>]*\bsrc=\"/static/)", text) == [] and "style=" not in text


HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}  # what a browser sends


def test_errors_a_browser_navigates_to_are_pages_inside_the_app(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from appliance.transcripts import search

    bootstrap(settings, BOB, role="member", scope="transcribe")
    with running(settings) as http:
        url = str(http.base_url).rstrip("/")
        with closing(signed_in(url)) as alice, closing(signed_in(url, BOB)) as bob:
            for path in ("/no/such/page", "/jobs/nope", "/t/nope", "/compare/nope"):
                page = alice.get(path, headers=HTML)
                assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), path
                assert ADMIN_EMAIL in page.text and 'href="/new"' in page.text  # the signed-in header
                assert "Page not found" in page.text and 'href="/">Go to the library' in page.text
                assert page.headers["content-security-policy"].startswith("default-src 'self'")
                assert "<script>" not in page.text and "style=" not in page.text
            refused = bob.get("/admin/users", headers=HTML)
            assert refused.status_code == 403 and "Only administrators manage users." in refused.text
            assert BOB in refused.text
            # The API's paths answer JSON, whatever the caller accepts; so do programs on page paths.
            for path in ("/api/v1/nope", "/api/v1/jobs/nope", "/api/v1/transcripts/nope"):
                answer = alice.get(path, headers=HTML)
                assert answer.status_code == 404 and answer.json()["status_code"] == 404, path
            assert alice.get("/jobs/nope").json()["detail"] == "No such job."
            # An unexpected failure: the page says so plainly; the details go to the log only.
            monkeypatch.setattr(search, "search", lambda *a, **k: 1 / 0)
            broken = alice.get("/search?q=x", headers=HTML)
            assert broken.status_code == 500 and "Something went wrong" in broken.text and "ZeroDivision" not in broken.text
        anonymous = httpx.get(url + "/no/such/page", headers=HTML)
        assert anonymous.status_code == 404 and 'href="/login">Sign in' in anonymous.text and ADMIN_EMAIL not in anonymous.text


def test_privacy_and_licence_pages_show_the_signed_in_header(settings) -> None:  # type: ignore[no-untyped-def]
    with running(settings) as http, closing(signed_in(str(http.base_url).rstrip("/"))) as alice:
        for path in ("/privacy", "/admin/license"):
            page = alice.get(path, headers=HTML)
            assert page.status_code == 200 and ADMIN_EMAIL in page.text and 'href="/new"' in page.text, path
            assert 'action="/api/v1/auth/logout"' in page.text


def test_the_privacy_page_carries_the_operators_notice_and_every_exception(tmp_path: Path) -> None:
    from tests.support import FakeRecognizer, Scenario, settings_in

    notice = tmp_path / "notice.txt"
    notice.write_text(
        "We process recordings to provide minutes.\nLawful basis: legitimate interest.\n\nComplaints go to the DPO.\n"
    )
    scenario = Scenario(
        settings_in(
            tmp_path,
            APPLIANCE_PRIVACY__ORGANISATION="St. Example Hospital",
            APPLIANCE_PRIVACY__DATA_PROTECTION_OFFICER="dpo@hospital.example",
            APPLIANCE_PRIVACY__LAST_UPDATED="2026-12-01",
            APPLIANCE_PRIVACY__NOTICE_FILE=str(notice),
            APPLIANCE_SECURITY__EGRESS_ALLOW="hooks.hospital.example:443,llm.hospital.example:8000",
            APPLIANCE_ASSIST__SERVER_URL="http://llm.hospital.example:8000/v1",
        )
    )
    scenario.close()
    with scenario.serve(FakeRecognizer()) as server:
        page = httpx.get(f"{server.url}/privacy").text
    assert "St. Example Hospital" in page and "dpo@hospital.example" in page and "2026-12-01" in page
    assert "Lawful basis: legitimate interest." in page and "<p>Complaints go to the DPO.</p>" in page
    assert "hooks.hospital.example:443" in page and "sotto_session" in page
    assert "own AI server, <code>http://llm.hospital.example:8000/v1</code>" in page  # the one place AI text may go
    assert "for a question across your transcripts, the passages found for it" in page  # what a library question sends
    plain = Scenario(settings_in(tmp_path / "plain"))
    plain.close()
    with plain.serve(FakeRecognizer()) as server:
        page = httpx.get(f"{server.url}/privacy").text
    assert "An administrator has named no exceptions." in page and 'id="privacy-operator"' not in page
    assert "on this appliance, by a model in its own models directory: the text goes nowhere" in page
