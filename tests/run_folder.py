"""The folder a test run's workers share (for syntheses and the rehearsal made once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's folder: above each xdist worker's own, or the only process's own."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root
