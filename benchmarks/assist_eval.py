"""Score the summariser on the written meetings in benchmarks/assist_eval/ (hand-written reference
action items), with any text model directory:

    python benchmarks/assist_eval.py MODEL_DIR [--max-new-tokens N] [--json]

- action-item recall: a reference item is found when one predicted action item holds all its keywords
  (owner recall: and names its owner);
- citation validity: of every (claim, cited segment) pair, the share whose segment exists and shares a
  content word with the claim; shown for the model's own citations and for those matched by shared words;
- invented names: capitalised words in the summary (claims, owners) that appear nowhere in the meeting.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from appliance.assist import summaries  # noqa: E402
from appliance.assist.engine import LocalEngine, inspect_llm_dir  # noqa: E402
from appliance.assist.retrieval import shared_words  # noqa: E402
from appliance.transcripts.document import Segment, Speaker, Transcript  # noqa: E402

SET = REPO / "benchmarks" / "assist_eval" / "meetings.json"
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
COMMON = {"The", "This", "That", "Speaker", "Summary", "Key", "Action", "Decision", "Open", "Question"}


def meeting_doc(meeting: dict) -> Transcript:  # type: ignore[type-arg]
    segments, at = [], 0.0
    for i, (speaker, text) in enumerate(meeting["lines"]):
        length = 0.4 * len(text.split())
        segments.append(Segment(id=i, start=at, end=at + length, text=text, speaker=speaker))
        at += length + 0.6
    speakers = [Speaker(id=k, label=f"Speaker {n}", display_name=v) for n, (k, v) in enumerate(meeting["speakers"].items(), 1)]
    return Transcript(id=meeting["id"], language=meeting["language"], duration=at, segments=segments, speakers=speakers)


def score(meeting: dict, result: summaries.Summary, doc: Transcript) -> dict:  # type: ignore[type-arg]
    found = owners = 0
    for ref in meeting["actions"]:
        hits = [a for a in result.action_items if all(k in a.text.lower() for k in ref["keywords"])]
        found += bool(hits)
        owners += any((a.owner or "").lower() == ref["owner"].lower() or ref["owner"].lower() in a.text.lower() for a in hits)
    text = {s.id: s.text for s in doc.segments}
    pairs = {"cited": [0, 0], "matched": [0, 0]}
    for claim in result.claims():
        kind = "matched" if claim.matched else "cited"
        for c in claim.segments:
            pairs[kind][1] += 1
            pairs[kind][0] += c in text and shared_words(claim.text, text[c]) >= 1
    corpus = " ".join(text.values()).lower() + " " + " ".join(meeting["speakers"].values()).lower()
    said = [result.summary, *(c.text for c in result.claims()), *(a.owner or "" for a in result.action_items)]
    names = {w for s in said for w in _CAPITALISED.findall(s)} - COMMON
    invented = sorted(n for n in names if n.lower() not in corpus)
    return {
        "id": meeting["id"],
        "actions_reference": len(meeting["actions"]),
        "actions_found": found,
        "owners_found": owners,
        "actions_predicted": len(result.action_items),
        "cited_valid": pairs["cited"],
        "matched_valid": pairs["matched"],
        "dropped_citations": result.dropped_citations,
        "invented_names": invented,
        "note": result.note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--max-new-tokens", type=int, default=500)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--meetings", type=int, default=0, help="only the first N meetings (a quick check)")
    parser.add_argument(
        "--no-action-step", action="store_true", help="without the dedicated action-item step (the summary's JSON only)"
    )
    args = parser.parse_args()
    engine = LocalEngine(inspect_llm_dir(args.model_dir), device=args.device)
    rows = []
    started = time.monotonic()
    meetings = json.loads(SET.read_text(encoding="utf-8"))
    for meeting in meetings[: args.meetings or None]:
        doc = meeting_doc(meeting)
        rows.append(
            score(
                meeting,
                summaries.summarize(doc, engine, max_new_tokens=args.max_new_tokens, action_step=not args.no_action_step),
                doc,
            )
        )
    total = {
        "model": engine.name,
        "action_step": not args.no_action_step,
        "meetings": len(rows),
        "action_recall": sum(r["actions_found"] for r in rows) / sum(r["actions_reference"] for r in rows),
        "owner_recall": sum(r["owners_found"] for r in rows) / sum(r["actions_reference"] for r in rows),
        "cited_pairs": sum(r["cited_valid"][1] for r in rows),
        "cited_valid": sum(r["cited_valid"][0] for r in rows) / max(1, sum(r["cited_valid"][1] for r in rows)),
        "matched_pairs": sum(r["matched_valid"][1] for r in rows),
        "matched_valid": sum(r["matched_valid"][0] for r in rows) / max(1, sum(r["matched_valid"][1] for r in rows)),
        "dropped_citations": sum(r["dropped_citations"] for r in rows),
        "invented_names": sum(len(r["invented_names"]) for r in rows),
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps({"total": total, "meetings": rows}, indent=2))
        return
    for r in rows:
        print(
            f"{r['id']:<18} actions {r['actions_found']}/{r['actions_reference']} (owners {r['owners_found']}, predicted {r['actions_predicted']})"
            f"  cited valid {r['cited_valid'][0]}/{r['cited_valid'][1]}  matched valid {r['matched_valid'][0]}/{r['matched_valid'][1]}"
            f"  dropped {r['dropped_citations']}  invented {', '.join(r['invented_names']) or '-'}"
        )
    print(
        f"total ({total['model']}, action step {'on' if total['action_step'] else 'off'}): action-item recall {total['action_recall']:.2f}, owner recall {total['owner_recall']:.2f}, "
        f"model citations valid {total['cited_valid']:.2f} of {total['cited_pairs']}, matched citations valid "
        f"{total['matched_valid']:.2f} of {total['matched_pairs']}, dropped {total['dropped_citations']}, invented names "
        f"{total['invented_names']}, {total['seconds']} s"
    )


if __name__ == "__main__":
    main()
