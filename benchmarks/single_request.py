"""Benchmark: one request at a time, the appliance over HTTP vs sequential faster-whisper.

    python benchmarks/single_request.py PATH/sample.wav [--seconds 120] [--pairs 7] [--unshared]

The recording is looped to `--seconds`. Each pair times sequential faster-whisper in this process
(`WhisperModel.transcribe`, word timestamps, beam 5, every core: how a peer serves one request) and the
appliance (its own `appliance serve` process, default plan) on the same audio, in alternating order
(these machines are noisy); the ratio appliance / sequential is printed per pair and as a median.
`--unshared` also times an appliance with `worker.share_idle_lanes = false` (each job on its own lane
only, the plan before lanes) in the same pairs, for a before/after in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.load import looped  # noqa: E402
from benchmarks.serve import Served  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--unshared", action="store_true", help="also time each job on its own lane only")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from appliance.transcription.asr import ModelRegistry, resolve_device
    from appliance.transcription.capacity import for_settings

    wav, audio = looped(args.audio.read_bytes(), args.seconds)
    shared = Served()
    settings = shared.settings
    model = ModelRegistry(settings.models.models_dir).get(settings.models.default_model)
    device, compute = resolve_device(settings.models)
    plan = for_settings(settings)
    whisper = WhisperModel(str(model.path), device=device, compute_type=compute)
    list(whisper.transcribe(audio[: 16000 * 5], word_timestamps=True)[0])  # warm-up

    def sequential() -> float:
        began = time.perf_counter()
        list(whisper.transcribe(audio, word_timestamps=True, beam_size=5)[0])
        return time.perf_counter() - began

    apps = {"appliance": shared}
    if args.unshared:
        apps["unshared"] = Served({"APPLIANCE_WORKER__SHARE_IDLE_LANES": "false"})
    for app in apps.values():
        app.__enter__()
        app.transcribe(wav[: 44 + 16000 * 2 * 3], "warm.wav")  # the model loaded once
    times: dict[str, list[float]] = {"sequential": [], **{name: [] for name in apps}}
    try:
        for pair in range(args.pairs):
            order = ["sequential", *apps]
            order = order[pair % len(order) :] + order[: pair % len(order)]
            for name in order:
                times[name].append(sequential() if name == "sequential" else apps[name].transcribe(wav))
            print(
                f"pair {pair + 1}: "
                + ", ".join(f"{name} {times[name][-1]:.2f} s" for name in times)
                + "; ratio "
                + ", ".join(f"{name} {times[name][-1] / times['sequential'][-1]:.2f}" for name in apps),
                flush=True,
            )
    finally:
        for app in apps.values():
            app.__exit__(None, None, None)
    print(
        f"\n{args.audio.name} looped to {args.seconds:.0f} s; model {model.name} on {device} ({compute}); "
        f"appliance plan: {plan.workers_per_device} lane(s) x {plan.cpu_threads or 'all'} thread(s); {args.pairs} pairs"
    )
    for name, values in times.items():
        print(f"{name:>10}: median {statistics.median(values):.2f} s ({args.seconds / statistics.median(values):.1f}x real time)")
    for name, app in apps.items():
        ratios = [a / s for a, s in zip(times[name], times["sequential"], strict=True)]
        print(
            f"{name:>10} / sequential: median ratio {statistics.median(ratios):.2f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)})"
        )
        print(f"{name:>10}: peak resident memory {app.peak_rss / 2**20:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
