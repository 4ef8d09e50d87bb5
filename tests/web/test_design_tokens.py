"""The design tokens in the one stylesheet meet WCAG contrast in both themes: text at least 4.5:1 on every
surface it is drawn on, control borders and focus rings at least 3:1 against what is next to them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).parents[2] / "appliance" / "web" / "static" / "sotto-0.6.css"
SURFACES = ["bg", "surface", "soft"]
HIGHLIGHTS = ["mark", "cur", "found-cur", "seg-current", "banner", "bad", "added", "drop"]
SPEAKERS = [f"spk-{i}" for i in range(12)]

TEXT: list[tuple[str, str]] = [
    *[(text, surface) for text in ("fg", "muted", "accent", "danger", "ok", "warn") for surface in SURFACES],
    *[("fg", h) for h in HIGHLIGHTS],
    ("muted", "seg-current"),
    ("accent-fg", "accent"),
    ("danger-fg", "danger"),
    ("later", "seg-current"),
    ("later", "bg"),
    *[(spk, surface) for spk in SPEAKERS for surface in (*SURFACES, "seg-current")],
]
CONTROLS: list[tuple[str, str]] = [
    *[("control", surface) for surface in SURFACES],
    *[("focus", s) for s in (*SURFACES, "cur", "seg-current", "mark")],
    *[("danger", s) for s in SURFACES],  # a danger button's border
    ("lc", "bg"),  # the dotted underline of an unsure word
]


def _tokens() -> dict[str, tuple[str, str]]:
    root = re.search(r":root \{(.*?)\n\}", CSS.read_text(), re.S)
    assert root, "no :root block"
    pairs = re.findall(r"--([\w-]+):\s*light-dark\((#[0-9a-fA-F]{6}),\s*(#[0-9a-fA-F]{6})\)", root.group(1))
    return {name: (light, dark) for name, light, dark in pairs}


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_helper_matches_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


@pytest.mark.parametrize("theme", [0, 1], ids=["light", "dark"])
def test_text_and_controls_meet_contrast(theme: int) -> None:
    tokens = _tokens()
    missing = {name for pair in TEXT + CONTROLS for name in pair} - set(tokens)
    assert not missing, f"tokens not defined as light-dark(#rrggbb, #rrggbb): {missing}"
    low = [
        f"{fg} on {bg}: {contrast(tokens[fg][theme], tokens[bg][theme]):.2f} < {need}"
        for pairs, need in ((TEXT, 4.5), (CONTROLS, 3.0))
        for fg, bg in pairs
        if contrast(tokens[fg][theme], tokens[bg][theme]) < need
    ]
    assert not low, low


def test_no_colour_outside_the_tokens() -> None:
    rules = CSS.read_text().split(':root[data-theme="dark"]', 1)[1]
    assert re.findall(r"#[0-9a-fA-F]{3,8}\b|rgba?\(", rules) == [], "a colour literal outside the tokens"
