"""Shared fixtures: a private cache per test session, the real-data root, devices."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    os.environ["AOMSCOPE_CACHE_DIR"] = str(tmp_path_factory.mktemp("aomcache"))
    yield


def _data_root() -> Path | None:
    root = os.environ.get("AOMSCOPE_DATA_ROOT")
    if root and (Path(root) / "MNIST" / "raw").is_dir():
        return Path(root)
    return None


def missing(reason: str) -> None:
    """Skip a test whose data or browser is missing here; in CI (``CI=true``), where ``.ci/run``
    provides both, fail it instead: a suite that silently skips half of itself proves nothing."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def data_root() -> Path:
    root = _data_root()
    if root is None:
        missing("real MNIST not found: set AOMSCOPE_DATA_ROOT to a folder holding MNIST/raw "
                "(torchvision layout), e.g. ../shared/datasets")
    return root
