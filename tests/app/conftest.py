"""AppTest fixtures: a private AOMscope home per test, empty Streamlit caches, no stray workers."""

import shutil

import pytest
import streamlit as st

from aomcore import JobRunner, Workspace, default_train_config, run_inline


@pytest.fixture(autouse=True)
def _clear_streamlit_caches():
    """All AppTests share one process and session id: start each from empty caches."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    JobRunner.shutdown_all()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """``$AOMSCOPE_HOME`` for this test: its workspaces are its own."""
    path = tmp_path / "aomscope-home"
    monkeypatch.setenv("AOMSCOPE_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def digits_template(tmp_path_factory):
    """A workspace with zoo:digits_net trained on digits (v0), made once and copied into each test."""
    ws = Workspace.create(tmp_path_factory.mktemp("template"), name="digits", dataset="digits")
    run_inline(ws, "train", {"arch": "zoo:digits_net", "config": default_train_config("digits").__dict__,
                             "snapshots": 3})
    return ws.path


@pytest.fixture
def trained(home, digits_template):
    """This test's home holds the trained digits workspace (the one the app opens)."""
    target = home / "workspaces" / digits_template.name
    shutil.copytree(digits_template, target)
    return Workspace(target)
