"""Evaluate voice-profile suggestions: enrol voices from one session, recognise them in another.

    python benchmarks/voice_profiles.py [--threshold T | --calibrate] [--sweep]

Real recordings of several consenting people are not part of this repository, so the voices are
SYNTHETIC: espeak-ng voice variants at different pitches, each saying different sentences (and at a
different speed) in session 1 and session 2. Each voice is enrolled from session 1 through the embedded
engine (the same call the enrolment upload uses); its session 2 is then matched against:
- all enrolled profiles: "known" is right when the voice's own name is suggested;
- all profiles but its own (leave-one-out): "unknown" is right when no name is suggested.
Prints both rates, the threshold and n; --sweep prints them for a range of thresholds; --calibrate
chooses the threshold on six other synthetic voices first (the evaluated ones never choose it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from appliance.speakers.profiles import Candidate  # noqa: E402
from appliance.speakers.suggestions import THRESHOLDS, best_matches  # noqa: E402
from appliance.transcription.audio import decode  # noqa: E402
from appliance.transcription.diarization.embedded import EmbeddedDiarizer  # noqa: E402

# (name, espeak-ng voice, pitch 0..99): ten synthetic "people"
VOICES = [
    ("Ada", "en-us", 50),
    ("Bea", "en+f3", 62),
    ("Cal", "en+m3", 38),
    ("Dev", "en+m5", 45),
    ("Eve", "en+f4", 72),
    ("Finn", "en-gb-scotland+m2", 33),
    ("Gia", "en+f2", 56),
    ("Hal", "en-029+m4", 28),
    ("Ivy", "en-gb-x-rp+f1", 66),
    ("Jon", "en-us+m7", 52),
]
# Other synthetic voices, used only to choose the threshold (--calibrate), never in the rates above.
CALIBRATION = [
    ("Kim", "en+f5", 58),
    ("Lou", "en-us+m6", 42),
    ("Max", "en+m2", 47),
    ("Noa", "en-us+f1", 64),
    ("Oli", "en+m4", 36),
    ("Pia", "en-us+m8", 55),
]
SENTENCES = [
    "The quarterly numbers came in higher than we expected, mostly thanks to the new northern office.",
    "Could you send me the draft before lunch, so I can read it on the train this afternoon?",
    "I think we should move the meeting to Thursday, because half of the team is away on Monday.",
    "The printer on the second floor has been broken for a week and nobody seems to know why.",
    "Let me check the calendar and get back to you with two or three possible dates.",
    "We tested the new version on twenty machines and found only one small problem with the fonts.",
    "My grandmother grew tomatoes, beans and potatoes in a tiny garden behind the kitchen.",
    "If the weather holds, the ferry leaves at seven and we arrive on the island before noon.",
    "Please remember to lock the side door when you leave, the alarm company called again.",
    "The library closes early on Fridays, so bring the books back before four o'clock.",
    "She told me the recipe needs two eggs, a cup of flour and a pinch of salt, nothing more.",
    "Our budget for next year depends on whether the council approves the second grant.",
    "He fixed the bicycle with a piece of wire and some tape, and it still works today.",
]


@dataclass(frozen=True)
class Rates:
    threshold: float
    known_right: int
    unknown_right: int
    n: int

    @property
    def known_rate(self) -> float:
        return self.known_right / self.n

    @property
    def unknown_rate(self) -> float:
        return self.unknown_right / self.n


def synthesise(voice: str, pitch: int, text: str, speed: int) -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is needed to synthesise the voices")
    wav = subprocess.run(
        [espeak, "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", text], check=True, capture_output=True
    ).stdout
    return decode(wav).samples


def sessions(index: int, voice: str, pitch: int) -> tuple[np.ndarray, np.ndarray]:
    """Session 1: three sentences at 150 words a minute; session 2: two others, faster, a little higher."""
    first = " ".join(SENTENCES[(index + k) % len(SENTENCES)] for k in range(3))
    second = " ".join(SENTENCES[(index + k) % len(SENTENCES)] for k in range(3, 5))
    return synthesise(voice, pitch, first, 150), synthesise(voice, min(pitch + 4, 99), second, 170)


def voices_of(
    engine: EmbeddedDiarizer, people: list[tuple[str, str, int]] = VOICES
) -> tuple[list[Candidate], dict[str, np.ndarray]]:
    enrolled: list[Candidate] = []
    later: dict[str, np.ndarray] = {}
    for index, (name, voice, pitch) in enumerate(people):
        one, two = sessions(index, voice, pitch)
        v1, v2 = engine.voice(one), engine.voice(two)
        assert v1 is not None and v2 is not None, f"no speech found for {name}"
        enrolled.append(Candidate(name, name, v1))
        later[name] = v2
    return enrolled, later


def rates(enrolled: list[Candidate], later: dict[str, np.ndarray], threshold: float) -> Rates:
    known = unknown = 0
    for name, voice in later.items():
        found = best_matches({"S1": voice}, enrolled, threshold).get("S1")
        known += found is not None and found.name == name
        others = [c for c in enrolled if c.name != name]
        unknown += "S1" not in best_matches({"S1": voice}, others, threshold)
    return Rates(threshold, known, unknown, len(later))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=THRESHOLDS["embedded"])
    parser.add_argument("--sweep", action="store_true", help="print the rates for thresholds 0.90 to 0.99")
    parser.add_argument(
        "--calibrate", action="store_true", help="choose the threshold on the calibration voices (not the evaluated ones)"
    )
    args = parser.parse_args()
    engine = EmbeddedDiarizer()
    if args.calibrate:
        cal_enrolled, cal_later = voices_of(engine, CALIBRATION)
        grid = [float(t) for t in np.arange(0.90, 0.995, 0.0025)]
        scored = [(min(r.known_rate, r.unknown_rate), r) for r in (rates(cal_enrolled, cal_later, t) for t in grid)]
        best = max(s for s, _ in scored)
        chosen = [r.threshold for s, r in scored if s == best]
        args.threshold = round(float(np.median(chosen)), 3)  # the middle of the best range: margin both ways
        print(f"calibration voices: {len(CALIBRATION)}; best range {chosen[0]:.4f}..{chosen[-1]:.4f} (min rate {best:.0%})")
    enrolled, later = voices_of(engine)
    names = [c.name for c in enrolled]
    print("synthetic voices (espeak-ng variants and pitches), two sessions each:", ", ".join(names))
    scores = np.array([[float(np.dot(later[a], c.voice)) for c in enrolled] for a in names])
    same, other = np.diag(scores), scores[~np.eye(len(names), dtype=bool)]
    print(f"same voice, other session: min {same.min():.3f} median {np.median(same):.3f}")
    print(f"different voices:          max {other.max():.3f} median {np.median(other):.3f}")
    if args.sweep:
        for t in np.arange(0.90, 0.995, 0.005):
            r = rates(enrolled, later, float(t))
            print(f"threshold {t:.3f}: known {r.known_rate:.0%}  unknown {r.unknown_rate:.0%}")
    r = rates(enrolled, later, args.threshold)
    print(f"threshold: {r.threshold:.3f}")
    print(f"n: {r.n}")
    print(f"known voice, own name suggested first: {r.known_rate:.0%} ({r.known_right}/{r.n})")
    print(f"unknown voice, no name suggested: {r.unknown_rate:.0%} ({r.unknown_right}/{r.n})")


if __name__ == "__main__":
    main()
