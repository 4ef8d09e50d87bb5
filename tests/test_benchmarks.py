"""The benchmark script runs end to end (on a short synthesised clip) and reports what it promises."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, SENTENCE


def test_asr_http_benchmark_reports_ratios_and_wer(speech_wav: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(speech_wav.read_bytes())
    (tmp_path / "clip.stm").write_text(f"clip 1 A 0.0 6.0 {SENTENCE}\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "asr_http.py"), str(clip), "--rounds", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in ("sequential", "direct", "http", "http vs direct pipeline", "vs sequential faster-whisper",
                 "direct and http transcripts identical: True"):
        assert line in out, out
    wer_line = next(line for line in out.splitlines() if line.startswith("http "))
    assert float(wer_line.split()[-1]) < 0.5
