"""The README's layout section lists every module of the appliance package, in its package, each once,
and every package; nothing that does not exist."""

from __future__ import annotations

import re

from tests.support import REPO


def _section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text[text.index("## Layout\n") :]
    start = block.index("```\n") + 4
    return block[start : block.index("```\n", start)]


def _listed() -> dict[str, list[str]]:
    """package path under appliance/ ("" for appliance/ itself) → the module names the README lists."""
    listed: dict[str, list[str]] = {}
    current: str | None = None
    for line in _section().splitlines():
        top = re.match(r"appliance/\s+(.*)", line)
        sub = re.match(r"\s{2}([\w/]+)/\s+(.*)", line)
        if top:
            current, rest = "", top.group(1)
        elif sub:
            current, rest = sub.group(1), sub.group(2)
        elif re.match(r"\S", line):
            current = None  # tests/, scripts/, …: outside the package
            continue
        elif current is not None:
            rest = line
        else:
            continue
        if current == "data":
            continue
        words = rest.split(";")[0].split("(")[0]
        listed.setdefault(current, []).extend(w.strip() for w in words.split("·") if w.strip())
    return listed


def test_the_readme_lists_every_module_in_its_package_once() -> None:
    root = REPO / "appliance"
    listed = _listed()
    packages = sorted(str(p.parent.relative_to(root)) for p in root.rglob("__init__.py") if p.parent != root)
    assert sorted(k for k in listed if k) == packages
    for package, names in listed.items():
        directory = root / package if package else root
        actual = sorted(p.stem for p in directory.glob("*.py") if p.stem != "__init__")
        assert sorted(names) == actual, f"appliance/{package}: {sorted(set(names) ^ set(actual))} differ"
        assert len(names) == len(set(names)), f"appliance/{package}: a module listed twice"


def test_the_tests_mirror_the_packages() -> None:
    """One test folder per domain package, named as it is; cross-cutting tests (the CLI, the client, the
    attacks, the layers, the benchmarks) stay at the top."""
    packages = {p.parent.name for p in (REPO / "appliance").glob("*/__init__.py")}
    folders = {p.name for p in (REPO / "tests").iterdir() if p.is_dir() and p.name not in {"data", "js", "__pycache__"}}
    assert folders == packages
    for folder in folders:
        assert list((REPO / "tests" / folder).glob("test_*.py")), f"tests/{folder} has no tests"
