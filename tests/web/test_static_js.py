"""The browser modules' unit tests: `node --test tests/js` (the editor's model, undo, rendering, saving and
keyboard moves; text-to-word alignment; the private-transcript operations, exports and crypto vectors).
Node is required: a missing node fails loudly instead of skipping half of the tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support import REPO


def test_browser_modules_pass_node_test() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required (scripts/test installs nodejs): the browser modules' unit tests did not run")
    result = subprocess.run([node, "--test", str(REPO / "tests" / "js")], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "# fail 0" in result.stdout and "# pass " in result.stdout
    for suite in ("editor-model", "editor-undo", "editor-render", "editor-save", "editor-nav", "align", "crypto", "private-ops"):
        assert (REPO / "tests" / "js" / f"{suite}.test.mjs").is_file(), suite
