"""The licence module's branch coverage stays at or above 95% (a gate, run on its own tests)."""

import subprocess
import sys

from tests.support import REPO


def test_licence_module_branch_coverage_at_least_95_percent() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/licensing/test_licensing.py",
            "--cov=appliance.licensing.licence",
            "--cov-branch",
            "--cov-report=term",
            "--cov-fail-under=95",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Required test coverage of 95% reached" in result.stdout
