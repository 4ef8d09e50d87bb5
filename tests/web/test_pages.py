import httpx

from tests.support import running


def test_privacy_page_states_what_is_and_is_not_stored(settings) -> None:  # type: ignore[no-untyped-def]
    with running(settings) as http:
        page = httpx.get(f"{str(http.base_url).rstrip('/')}/privacy")
    assert page.status_code == 200
    text = page.text
    assert "Audio and video" in text and "never written to disk" in text
    assert "purged after" in text and "90 days" in text
    assert "off: transcripts stay until someone deletes them" in text
    assert "<script" not in text and "style=" not in text  # nothing the CSP would have to allow
