"""The `appliance` command, run as a real subprocess where it matters."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appliance.cli import app

runner = CliRunner()
SRT_CUE = re.compile(r"^\d+\n\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}\n.+", re.M)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["transcribe"],
        ["models"],
        ["models", "list"],
        ["doctor"],
        ["users"],
        ["users", "create-admin"],
        ["users", "create"],
        ["users", "list"],
        ["users", "disable"],
        ["apikeys"],
        ["apikeys", "create"],
        ["license"],
        ["license", "request"],
        ["license", "install"],
        ["license", "status"],
        ["license", "correct-clock"],
        ["remote"],
        ["remote", "transcribe"],
        ["remote", "import-link"],
        ["summarize"],
        ["assist"],
        ["assist", "convert-gguf"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args], capture_output=True, text=True, env=full_env, timeout=300
    )


def test_transcribe_flac_prints_valid_srt_offline(converted: dict[str, Path], tmp_path: Path) -> None:
    result = _cli("transcribe", str(converted["flac"]), "--format", "srt", env={"APPLIANCE_MODELS_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    blocks = [b for b in result.stdout.strip().split("\n\n") if b]
    assert blocks and all(SRT_CUE.match(b) for b in blocks), result.stdout
    for index, block in enumerate(blocks, start=1):
        assert block.split("\n")[0] == str(index)
        start, end = block.split("\n")[1].split(" --> ")
        assert start < end
    assert "lazy" in result.stdout.lower()


def test_transcribe_json_is_the_api_document(converted: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = _cli("transcribe", str(converted["mp3"]), "--format", "json", "--output", str(out), "--language", "en")
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    import msgspec

    from appliance.web.schemas import Transcript

    msgspec.convert(doc, Transcript)  # same shape the API promises
    assert doc["filename"] == "converted.mp3" and doc["language"] == "en"
    assert doc["segments"][0]["words"][0]["probability"] > 0


def test_transcribe_several_files_to_a_directory(converted: dict[str, Path], tmp_path: Path) -> None:
    result = _cli("transcribe", str(converted["ogg"]), str(converted["m4a"]), "--format", "vtt", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("converted.vtt",):
        assert (tmp_path / name).read_text().startswith("WEBVTT")


def test_transcribe_bad_inputs_are_clear(tmp_path: Path, speech_wav: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 10)
    result = _cli("transcribe", str(text))
    assert result.returncode == 1 and "could not be read as audio" in result.stderr
    result = _cli("transcribe", str(speech_wav), "--model", "nope")
    assert result.returncode == 2 and "unknown model 'nope'" in result.stderr
    result = _cli("transcribe", str(speech_wav), "--format", "doc")
    assert result.returncode == 2 and "unknown format" in result.stderr
    result = _cli("transcribe", str(speech_wav), env={"APPLIANCE_SERVER__PORT": "x"})
    assert result.returncode == 2 and "server.port" in result.stderr


def test_models_list_and_doctor(tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "list"], env={"APPLIANCE_MODELS_DIR": str(tmp_path)})
    assert result.exit_code == 0 and "tiny.en" in result.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"x")
    result = runner.invoke(app, ["models", "list", "--json"], env={"APPLIANCE_MODELS_DIR": str(tmp_path)})
    listed = json.loads(result.output)
    assert [m["id"] for m in listed["models"]] == ["tiny.en"]
    assert "tokenizer.json" in listed["problems"]["broken"]
    result = runner.invoke(
        app, ["doctor", "--json"], env={"APPLIANCE_DATA_DIR": str(tmp_path / "data"), "APPLIANCE_MODELS_DIR": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert report["device"]["selected"] in {"cpu", "cuda"}
    assert report["data_dir"]["writable"] is True
    assert report["versions"]["faster-whisper"]
    assert report["offline"]["HF_HUB_OFFLINE"] == "1"


def test_doctor_names_the_ai_engine(tmp_path: Path, llm_dir: Path) -> None:
    base = {"APPLIANCE_DATA_DIR": str(tmp_path / "data"), "APPLIANCE_MODELS_DIR": str(tmp_path / "models")}
    none = runner.invoke(app, ["doctor"], env=base).output
    assert "AI engine: no text model or server (no text model is installed" in none
    local = runner.invoke(app, ["doctor"], env={**base, "APPLIANCE_ASSIST__MODEL": str(llm_dir)}).output
    assert "AI engine: text model smollm2-135m present (context 8192 tokens), runs on this appliance" in local
    server = {**base, "APPLIANCE_ASSIST__SERVER_URL": "http://llm.intranet.example:8000/v1"}
    unlisted = runner.invoke(app, ["doctor"], env=server).output
    assert "AI engine: on-prem server http://llm.intranet.example:8000/v1 configured, NOT reachable" in unlisted
    assert "not in security.egress_allow" in unlisted
    listed = runner.invoke(app, ["doctor"], env={**server, "APPLIANCE_SECURITY__EGRESS_ALLOW": "llm.intranet.example:8000"})
    assert "AI engine: on-prem server http://llm.intranet.example:8000/v1 configured\n" in listed.output
    off = runner.invoke(app, ["doctor"], env={**base, "APPLIANCE_ASSIST__ENABLED": "false"}).output
    assert "AI engine: switched off" in off


def test_doctor_fails_when_default_model_missing(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["doctor"], env={"APPLIANCE_DATA_DIR": str(tmp_path), "APPLIANCE_MODELS__DEFAULT_MODEL": "large-v3"}
    )
    assert result.exit_code == 1
    assert "MISSING" in result.output


def test_serve_starts_and_answers(tmp_path: Path) -> None:
    import time

    import httpx

    from appliance.web.server import free_port

    port = free_port()
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)


def test_transcribe_diarize_prints_speaker_labels(dialogue: tuple[Path, list]) -> None:  # type: ignore[type-arg]
    result = _cli("transcribe", str(dialogue[0]), "--diarize")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.match(r"^\[00:0\d\.\d\] Speaker 1: Good morning", lines[0]), lines
    assert any(line.split("] ", 1)[1].startswith("Speaker 2: ") for line in lines)
    out = _cli("transcribe", str(dialogue[0]), "--diarize", "--engine", "embedded", "--speakers", "2", "--format", "json")
    doc = json.loads(out.stdout)
    assert [s["label"] for s in doc["speakers"]] == ["Speaker 1", "Speaker 2"]
    assert all(w["speaker"] for seg in doc["segments"] for w in seg["words"])
    bad = _cli("transcribe", str(dialogue[0]), "--speakers", "2")
    assert bad.returncode == 2 and "need --diarize" in bad.stderr


def test_users_and_apikeys_commands(tmp_path: Path) -> None:
    env = {"APPLIANCE_DATA_DIR": str(tmp_path)}
    created = runner.invoke(
        app,
        ["users", "create-admin", "--email", "Root@Example.org", "--password-stdin"],
        input="a long admin password\n",
        env=env,
    )
    assert created.exit_code == 0, created.output
    assert "created admin root@example.org" in created.output
    weak = runner.invoke(app, ["users", "create", "--email", "x@example.org", "--password-stdin"], input="short\n", env=env)
    assert weak.exit_code == 2 and "at least 10 characters" in weak.output
    viewer = runner.invoke(
        app,
        ["users", "create", "--email", "v@example.org", "--role", "viewer", "--password-stdin"],
        input="viewer password!\n",
        env=env,
    )
    assert viewer.exit_code == 0
    listed = runner.invoke(app, ["users", "list"], env=env)
    assert "root@example.org" in listed.output and "viewer" in listed.output
    key = runner.invoke(app, ["apikeys", "create", "--user", "root@example.org", "--scope", "admin"], env=env)
    assert key.exit_code == 0 and key.output.strip().startswith("sotto_")
    too_much = runner.invoke(app, ["apikeys", "create", "--user", "v@example.org", "--scope", "transcribe"], env=env)
    assert too_much.exit_code == 2
    disabled = runner.invoke(app, ["users", "disable", "v@example.org"], env=env)
    assert disabled.exit_code == 0 and "disabled" in runner.invoke(app, ["users", "list"], env=env).output

    from appliance.accounts import apikeys
    from appliance.core.config import load
    from appliance.core.db import connect

    db = connect(load(None, env).storage.database_path)
    assert apikeys.resolve(db, key.output.strip()) is not None


def test_transcribe_every_export_format_and_options(converted: dict[str, Path], tmp_path: Path) -> None:
    for fmt, magic in (("docx", b"PK"), ("pdf", b"%PDF"), ("md", b"# converted"), ("csv", b"start,end")):
        out = tmp_path / f"out.{fmt}"
        result = _cli("transcribe", str(converted["wav"]), "--format", fmt, "--output", str(out))
        assert result.returncode == 0, result.stderr
        assert out.read_bytes().startswith(magic), fmt
    assert _cli("transcribe", str(converted["wav"]), "--format", "pdf").returncode == 2  # binary needs --output
    plain = _cli("transcribe", str(converted["wav"]), "-O", "timestamps=false")
    assert plain.returncode == 0 and not plain.stdout.startswith("[")
    narrow = _cli("transcribe", str(converted["wav"]), "--format", "srt", "-O", "max_chars_per_line=20", "-O", "max_lines=1")
    assert narrow.returncode == 0
    assert all(len(line) <= 20 for line in narrow.stdout.splitlines() if line and "-->" not in line and not line.isdigit())
    assert _cli("transcribe", str(converted["wav"]), "-O", "colour=red").returncode == 2


def test_license_correct_clock_after_the_clock_ran_ahead(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from appliance.core import migrations
    from appliance.core.db import connect
    from appliance.licensing.licence import iso

    env = {"APPLIANCE_DATA_DIR": str(tmp_path / "d")}
    machine = tmp_path / "machine-id"
    machine.write_text("0123456789abcdef0123456789abcdef")
    env["APPLIANCE_LICENSING__MACHINE_ID_PATH"] = str(machine)
    db = connect(tmp_path / "d" / "appliance.db")
    migrations.apply(db)
    # The clock had run a month ahead and left its mark in the database.
    db.execute(
        "INSERT INTO license_witness (key, value) VALUES ('clock_high_water', ?)", [iso(datetime.now(UTC) + timedelta(days=30))]
    )
    db.conn.close()
    assert "clock_tampered" in runner.invoke(app, ["license", "status"], env=env).output
    refused = runner.invoke(
        app, ["license", "correct-clock", "--confirm-now", iso(datetime.now(UTC) - timedelta(days=1))], env=env
    )
    assert refused.exit_code == 2 and "does not agree" in refused.output
    fixed = runner.invoke(app, ["license", "correct-clock", "--confirm-now", iso(datetime.now(UTC))], env=env)
    assert fixed.exit_code == 0 and "licence state: evaluation" in fixed.output, fixed.output
    db = connect(tmp_path / "d" / "appliance.db")
    entry = next(iter(db.query("SELECT actor, action, detail FROM audit_log WHERE action = 'license.clock_corrected'")))
    assert entry["actor"] == "cli" and "discarded_mark" in entry["detail"]


def test_every_job_option_is_a_flag_of_both_transcribe_commands() -> None:
    """One option set for every door: the API's fields (options.KNOWN) are flags of `transcribe` and of
    `remote transcribe` (priority and private only where a server queues and stores the job)."""
    import typer.main

    from appliance.cli import JOB_OPTION_FLAGS, app
    from appliance.transcription.options import KNOWN

    command = typer.main.get_command(app)
    local = command.commands["transcribe"]  # type: ignore[attr-defined]
    remote = command.commands["remote"].commands["transcribe"]  # type: ignore[attr-defined]
    flags = {c: {opt for p in cmd.params for opt in p.opts} for c, cmd in (("local", local), ("remote", remote))}
    assert set(KNOWN) - set(JOB_OPTION_FLAGS) == {"models"}
    for field, flag in JOB_OPTION_FLAGS.items():
        assert flag in flags["remote"], (field, flag)
        if field not in ("priority", "private"):
            assert flag in flags["local"], (field, flag)


def test_transcribe_passes_prompt_vocabulary_and_decoding_options(speech_wav: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    result = _cli(
        "transcribe",
        str(speech_wav),
        "--format",
        "json",
        "--output",
        str(out),
        "--prompt",
        "Stella, Seattle.",
        "--hotwords",
        "Stella",
        "--beam-size",
        "2",
        "--temperature",
        "0",
        "--no-vad",
        "--no-word-timestamps",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["options"]["beam_size"] == 2 and doc["options"]["vad_filter"] is False
    assert doc["options"]["word_timestamps"] is False and doc["options"]["initial_prompt"] == "Stella, Seattle."
    assert "stella" in doc["text"].lower()
    bad = _cli("transcribe", str(speech_wav), "--beam-size", "50")
    assert bad.returncode != 0 and "beam-size" in bad.stderr


def test_models_list_shows_text_models_with_their_kind(llm_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "smol").symlink_to(llm_dir, target_is_directory=True)
    result = runner.invoke(
        app, ["models", "list", "--json"], env={"APPLIANCE_MODELS_DIR": str(models), "APPLIANCE_DATA_DIR": str(tmp_path / "d")}
    )
    assert result.exit_code == 0, result.output
    listed = {m["id"]: m for m in json.loads(result.output)["models"]}
    assert listed["smol"]["kind"] == "llm" and listed["smol"]["context_length"] == 8192
    assert listed["tiny.en"]["kind"] == "asr"  # and the text model is not mistaken for a broken Whisper directory
    assert json.loads(result.output)["problems"] == {}


def test_summarize_a_stored_transcript_and_a_file(llm_dir: Path, tmp_path: Path, speech_wav: Path) -> None:
    from tests.assist.meeting import LINES
    from tests.support import ADMIN_EMAIL, Scenario, settings_in

    scenario = Scenario(settings_in(tmp_path))
    tid = scenario.meeting(scenario.person(ADMIN_EMAIL, "admin", "admin"), LINES)
    env = {
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_MODELS_DIR": str(tmp_path / "models"),
        "APPLIANCE_ASSIST__MODEL": str(llm_dir),
        "APPLIANCE_ASSIST__MAX_NEW_TOKENS": "100",
    }
    done = _cli("summarize", tid, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## Summary") and "stored as summary version 1" in done.stderr
    from appliance.assist import store

    assert store.get(scenario.db, tid) is not None
    scenario.close()
    as_json = _cli("summarize", str(speech_wav), "--format", "json", env=env)  # transcribed and summarised in memory
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["summary"]
    missing = _cli("summarize", "no-such-transcript", env=env)
    assert missing.returncode == 1 and "no transcript 'no-such-transcript'" in missing.stderr


def test_convert_gguf_refuses_what_is_not_gguf(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a model")
    result = runner.invoke(app, ["assist", "convert-gguf", str(bogus), str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a readable GGUF file" in result.output
    assert not (tmp_path / "out").exists()
