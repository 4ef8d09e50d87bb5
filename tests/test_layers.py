"""The import-linter contracts hold on the tree, and a deliberate wrong-way import breaks them (run on a
copy of the package, so the tree itself is never touched)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

LINT = str(Path(sys.executable).parent / "lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT, "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
    )


def test_the_layers_hold(tmp_path: Path) -> None:
    shutil.copytree(REPO / "appliance", tmp_path / "appliance", ignore=shutil.ignore_patterns("static", "templates", "data"))
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "Domain layers KEPT" in kept.stdout
    # The foundation reaching up into the web layer: refused, naming the import.
    (tmp_path / "appliance" / "core" / "wrong_way.py").write_text("from appliance.web import app\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0 and "Domain layers BROKEN" in broken.stdout
    assert "appliance.core.wrong_way -> appliance.web.app" in broken.stdout
    # A bundle tool that needs the appliance installed: refused by the second contract.
    (tmp_path / "appliance" / "core" / "wrong_way.py").unlink()
    tool = tmp_path / "appliance" / "distribution" / "minisign.py"
    tool.write_text(tool.read_text() + "\nfrom appliance.core import config\n")
    assert "Bundle tools need only the standard library and each other BROKEN" in _lint(tmp_path).stdout


def test_no_sql_in_the_web_layer() -> None:
    """Handlers call the domain's functions; SQL lives next to its noun (the module of its table)."""
    import re

    pattern = re.compile(r"\.(execute|query|executemany)\(|\b(SELECT|UPDATE|INSERT INTO|DELETE FROM)\s+\w")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "appliance" / "web").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == [], offenders
