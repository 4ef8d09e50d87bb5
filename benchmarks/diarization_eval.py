"""Evaluate diarization: DER and speaker-attributed WER against references, RTF per stage, peak memory.

    python benchmarks/diarization_eval.py PATH/sample.wav [--rttm PATH/sample.rttm] [--stm PATH/sample.stm]
                                          [--engine embedded|pyannote|channel] [--model tiny.en] [--speakers N]

DER uses pyannote.metrics with overlap included, at collar 0 and 0.25 s. Speaker-attributed WER
(cpWER) concatenates each speaker's words, maps hypothesis speakers to reference speakers so that
the total error is smallest (Hungarian assignment), and divides the errors by the reference words.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["PYANNOTE_METRICS_ENABLED"] = "0"
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import jiwer  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from benchmarks.wer import normalise  # noqa: E402


def read_rttm(path: Path) -> list[tuple[float, float, str]]:
    turns = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "SPEAKER":
            start, duration = float(parts[3]), float(parts[4])
            turns.append((start, start + duration, parts[7]))
    return turns


def read_stm(path: Path) -> dict[str, str]:
    words: dict[str, list[str]] = defaultdict(list)
    for line in path.read_text().splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and not line.startswith(";;"):
            words[parts[2]].append(parts[5])
    return {speaker: normalise(" ".join(text)) for speaker, text in words.items()}


def der(reference: list[tuple[float, float, str]], hypothesis: list[tuple[float, float, str]], collar: float) -> float:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(), Annotation()
    for start, end, speaker in reference:
        ref[Segment(start, end)] = speaker
    for start, end, speaker in hypothesis:
        hyp[Segment(start, end)] = speaker
    return float(DiarizationErrorRate(collar=collar, skip_overlap=False)(ref, hyp))


def cp_wer(reference: dict[str, str], hypothesis: dict[str, str]) -> float:
    """Speaker-attributed WER with the best one-to-one speaker mapping (unmatched text all counts)."""
    from scipy.optimize import linear_sum_assignment

    refs, hyps = list(reference), list(hypothesis)
    size = max(len(refs), len(hyps))
    cost = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            r = reference[refs[i]] if i < len(refs) else ""
            h = hypothesis[hyps[j]] if j < len(hyps) else ""
            if not r:
                cost[i, j] = len(h.split())
            elif not h:
                cost[i, j] = len(r.split())
            else:
                out = jiwer.process_words(r, h)
                cost[i, j] = out.substitutions + out.deletions + out.insertions
    rows, cols = linear_sum_assignment(cost)
    total = sum(len(t.split()) for t in reference.values())
    return float(cost[rows, cols].sum() / max(total, 1))


class PeakRss:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--rttm", type=Path)
    parser.add_argument("--stm", type=Path)
    parser.add_argument("--engine", default=None, help="pyannote, embedded or channel (default: the configured default)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--speakers", type=int, default=None, help="tell the engine the exact count")
    args = parser.parse_args()

    from appliance.core.config import load
    from appliance.transcription.asr import ModelRegistry, WhisperEngine
    from appliance.transcription.diarization.engines import DiarizationEngines
    from appliance.transcription.options import parse
    from appliance.transcription.pipeline import run

    settings = load(None, {"APPLIANCE_MODELS_DIR": str(REPO / "models")})
    raw: dict[str, object] = {"diarize": True, "diarization_engine": args.engine, "num_speakers": args.speakers}
    if args.model:
        raw["model"] = args.model
    engines = DiarizationEngines(settings)
    options = parse(raw, settings, ModelRegistry(settings.models.models_dir), engines)
    asr = WhisperEngine(settings.models)
    data = args.audio.read_bytes()
    asr.load(options.models[0])  # model load is not part of the per-stage times
    engines.get(options.diarization.engine if options.diarization else None)
    with PeakRss() as rss:
        started = time.perf_counter()
        output = run(data, options, asr, lambda p: None, lambda: False, engines)[0]
        total = time.perf_counter() - started
    duration = output.result.duration
    engine = engines.get(options.diarization.engine if options.diarization else None)
    # DER scores the diarizer's own turns; cpWER scores the words as the transcript attributes them.
    turns = output.turns
    print(f"audio {args.audio.name}: {duration:.1f} s; model {output.model.name}; engine {engine.name}")
    t = output.timings
    print(
        f"RTF  decode {t['decode_seconds'] / duration:.4f}  asr {t['asr_seconds'] / duration:.4f}  "
        f"diarize {t['diarize_seconds'] / duration:.4f}  total {total / duration:.4f}   peak RSS {rss.peak / 2**20:.0f} MB"
    )
    print(f"speakers found: {len(output.speakers)}")
    rttm = args.rttm or args.audio.with_suffix(".rttm")
    if rttm.exists():
        reference = read_rttm(rttm)
        print(f"speakers in reference: {len({s for _, _, s in reference})}")
        print(f"DER collar 0.00: {der(reference, [(t.start, t.end, t.speaker) for t in turns], 0.0) * 100:.1f}%")
        print(f"DER collar 0.25: {der(reference, [(t.start, t.end, t.speaker) for t in turns], 0.25) * 100:.1f}%")
    stm = args.stm or args.audio.with_suffix(".stm")
    if stm.exists():
        reference_words = read_stm(stm)
        hypothesis_words: dict[str, list[str]] = defaultdict(list)
        for seg in output.result.segments:
            for word in seg.words:
                hypothesis_words[word.speaker or "?"].append(word.word)
        hyp = {k: normalise(" ".join(v)) for k, v in hypothesis_words.items()}
        in_order = normalise(
            " ".join(line.split(None, 5)[5] for line in stm.read_text().splitlines() if len(line.split(None, 5)) == 6)
        )
        plain = jiwer.wer(in_order, normalise(" ".join(seg.text for seg in output.result.segments)))
        print(
            f"WER (speakers ignored): {plain * 100:.1f}%   speaker-attributed WER (cpWER): {cp_wer(reference_words, hyp) * 100:.1f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
