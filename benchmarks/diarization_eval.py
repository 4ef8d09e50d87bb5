"""Evaluate diarization: DER and speaker-attributed WER against references, RTF per stage, peak memory.

    python benchmarks/diarization_eval.py PATH/sample.wav [--rttm PATH/sample.rttm] [--stm PATH/sample.stm]
                                          [--engine embedded|pyannote|channel] [--model tiny.en] [--speakers N]

DER uses pyannote.metrics with overlap included, at collar 0 and 0.25 s, on the engine's own turns and
on the transcript's speaker labels (what users see: segments after sentence cutting and turn smoothing).
Segment lengths (median and 95th percentile, words and seconds) are printed for sentence-sized segments
and, in the same run, for the decoder's own segments (sentences=false) as the baseline. Speaker-attributed WER
(cpWER) concatenates each speaker's words, maps hypothesis speakers to reference speakers so that
the total error is smallest (Hungarian assignment), and divides the errors by the reference words.
"""

from __future__ import annotations

import argparse
import itertools
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


def _lengths(segments: list) -> str:  # type: ignore[type-arg]
    words = [len(s.words) or len(s.text.split()) for s in segments]
    seconds = [s.end - s.start for s in segments]

    def p95(values: list[float]) -> float:
        return float(np.percentile(values, 95)) if values else 0.0

    return (
        f"{len(segments)}: words median {np.median(words):.0f} p95 {p95(words):.0f}; "
        f"seconds median {np.median(seconds):.1f} p95 {p95(seconds):.1f}"
    )


HOLD = 1.0  # seconds


def _transcript_turns(segments: list) -> list[tuple[float, float, str]]:  # type: ignore[type-arg]
    """The speaker turns a reader sees: consecutive segments of one speaker are one turn, from its first
    word to its last (a pause between two sentences of one speaker is still their turn)."""
    turns: list[tuple[float, float, str]] = []
    for seg in segments:
        if not seg.speaker:
            continue
        if turns and turns[-1][2] == seg.speaker:
            turns[-1] = (turns[-1][0], max(turns[-1][1], seg.end), seg.speaker)
        else:
            turns.append((seg.start, seg.end, seg.speaker))
    # A turn lasts until the next speaker starts, across a short silence (a reader sees no gap there).
    return [
        (start, nxt[0] if nxt and 0 < nxt[0] - end < HOLD else end, speaker)
        for (start, end, speaker), nxt in zip(turns, [*turns[1:], None], strict=True)
    ]


def _changes(segments: list) -> int:  # type: ignore[type-arg]
    speakers = [s.speaker for s in segments if s.speaker]
    return sum(a != b for a, b in itertools.pairwise(speakers))


def _ref_turns(reference: list[tuple[float, float, str]]) -> int:
    ordered = [s for _, _, s in sorted(reference)]
    return 1 + sum(a != b for a, b in itertools.pairwise(ordered)) if ordered else 0


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
    parser.add_argument("--decoder-segments", action="store_true", help="keep the decoder's segments (the baseline)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the second run with the decoder's segments")
    args = parser.parse_args()

    from appliance.core.config import load
    from appliance.transcription.asr import ModelRegistry, WhisperEngine
    from appliance.transcription.diarization.engines import DiarizationEngines
    from appliance.transcription.options import parse
    from appliance.transcription.pipeline import run

    settings = load(None, {"APPLIANCE_MODELS_DIR": str(REPO / "models")})
    raw: dict[str, object] = {"diarize": True, "diarization_engine": args.engine, "num_speakers": args.speakers}
    if args.decoder_segments:
        raw["sentences"] = False
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
        labelled = _transcript_turns(output.result.segments)
        print(f"transcript DER collar 0.00: {der(reference, labelled, 0.0) * 100:.1f}%")
        print(f"transcript DER collar 0.25: {der(reference, labelled, 0.25) * 100:.1f}%")
        print(
            f"speaker changes in the transcript: {_changes(output.result.segments)}; turns in reference: {_ref_turns(reference)}"
        )
    print("segments " + _lengths(output.result.segments))
    if not args.decoder_segments and not args.no_baseline:
        baseline = parse({**raw, "sentences": False}, settings, ModelRegistry(settings.models.models_dir), engines)
        decoder = run(data, baseline, asr, lambda p: None, lambda: False, engines)[0]
        print("baseline (decoder segments) " + _lengths(decoder.result.segments))
        print(f"baseline speaker changes: {_changes(decoder.result.segments)}")
        if rttm.exists():
            labelled = _transcript_turns(decoder.result.segments)
            print(f"baseline transcript DER collar 0.00: {der(read_rttm(rttm), labelled, 0.0) * 100:.1f}%")
            print(f"baseline transcript DER collar 0.25: {der(read_rttm(rttm), labelled, 0.25) * 100:.1f}%")
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
