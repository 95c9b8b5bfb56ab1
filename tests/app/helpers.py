"""Driving the dashboard in AppTest: open it, wait for its jobs, read its workspace."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from aomcore import Workspace, default_root, list_jobs, list_workspaces
from aomcore.store.workspace import open_by_id
from tests.conftest import REPO

APP = str(REPO / "app.py")


def app(timeout: int = 120) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def on_workspaces(at: AppTest) -> AppTest:
    """The tab on Workspaces, whose dataset form is the one place workspaces are made."""
    if not any(w.key == "dataset_kind" for w in at.selectbox):
        at.switch_page("app_pages/workspace/workspaces.py").run()
    return at


def create_workspace(at: AppTest) -> AppTest:
    """Press Create on Workspaces' dataset form. On success the page switches to the new workspace's
    Model & data (``st.switch_page``); AppTest draws it but would rerun Workspaces next, so it is told."""
    at.button(key="use_dataset").click().run()
    if at.title and at.title[0].value == "Model & data":
        at.switch_page("app_pages/workspace/model_data.py")  # for the next run; this one is drawn
    return at


def workspace(at: AppTest) -> Workspace:
    """The workspace the tab shows (its id is in the URL)."""
    return open_by_id(default_root(), at.query_params["ws"])


def wait_jobs(at: AppTest, page: str | None = None, timeout: float = 300) -> AppTest:
    """Wait until no job of any workspace is queued or running, then reload the tab (a new session
    at the same URL, on ``page`` if given) and return it: what the job made is read from disk."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(j["status"] in ("queued", "running") for w in list_workspaces(default_root())
                   for j in list_jobs(w)):
            break
        time.sleep(0.25)
    else:
        raise AssertionError("jobs still running after the timeout")
    fresh = AppTest.from_file(APP, default_timeout=at.default_timeout)
    fresh.query_params["ws"] = at.query_params["ws"]
    fresh.run()
    if page is not None:
        fresh.switch_page(page).run()
    assert not fresh.exception, fresh.exception
    return fresh


def texts(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.markdown, *at.caption, *at.info, *at.success, *at.title, *at.subheader,
                                      *at.warning, *at.error])
