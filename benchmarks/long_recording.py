"""Benchmark: one long recording through the appliance's API vs faster-whisper's batched pipeline.

    python benchmarks/long_recording.py PATH/sample.wav [--seconds 3600] [--rounds 1]

The recording is looped to `--seconds` (an hour by default) as a 16 kHz WAV. In alternating order:

  raw        a fresh process: the WAV decoded whole (faster_whisper.decode_audio) and transcribed by
             BatchedInferencePipeline (batch 4, word timestamps, beam 5, every core): the pipeline the
             appliance runs, called directly
  appliance  a fresh `appliance serve` process, default plan: upload, job, transcript fetched

Printed: wall seconds and peak resident memory (the kernel's VmHWM of each process) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.load import looped  # noqa: E402
from benchmarks.serve import Served  # noqa: E402

RAW = textwrap.dedent(
    """
    import json, sys, time
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio
    from benchmarks.serve import high_water_mark
    import os
    path, model_path, device, compute = sys.argv[1:5]
    whisper = WhisperModel(model_path, device=device, compute_type=compute)
    pipeline = BatchedInferencePipeline(whisper)
    began = time.perf_counter()
    audio = decode_audio(path)
    segments, _ = pipeline.transcribe(audio, batch_size=4, word_timestamps=True, beam_size=5)
    words = sum(len(s.words or []) for s in segments)
    print(json.dumps({"seconds": time.perf_counter() - began, "peak": high_water_mark(os.getpid()), "words": words}))
    """
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    from appliance.transcription.asr import ModelRegistry, resolve_device

    wav, _ = looped(args.audio.read_bytes(), args.seconds)
    probe = Served()
    model = ModelRegistry(probe.settings.models.models_dir).get(probe.settings.models.default_model)
    device, compute = resolve_device(probe.settings.models)
    results: dict[str, list[tuple[float, int]]] = {"raw": [], "appliance": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"  # the raw baseline reads a file, as its users do; the appliance never does
        path.write_bytes(wav)
        for round_ in range(args.rounds):
            for name in ["raw", "appliance"] if round_ % 2 == 0 else ["appliance", "raw"]:
                if name == "raw":
                    out = subprocess.run(
                        [sys.executable, "-c", RAW, str(path), str(model.path), device, compute],
                        capture_output=True,
                        text=True,
                        check=True,
                        cwd=REPO,
                    )
                    figures = json.loads(out.stdout.strip().splitlines()[-1])
                    results[name].append((figures["seconds"], figures["peak"]))
                else:
                    with Served() as app:
                        seconds = app.transcribe(wav, "long.wav")
                    results[name].append((seconds, app.peak_rss))
                seconds, peak = results[name][-1]
                print(f"round {round_ + 1} {name:>9}: {seconds:.1f} s, peak {peak / 2**20:.0f} MB", flush=True)
    raw_s, raw_peak = min(s for s, _ in results["raw"]), min(p for _, p in results["raw"])
    app_s, app_peak = min(s for s, _ in results["appliance"]), max(p for _, p in results["appliance"])
    print(
        f"\n{args.audio.name} looped to {args.seconds:.0f} s ({len(wav) / 2**20:.0f} MB WAV); model {model.name} on {device} ({compute})"
    )
    print(f"raw batched pipeline: {raw_s:.1f} s ({args.seconds / raw_s:.1f}x real time), peak {raw_peak / 2**20:.0f} MB")
    print(f"appliance over HTTP:  {app_s:.1f} s ({args.seconds / app_s:.1f}x real time), peak {app_peak / 2**20:.0f} MB")
    print(f"time ratio appliance / raw: {app_s / raw_s:.2f}; memory: {app_peak / 2**20:.0f} MB vs {raw_peak / 2**20:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
