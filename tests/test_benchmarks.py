"""The benchmark script runs end to end (on a short synthesised clip) and reports what it promises."""

import subprocess
import sys
from pathlib import Path

from tests.support import REPO, SENTENCE


def test_asr_http_benchmark_reports_ratios_and_wer(speech_wav: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(speech_wav.read_bytes())
    (tmp_path / "clip.stm").write_text(f"clip 1 A 0.0 6.0 {SENTENCE}\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "asr_http.py"), str(clip), "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in (
        "sequential",
        "direct",
        "http",
        "http vs direct pipeline",
        "vs sequential faster-whisper",
        "direct and http transcripts identical: True",
    ):
        assert line in out, out
    wer_line = next(line for line in out.splitlines() if line.startswith("http "))
    assert float(wer_line.split()[-1]) < 0.5


def test_diarization_eval_reports_der_and_cpwer(dialogue: tuple[Path, list], tmp_path: Path) -> None:  # type: ignore[type-arg]
    from tests.support import DIALOGUE

    path, truth = dialogue
    clip = tmp_path / "call.wav"
    clip.write_bytes(path.read_bytes())
    names = {"en-us": "agent", "en+f3": "caller"}
    (tmp_path / "call.rttm").write_text(
        "".join(f"SPEAKER call 1 {s:.3f} {e - s:.3f} <NA> <NA> {names[v]} <NA> <NA>\n" for s, e, v in truth)
    )
    (tmp_path / "call.stm").write_text(
        "".join(f"call 1 {names[v]} {s:.3f} {e:.3f} {text}\n" for (s, e, v), (_v, _p, text) in zip(truth, DIALOGUE, strict=False))
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "diarization_eval.py"), str(clip)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    values = {}
    for line in result.stdout.splitlines():
        if line.startswith("DER collar"):
            values[line.split(":")[0]] = float(line.split(":")[1].strip().rstrip("%"))
    assert "speakers found: 2" in result.stdout
    assert values["DER collar 0.25"] < 10.0, result.stdout
    assert "speaker-attributed WER (cpWER)" in result.stdout


def test_load_benchmark_runs_and_reports(speech_wav: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "load.py"), str(speech_wav), "--clients", "2", "--seconds", "8"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "aggregate vs sequential",
        "/healthz",
        "/ (library page)",
        "/api/v1/transcripts",
        "peak memory",
        "start-up",
        "jobs started in arrival order: True",
        "errors: 0",
    ):
        assert line in result.stdout, result.stdout


def test_soak_runs_its_mix_and_checks_what_it_kept_and_deleted(speech_wav: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "soak.py"),
            str(speech_wav),
            "--minutes",
            "0.25",
            "--warmup-minutes",
            "0.1",
            "--clients",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    # Memory over 15 s says nothing (the drift verdict is for the 10-minute run); the rest must hold.
    assert "5xx answers: 0" in out, out + result.stderr
    intact = next(line for line in out.splitlines() if line.startswith("transcripts intact"))
    kept, deleted = intact.split(": ")[1].split("; ")[0], intact.split(": ")[2]
    assert kept.split("/")[0] == kept.split("/")[1] and deleted.split("/")[0] == deleted.split("/")[1], out
    assert "after the warm-up (baseline)" in out and "uploads" in out


def test_voice_profile_evaluation_suggests_known_voices_and_not_unknown_ones() -> None:
    """Synthetic voices (espeak-ng variants and pitches), two sessions each: the calibrated threshold
    suggests the right name first for >= 90% of enrolled voices and none for >= 90% of unknown ones."""
    from appliance.speakers.suggestions import THRESHOLDS

    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "voice_profiles.py")], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    values = {line.split(":")[0]: line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if ":" in line}
    assert float(values["threshold"]) == THRESHOLDS["embedded"]
    assert int(values["n"]) >= 5
    known = float(values["known voice, own name suggested first"].split("%")[0])
    unknown = float(values["unknown voice, no name suggested"].split("%")[0])
    assert known >= 90 and unknown >= 90, result.stdout


def test_single_request_benchmark_runs_and_reports(speech_wav: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "single_request.py"),
            str(speech_wav),
            "--seconds",
            "40",
            "--pairs",
            "1",
            "--unshared",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in (
        "appliance / sequential: median ratio",
        "unshared / sequential: median ratio",
        "appliance: peak resident memory",
    ):
        assert line in result.stdout, result.stdout


def test_long_recording_benchmark_runs_and_reports(speech_wav: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "long_recording.py"), str(speech_wav), "--seconds", "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "time ratio appliance / raw" in result.stdout, result.stdout
    peaks = [int(line.split("peak ")[1].split(" MB")[0]) for line in result.stdout.splitlines() if line.startswith("round")]
    assert len(peaks) == 2 and all(100 < p < 4000 for p in peaks), result.stdout


def test_assist_eval_scores_the_summaries(llm_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "assist_eval.py"),
            str(llm_dir),
            "--meetings",
            "1",
            "--max-new-tokens",
            "48",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    report = json.loads(result.stdout)
    total, meeting = report["total"], report["meetings"][0]
    assert total["meetings"] == 1 and meeting["id"] == "release-planning" and meeting["actions_reference"] == 3
    assert 0 <= total["action_recall"] <= 1 and 0 <= total["matched_valid"] <= 1
    assert isinstance(meeting["invented_names"], list)


def test_search_index_benchmark_finds_every_word_in_nine_scripts_and_reports_before_and_after() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "search_index.py"), "--transcripts", "90", "--queries", "81"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "after (word + trigram): exact 54/54 present words; 0 words under-found; 0 words with false hits" in out
    # The baseline shows what the word index alone got wrong: Chinese and Japanese words inside a sentence,
    # and a Bengali word cut at its vowel signs.
    assert "before (word index): exact 44/54" in out and "বালি(" in out
    assert "p95 ratio after/before:" in out and "database size, before:" in out


def test_gpu_placement_benchmark_runs_on_the_cpu() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_placement.py"), "--device", "cpu", "--jobs", "1,2", "--seconds", "15"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("device cpu (int8)"), out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2"], out
    assert rows[0][3] == "1.00x" and float(rows[1][2]) > 0, out
    # The same clip, however many jobs share the device: the same words.
    assert "transcripts identical across jobs and steps: True" in out
