"""Library-wide questions and a workspace's AI settings through the real app over HTTP: its admins write versioned summary
instructions (a member is refused, bad text is refused plainly, a stale save is refused, an old version
restored) and the summaries of its transcripts carry them to the model, here an on-prem OpenAI-compatible
server on loopback that records what it was sent; with automatic summaries on, every finished
transcription of that workspace is summarised, and no summary step starts while a real transcription
job is queued or running. A question across the library reaches the model with only the words of
transcripts the asker may see."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support import ADMIN_EMAIL, ChatServerStub, FakeRecognizer, Member, Scenario, settings_in, wait_for_job

ANSWER = '{"summary": "They said hello to the world [0].", "key_points": [], "action_items": []}'
INSTRUCTIONS = "Write for the legal team.\nName every contract number that is mentioned."


@dataclass
class World:
    scenario: Scenario
    stub: ChatServerStub
    admin: httpx.Client
    member: httpx.Client
    alice: Member
    bob: Member
    legal: str
    mallory: httpx.Client
    url: str
    env: dict[str, str]  # the appliance's settings as the CLI reads them
    made: dict[str, str]  # what one test left for a later one (transcript ids by name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with ChatServerStub(ANSWER) as stub:
        allowed = f"127.0.0.1:{stub.port}"
        root = tmp_path_factory.mktemp("workspace-assist")
        env = {
            "APPLIANCE_DATA_DIR": str(root / "data"),
            "APPLIANCE_MODELS_DIR": str(root / "models"),
            "APPLIANCE_ASSIST__SERVER_URL": f"http://{allowed}/v1",
            "APPLIANCE_ASSIST__SERVER_MODEL": "llama-3.1-8b-instruct",
            "APPLIANCE_SECURITY__EGRESS_ALLOW": allowed,
            "APPLIANCE_WORKER__WORKERS_PER_DEVICE": "1",  # one job at a time: the second one waits in the queue
        }
        settings = settings_in(root, **{k: v for k, v in env.items() if k not in {"APPLIANCE_DATA_DIR", "APPLIANCE_MODELS_DIR"}})
        scenario = Scenario(settings)
        alice = scenario.person(ADMIN_EMAIL, "admin", "admin")
        bob = scenario.person("bob@example.org", "member", "transcribe")
        legal = scenario.workspace("Legal", alice, {bob.id: "member"})
        mallory = scenario.person("mallory@example.org", "member", "transcribe")
        with (
            scenario.serve(FakeRecognizer(delay=2.0)) as server,
            httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {alice.key}"}) as admin,
            httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {bob.key}"}) as member,
            httpx.Client(base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {mallory.key}"}) as outsider,
        ):
            yield World(scenario, stub, admin, member, alice, bob, legal, outsider, server.url, env, {})
        scenario.close()


def _until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _summarised(http: httpx.Client, transcript_id: str) -> dict[str, Any]:
    started = http.post(f"/api/v1/transcripts/{transcript_id}/summaries", json={})
    assert started.status_code == 202, started.text
    _until(lambda: http.get(f"/api/v1/summary-runs/{started.json()['id']}").json()["state"] in {"done", "failed"})
    latest = http.get(f"/api/v1/transcripts/{transcript_id}/summaries").json()["latest"]
    assert latest is not None
    return dict(latest["summary"])


def test_admins_keep_versioned_instructions_and_summaries_follow_them(world: World) -> None:
    url = f"/api/v1/workspaces/{world.legal}/assist"
    fresh = world.member.get(url).json()
    assert fresh["current"]["version"] == 0 and fresh["current"]["instructions"] == "" and fresh["versions"] == []
    assert fresh["can_edit"] is False and world.admin.get(url).json()["can_edit"] is True

    refused = world.member.put(url, json={"instructions": "Be rude."})
    assert refused.status_code == 403 and "admins" in refused.json()["detail"]
    too_long = world.admin.put(url, json={"instructions": "x" * 2001})
    assert too_long.status_code == 400 and "at most 2000" in too_long.json()["detail"]
    control = world.admin.put(url, json={"instructions": "Be\x07 brief"})
    assert control.status_code == 400 and "plain text" in control.json()["detail"]
    assert world.admin.get(url).json()["versions"] == []  # nothing refused was stored

    first = world.admin.put(url, json={"instructions": f"  {INSTRUCTIONS}\r\n", "base_version": 0})
    assert first.status_code == 200, first.text
    assert first.json()["current"]["version"] == 1 and first.json()["current"]["instructions"] == INSTRUCTIONS
    assert first.json()["current"]["created_by"] == ADMIN_EMAIL
    stale = world.admin.put(url, json={"instructions": "Something else.", "base_version": 0})
    assert stale.status_code == 409 and "reload" in stale.json()["detail"]
    second = world.admin.put(url, json={"instructions": "Three sentences at most.", "base_version": 1}).json()
    assert [v["version"] for v in second["versions"]] == [2, 1]
    restored = world.admin.post(f"{url}/restore", json={"version": 1}).json()["current"]
    assert restored["version"] == 3 and restored["restored_from"] == 1 and restored["instructions"] == INSTRUCTIONS
    missing = world.admin.post(f"{url}/restore", json={"version": 99})
    assert missing.status_code == 404 and "no AI settings version 99" in missing.json()["detail"]
    assert world.member.post(f"{url}/restore", json={"version": 2}).status_code == 403

    # A member's summary of a Legal transcript carries the instructions (after the format rules) and
    # records their version; one in the member's personal workspace carries none.
    in_legal = world.scenario.transcript(world.bob, "hello world", workspace_id=world.legal)
    world.made["instructed"] = in_legal
    sent_before = len(world.stub.requests)
    summary = _summarised(world.member, in_legal)
    system = world.stub.requests[sent_before]["messages"][0]["content"]
    assert system.index('"chapters"') < system.index(INSTRUCTIONS)
    assert summary["instructions_version"] == 3 and summary["summary"] == "They said hello to the world."
    personal = world.scenario.transcript(world.bob, "hello world")
    sent_before = len(world.stub.requests)
    summary = _summarised(world.member, personal)
    assert INSTRUCTIONS not in world.stub.requests[sent_before]["messages"][0]["content"]
    assert summary["instructions_version"] is None


def test_finished_transcriptions_are_summarised_where_asked_never_before_the_queue_is_empty(
    world: World, speech_bytes: bytes
) -> None:
    # Off by default: a transcription in Bob's personal workspace gets no summary.
    def upload(workspace_id: str | None = None) -> str:
        params = {"workspace_id": workspace_id} if workspace_id else {}
        job = world.member.post("/api/v1/transcriptions", params=params, files={"file": ("a.wav", speech_bytes, "audio/wav")})
        assert job.status_code == 202, job.text
        return str(job.json()["job_id"])

    personal = wait_for_job(world.member.get, upload())["transcript_id"]
    current = world.admin.get(f"/api/v1/workspaces/{world.legal}/assist").json()["current"]
    on = world.admin.put(
        f"/api/v1/workspaces/{world.legal}/assist",
        json={"instructions": current["instructions"], "auto_summarize": True, "base_version": current["version"]},
    )
    assert on.status_code == 200 and on.json()["current"]["auto_summarize"] is True

    # Two real jobs, one worker: while the second is queued or running, the first one's summary waits.
    sent_before = len(world.stub.requests)
    first_job, second_job = upload(world.legal), upload(world.legal)
    first = wait_for_job(world.member.get, first_job)["transcript_id"]
    _until(lambda: world.member.get(f"/api/v1/transcripts/{first}/summaries").json()["running"] is not None)
    seen_waiting = False
    while world.member.get(f"/api/v1/jobs/{second_job}").json()["state"] in {"queued", "running"}:
        running = world.member.get(f"/api/v1/transcripts/{first}/summaries").json()["running"]
        seen_waiting = seen_waiting or (running is not None and running["state"] == "waiting")
        assert len(world.stub.requests) == sent_before  # not one request to the model meanwhile
        time.sleep(0.1)
    assert seen_waiting
    second = wait_for_job(world.member.get, second_job)["transcript_id"]
    for transcript_id in (first, second):
        _until(lambda t=transcript_id: world.member.get(f"/api/v1/transcripts/{t}/summaries").json()["latest"] is not None)
        latest = world.member.get(f"/api/v1/transcripts/{transcript_id}/summaries").json()["latest"]
        assert latest["origin"] == "generated" and latest["created_by"] == world.bob.id
    # The queue is one thread in order: had the personal transcript been queued, it would be done by now.
    assert world.member.get(f"/api/v1/transcripts/{personal}/summaries").json()["latest"] is None


def test_library_questions_use_only_what_the_asker_may_see(world: World) -> None:
    mallory = world.scenario.person("mallory@example.org")  # her personal workspace only
    hers = world.scenario.transcript(mallory, "The vault code for the harbour warehouse is Zanzibar")
    ours = world.scenario.transcript(world.bob, "Bob will fix the harbour installer by Friday", workspace_id=world.legal)
    # Marked private with its rows still there (a real private transcript has none): the filter holds anyway.
    secret = world.scenario.transcript(world.bob, "The harbour installer password is Kraken", workspace_id=world.legal)
    world.scenario.db.execute("UPDATE transcripts SET private = 1 WHERE id = ?", [secret])
    world.stub.answer = "Bob fixes the harbour installer by Friday [1]."
    sent_before = len(world.stub.requests)

    answer = world.member.post("/api/v1/ask", json={"question": "Who fixes the harbour installer, and what is the vault code?"})
    assert answer.status_code == 200, answer.text
    out = answer.json()
    assert out["found"] and out["answer"] == "Bob fixes the harbour installer by Friday."
    assert [c["transcript_id"] for c in out["citations"]] == [ours] and out["grounding"] == "cited"
    assert out["citations"][0]["link"].startswith(f"/t/{ours}?t=")
    # What went to the model, read where it arrived: Bob's line, not one word of Mallory's transcript.
    prompt = "\n".join(m["content"] for m in world.stub.requests[sent_before]["messages"])
    assert (
        "fix the harbour installer" in prompt
        and "Zanzibar" not in prompt
        and "warehouse" not in prompt
        and "Kraken" not in prompt
    )
    assert len(world.stub.requests) == sent_before + 1

    # Mallory asks the same: only her own transcript is searched; she never gets Bob's.
    hers_answer = world.mallory.post("/api/v1/ask", json={"question": "Who fixes the harbour installer?"}).json()
    assert all(c["transcript_id"] == hers for c in hers_answer["citations"])
    prompt = "\n".join(m["content"] for m in world.stub.requests[-1]["messages"])
    assert "Zanzibar" in prompt and "Bob will fix" not in prompt
    # Nothing in her library about it: answered without asking the model.
    sent_before = len(world.stub.requests)
    nothing = world.mallory.post("/api/v1/ask", json={"question": "What about the installer?"}).json()
    assert nothing["found"] is False and nothing["answer"] == "Not in your transcripts." and nothing["citations"] == []
    assert len(world.stub.requests) == sent_before
    refused = world.member.post("/api/v1/ask", json={"question": "  "})
    assert refused.status_code == 400 and "1 to 1000 characters" in refused.json()["detail"]


def test_the_cli_asks_the_library_here_or_through_the_api(world: World) -> None:
    # Bob's Legal transcript about the installer comes from the library test above (same module world).
    from typer.testing import CliRunner

    from appliance.cli import app

    runner = CliRunner()
    world.stub.answer = "Bob fixes the harbour installer by Friday [1]."
    remote = runner.invoke(
        app, ["ask", "Who fixes the harbour installer?", "--url", world.url, "--api-key", world.bob.key, "--json"]
    )
    assert remote.exit_code == 0, remote.output
    assert json.loads(remote.output)["citations"][0]["title"] == "talk.wav"
    here = runner.invoke(app, ["ask", "Who fixes the harbour installer?", "--user", "bob@example.org"], env=world.env)
    assert here.exit_code == 0, here.output
    assert here.output.startswith("Bob fixes the harbour installer by Friday.\n  [talk.wav 00:00] Bob will fix")
    nobody = runner.invoke(app, ["ask", "Who?", "--user", "nobody@example.org"], env=world.env)
    assert nobody.exit_code == 1 and "no account 'nobody@example.org'" in nobody.output
    unsaid = runner.invoke(app, ["ask", "Who?"], env=world.env)
    assert unsaid.exit_code == 2 and "--user EMAIL" in unsaid.output


def test_the_search_page_asks_and_a_summary_names_its_instructions_on_a_phone(world: World, browser: Any) -> None:
    # Bob's Legal transcript about the installer comes from the library test above (same module world).
    from tests.web.test_web_ui import PHONE, Page

    world.stub.answer = "Bob fixes the harbour installer by Friday [1]."
    ui = Page(browser, world, email="bob@example.org", viewport=PHONE)  # type: ignore[arg-type]
    page = ui.page
    page.goto(f"{world.url}/search")
    page.fill("#ask-form input[name=question]", "Who fixes the harbour installer?")
    page.keyboard.press("Enter")
    page.locator("#ask-answer", has_text="Bob fixes the harbour installer by Friday.").wait_for()
    link = page.locator("#ask-citations a").first
    assert link.inner_text().startswith("talk.wav") and "00:00" in link.inner_text()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    ui.shot("search-ask")
    page.fill("#ask-form input[name=question]", "What about the zeppelin?")
    page.keyboard.press("Enter")
    page.locator("#ask-state", has_text="None of your transcripts is about this.").wait_for()
    assert page.locator("#ask-citations li").count() == 0
    link_target = "/t/"
    page.goto(f"{world.url}/search")
    page.fill("#ask-form input[name=question]", "Who fixes the harbour installer?")
    page.keyboard.press("Enter")
    page.locator("#ask-citations a").first.click()
    page.wait_for_url(f"**{link_target}**")
    # The transcript page's summary says which of the workspace's instructions shaped it.
    page.goto(f"{world.url}/t/{world.made['instructed']}")
    page.locator("#summary-body p", has_text="Written with the workspace's instructions, version 3.").wait_for(state="attached")
    ui.csp_clean()
    ui.close()
