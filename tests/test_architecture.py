"""The rooms of docs/architecture.md hold: import-linter's contracts in pyproject.toml, which
follow every import at any depth (in functions too), pass on the tree as it is."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(300)


def test_every_contract_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    kept = done.stdout.count(" KEPT")
    assert kept == len(contracts["contracts"]), done.stdout  # none skipped or misnamed


def test_the_architecture_page_names_every_contract() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = [c["name"] for c in contracts["contracts"] if c["name"] not in page]
    assert missing == []
