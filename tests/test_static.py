"""The code stays ruff-clean, ruff-formatted and type-checks: the style guide's static
promises, kept by CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _python_m(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True)


def test_ruff_finds_nothing() -> None:
    result = _python_m("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_would_change_nothing() -> None:
    result = _python_m("ruff", "format", "--check", "--no-cache", "seqrepofs", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing(tmp_path: Path) -> None:
    result = _python_m("mypy", "seqrepofs", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_would_notice_a_wrong_annotation(tmp_path: Path) -> None:
    """The check above is live: the same configuration flags a function that returns a str
    where it promises an int (so an empty or misconfigured run cannot pass for a clean one)."""
    bad = tmp_path / "seqrepofs_probe.py"
    bad.write_text("def width() -> int:\n    return 'sixty'\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    result = _python_m("mypy", bad.name, "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert result.returncode == 1
    assert "Incompatible return value type" in result.stdout
