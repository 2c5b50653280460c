"""Shared fixtures. Tests run against the installed package with MPLBACKEND=Agg."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The bundled sample data folder (``data/``)."""
    return DATA


@pytest.fixture(scope="session", autouse=True)
def bundled_data_untouched():
    """No test may modify a bundled input file: checksums before and after the whole session."""
    files = sorted(p for p in DATA.rglob("*") if p.is_file()) if DATA.exists() else []
    before = {p: sha256(p) for p in files}
    yield
    changed = [str(p) for p in files if not p.exists() or sha256(p) != before[p]]
    assert not changed, f"bundled data modified by the test suite: {changed}"
