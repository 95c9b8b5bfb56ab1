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


@pytest.fixture
def data_root() -> Path:
    root = _data_root()
    if root is None:
        pytest.skip("real MNIST not found: set AOMSCOPE_DATA_ROOT to a folder holding MNIST/raw "
                    "(torchvision layout), e.g. ../shared/datasets")
    return root
