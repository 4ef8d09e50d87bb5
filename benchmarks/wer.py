"""Text normalisation for word error rates: lower case, punctuation dropped, whitespace collapsed.

Shared by the benchmarks and the tests that judge transcripts against a script, so a number in one is
comparable with a number in the other.
"""

from __future__ import annotations

import re


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())
