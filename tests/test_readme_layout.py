"""The README's layout section lists every module of the appliance package, each once, and nothing else."""

from __future__ import annotations

import re

from tests.support import REPO


def _section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Layout\n")
    block = text[start:]
    return block[block.index("```\n") + 4 : block.index("```\n", block.index("```\n") + 4)]


def _listed() -> dict[str, list[str]]:
    """package ("" for appliance/ itself) → the module names the README lists for it."""
    listed: dict[str, list[str]] = {"": []}
    current = ""
    for line in _section().splitlines():
        if line.startswith(("tests/", "scripts/", "benchmarks/", "docs/", "models/")):
            current = "outside"
            continue
        match = re.match(r"\s{2}(\w+)/\s+(.*)", line)
        if match:
            current, rest = match.group(1), match.group(2)
        elif re.match(r"\s{2}[\w ]+:\s", line):
            current, rest = "", line.split(":", 1)[1]
        elif line.startswith(" " * 10) and current != "outside":
            rest = line
        else:
            continue
        if current in ("outside", "data"):
            continue
        words = rest.split(";")[0]
        listed.setdefault(current, []).extend(w.strip() for w in words.split("·") if w.strip())
    return listed


def test_the_readme_lists_every_module_once() -> None:
    root = REPO / "appliance"
    for package, names in _listed().items():
        directory = root / package if package else root
        actual = sorted(p.stem for p in directory.glob("*.py") if p.stem != "__init__")
        assert sorted(names) == actual, f"appliance/{package}: README {sorted(set(names) ^ set(actual))} differ"
        assert len(names) == len(set(names)), f"appliance/{package}: listed twice"
    packages = sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file())
    assert sorted(k for k in _listed() if k) == packages
