"""Speed of the local AI: generation tokens per second, and the time to a finished summary of a 10-minute
and a 1-hour meeting (map-reduce), on this machine's CPU or a GPU:

    python benchmarks/assist_speed.py MODEL_DIR [--device cpu|cuda] [--minutes 10 60] [--max-new-tokens N]

The meetings are the evaluation set's lines repeated with their speakers (about 150 words a minute, as
people speak); the time is wall-clock, and each summary's ratio to its recording's length is printed.
On a GPU host: the same command with --device cuda (CTranslate2's CUDA build is the one in the image).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from appliance.assist import summaries  # noqa: E402
from appliance.assist.engine import LocalEngine, Message, inspect_llm_dir  # noqa: E402
from appliance.transcripts.document import Segment, Speaker, Transcript  # noqa: E402

WORDS_PER_MINUTE = 150


def meeting(minutes: float) -> Transcript:
    sets = json.loads((REPO / "benchmarks" / "assist_eval" / "meetings.json").read_text(encoding="utf-8"))
    lines = [(f"{m['id']}-{s}", t) for m in sets for s, t in m["lines"]]
    segments: list[Segment] = []
    at, words, i = 0.0, 0, 0
    while words < minutes * WORDS_PER_MINUTE:
        speaker, text = lines[i % len(lines)]
        length = len(text.split()) * 60 / WORDS_PER_MINUTE
        segments.append(Segment(id=i, start=at, end=at + length, text=text, speaker=speaker))
        at, words, i = at + length, words + len(text.split()), i + 1
    speakers = [Speaker(id=k, label=k) for k in dict.fromkeys(s.speaker for s in segments if s.speaker)]
    return Transcript(id=f"{minutes}min", language="en", duration=at, segments=segments, speakers=speakers)


def token_speed(engine: LocalEngine, doc: Transcript, max_new_tokens: int) -> dict[str, float]:
    """Prefill (prompt tokens a second, from the time to the first token) and decoding (tokens a second after it)."""
    lines = summaries.transcript_lines(doc)[:60]
    messages = summaries.messages_for(lines, "en")
    prompt_tokens = engine.count_tokens(engine.template.render(messages))
    started = time.monotonic()
    first = None
    n = 0
    for _piece in engine.stream(messages, max_tokens=max_new_tokens):
        n += 1
        if first is None:
            first = time.monotonic()
    end = time.monotonic()
    assert first is not None
    return {
        "prompt_tokens": prompt_tokens,
        "prefill_tokens_per_s": prompt_tokens / (first - started),
        "decode_tokens_per_s": (n - 1) / max(1e-6, end - first),
        "generated": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default="auto")
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--max-new-tokens", type=int, default=400)
    parser.add_argument("--context", type=int, default=0, help="use less of the model's context (more map steps)")
    args = parser.parse_args()
    info = inspect_llm_dir(args.model_dir)
    if args.context:
        from dataclasses import replace

        info = replace(info, context_length=args.context)
    engine = LocalEngine(info, device=args.device, compute_type=args.compute_type)
    loading = time.monotonic()
    engine.count_tokens("warm up")
    list(engine.stream([Message("user", "Hello")], max_tokens=4))
    print(
        f"model {info.name} on {'/'.join(engine.device())}: loaded in {time.monotonic() - loading:.1f} s, context {info.context_length}"
    )
    speed = token_speed(engine, meeting(10), min(args.max_new_tokens, 200))
    print(
        f"tokens: prompt {speed['prompt_tokens']} at {speed['prefill_tokens_per_s']:.0f}/s (prefill), "
        f"{speed['generated']} generated at {speed['decode_tokens_per_s']:.1f}/s"
    )
    for minutes in args.minutes:
        doc = meeting(minutes)
        tokens = sum(engine.count_tokens(line) for line in summaries.transcript_lines(doc))
        started = time.monotonic()
        result = summaries.summarize(doc, engine, max_new_tokens=args.max_new_tokens)
        took = time.monotonic() - started
        print(
            f"{minutes:>5.0f} min meeting ({len(doc.segments)} segments, {tokens} tokens): summary in {took:.1f} s, "
            f"{result.parts} part(s){' + merge' if result.parts > 1 else ''}, {took / doc.duration:.3f} x the recording's length"
        )


if __name__ == "__main__":
    main()
