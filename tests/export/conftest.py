"""Fixtures of the export tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session-wide directory for converted models, since each conversion takes 5-25 s."""
    path = tmp_path_factory.mktemp("export-cache")
    yield path
    shutil.rmtree(path, ignore_errors=True)
