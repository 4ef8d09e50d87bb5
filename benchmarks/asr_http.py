"""Benchmark: faster-whisper called directly vs. the appliance's HTTP API, same model and settings.

    python benchmarks/asr_http.py PATH/sample.wav [--stm PATH/sample.stm] [--rounds 3] [--tile 1]

In one process and one run, interleaved round by round (these machines are noisy), it times:

  sequential  faster-whisper's WhisperModel.transcribe(word_timestamps=True): how peers serve it
  direct      faster-whisper called directly with exactly the appliance's pipeline settings
  http        the whole appliance: multipart upload over loopback HTTP, queue, decode, ASR,
              SQLite, completion via server-sent events, transcript fetched as JSON

and prints real-time factors, the ratios, peak memory per path and WER against the STM reference.
`--tile N` repeats the recording N times (one longer file) to show how batching scales.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx
import jiwer
import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from appliance.accounts import apikeys  # noqa: E402
from appliance.accounts import users as accounts  # noqa: E402
from appliance.core import migrations  # noqa: E402
from appliance.core.config import load  # noqa: E402
from appliance.core.db import connect  # noqa: E402
from appliance.transcription.asr import ModelRegistry, batch_size, resolve_device  # noqa: E402
from appliance.transcription.audio import decode  # noqa: E402
from benchmarks.wer import normalise  # noqa: E402


class PeakRss:
    """Samples this process's resident memory every 5 ms while active."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def reference_text(stm: Path) -> str:
    lines = [line.split(None, 5) for line in stm.read_text().splitlines() if line.strip() and not line.startswith(";;")]
    return " ".join(parts[5] for parts in lines if len(parts) == 6)


def tiled_wav(data: bytes, times: int) -> bytes:
    if times == 1:
        return data
    samples = decode(data).samples
    pcm = (np.clip(np.tile(samples, times), -1, 1) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(pcm.tobytes())
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--stm", type=Path, help="reference transcript (default: the audio's .stm sibling)")
    parser.add_argument("--model", default=None, help="model name (default: the settings' default model)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tile", type=int, default=1, help="repeat the recording N times")
    args = parser.parse_args()

    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from faster_whisper.audio import decode_audio

    from appliance.web.app import create_app
    from appliance.web.server import BackgroundServer as LiveServer

    data = tiled_wav(args.audio.read_bytes(), args.tile)
    stm = args.stm or args.audio.with_suffix(".stm")
    reference = normalise(reference_text(stm)) if stm.exists() else None
    if reference and args.tile > 1:
        reference = " ".join([reference] * args.tile)
    duration = decode(data).duration

    with tempfile.TemporaryDirectory() as tmp:
        settings = load(None, {"APPLIANCE_DATA_DIR": tmp, "APPLIANCE_MODELS_DIR": str(REPO / "models")})
        name = args.model or settings.models.default_model
        model_info = ModelRegistry(settings.models.models_dir).get(name)
        device, compute = resolve_device(settings.models)
        t = settings.transcription
        shared = dict(beam_size=t.beam_size, word_timestamps=t.word_timestamps, language=t.language or None)

        whisper = WhisperModel(
            str(model_info.path),
            device=device,
            compute_type=compute,
            cpu_threads=settings.models.cpu_threads,
            local_files_only=True,
        )
        batched = BatchedInferencePipeline(whisper)

        def sequential() -> str:
            # Peers' way: the file decoded by faster-whisper, one 30 s window after another.
            segments, _ = whisper.transcribe(
                decode_audio(io.BytesIO(data)), word_timestamps=True, beam_size=t.beam_size, language=t.language or None
            )
            return " ".join(s.text.strip() for s in segments)

        def direct() -> str:
            # The appliance's pipeline settings, with faster-whisper called directly.
            audio = decode(data).samples
            if settings.models.batched and t.vad_filter:
                segments, _ = batched.transcribe(audio, batch_size=batch_size(settings.models, device), vad_filter=True, **shared)
            else:
                segments, _ = whisper.transcribe(audio, vad_filter=t.vad_filter, **shared)
            return " ".join(s.text.strip() for s in segments)

        db = connect(settings.storage.database_path)  # a benchmark user with an API key
        migrations.apply(db)
        key, _ = apikeys.create(
            db, accounts.create(db, "bench@example.org", "benchmark-password", "member").id, "bench", "transcribe"
        )
        db.conn.close()
        app = create_app(settings)
        with (
            LiveServer(app) as server,
            httpx.Client(base_url=server.url, timeout=600, headers={"Authorization": f"Bearer {key}"}) as client,
        ):

            def http() -> str:
                response = client.post(
                    "/api/v1/transcriptions", files={"file": (args.audio.name, data, "audio/wav")}, data={"model": name}
                )
                response.raise_for_status()
                job_id = response.json()["job_id"]
                with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as events:
                    final = None
                    for line in events.iter_lines():
                        if line.startswith("data:"):
                            final = json.loads(line[5:])
                if final is None or final["state"] != "done":
                    raise RuntimeError(f"job did not finish: {final}")
                return client.get(f"/api/v1/transcripts/{final['transcript_id']}").json()["text"]

            paths = {"sequential": sequential, "direct": direct, "http": http}
            for fn in paths.values():  # warm-up: models resident, caches filled, nothing timed
                fn()
            times: dict[str, list[float]] = {k: [] for k in paths}
            peaks: dict[str, int] = {k: 0 for k in paths}
            growth: dict[str, int] = {k: 0 for k in paths}
            texts: dict[str, str] = {}
            for _ in range(args.rounds):
                for key, fn in paths.items():
                    with PeakRss() as rss:
                        started = time.perf_counter()
                        texts[key] = fn()
                        times[key].append(time.perf_counter() - started)
                    peaks[key] = max(peaks[key], rss.peak)
                    growth[key] = max(growth[key], rss.peak - rss.start)

    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"audio: {args.audio.name} x{args.tile} = {duration:.1f} s; model {name} on {device} ({compute}); "
        f"beam {t.beam_size}, word timestamps, batch {batch_size(settings.models, device)}; {args.rounds} rounds, median"
    )
    # All three paths share one process (and its loaded models): the growth column is what a path
    # itself adds at its peak; the peak column is the whole process.
    print(f"{'path':<12}{'seconds':>9}{'RTF':>8}{'x realtime':>12}{'peak RSS MB':>13}{'+MB at peak':>13}{'WER':>8}")
    wers = {}
    for key in paths:
        wer = jiwer.wer(reference, normalise(texts[key])) if reference else float("nan")
        wers[key] = wer
        print(
            f"{key:<12}{median[key]:>9.3f}{median[key] / duration:>8.4f}{duration / median[key]:>12.1f}"
            f"{peaks[key] / 2**20:>13.0f}{growth[key] / 2**20:>13.1f}{wer:>8.3f}"
        )
    overhead = median["http"] / median["direct"] - 1
    print(f"http vs direct pipeline: {overhead * 100:+.1f}% (target <= +5%)")
    print(f"http end to end vs sequential faster-whisper: {median['sequential'] / median['http']:.2f}x (target > 1.00x)")
    same = normalise(texts["http"]) == normalise(texts["direct"])
    print(f"direct and http transcripts identical: {same}; WER direct {wers['direct']:.3f} / http {wers['http']:.3f}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
