"""Shared mode without sign-in: capability URLs, no listing, per-workspace job and disk quotas."""

import os
import subprocess
import sys
from pathlib import Path

from aomcore import Workspace, list_jobs
from aomcore.base.policy import current_policy
from tests.app.helpers import APP, app, create_workspace, on_workspaces, texts, wait_jobs


def test_shared_mode_lists_nothing_and_a_new_tab_gets_its_own_workspace(trained, monkeypatch):
    monkeypatch.setenv("AOMSCOPE_SHARED", "1")
    at = app()
    assert at.query_params["ws"] != trained.id  # nothing is opened by default, and nothing is listed
    at.switch_page("app_pages/workspace/workspaces.py").run()
    assert not at.exception and "workspaces are not listed" in texts(at)
    assert trained.id not in texts(at)


def test_a_second_heavy_job_of_a_workspace_is_refused_with_a_message(trained, monkeypatch):
    monkeypatch.setenv("AOMSCOPE_SHARED", "1")
    at = app()
    at.query_params["ws"] = trained.id  # the capability URL
    at.run()
    at.switch_page("app_pages/aom/edit_retrain.py").run()
    at.radio[0].set_value("Widen").run()
    epochs = [w for w in at.number_input if w.label == "Epochs"][0]
    epochs.set_value(100).run()
    at.button(key="apply").click().run()
    assert not at.exception
    at.switch_page("app_pages/aom/compute_maps.py").run()
    at.button(key="compute").click().run()
    assert "a job of yours is already queued or running" in " ".join(e.value for e in at.error)
    assert [j["kind"] for j in list_jobs(trained)] == ["train", "retrain"]
    from aomcore.store import request_cancel

    request_cancel(trained, list_jobs(trained)[-1]["id"])
    wait_jobs(at)


def test_a_full_disk_quota_refuses_a_new_result_and_keeps_the_old_ones(trained, monkeypatch):
    monkeypatch.setenv("AOMSCOPE_SHARED", "1")
    monkeypatch.setenv("AOMSCOPE_MAX_DISK_GB", "0.000001")
    assert current_policy().max_disk_gb == 0.000001
    before = (trained.versions(), list_jobs(trained))
    at = app()
    at.query_params["ws"] = trained.id
    at.run()
    at.switch_page("app_pages/aom/compute_maps.py").run()
    at.button(key="compute").click().run()
    assert "disk quota reached" in " ".join(e.value for e in at.error)
    assert (trained.versions(), list_jobs(trained)) == before
    assert Workspace(trained.path).load_version(0) is not None  # the old version is intact


def test_read_only_workspace_refuses_changes(trained):
    ro = Workspace(trained.path, read_only=True)
    import pytest

    from aomcore import InputError

    for change in (lambda: ro.set_current(0), lambda: ro.update(name="x"), lambda: ro.grant("bob"),
                   lambda: ro.set_selection("d", "conv1", [0])):
        with pytest.raises(InputError, match="read-only"):
            change()
    from aomcore.jobs import submit_record

    with pytest.raises(InputError, match="read-only"):
        submit_record(ro, "maps", {})


def test_user_strings_are_shown_as_text_not_markdown(home, tmp_path):
    import io

    import numpy as np

    from ui.views import plain

    assert plain("![x](http://e.com/a.png)") == "\\!\\[x\\]\\(http\\:\\/\\/e\\.com\\/a\\.png\\)"
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x=rng.integers(0, 255, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 2,
             classes=np.array(["![a](http://127.0.0.1:9/leak.png)", ":red[b] $x$"]))
    at = on_workspaces(app())
    at.selectbox(key="dataset_kind").set_value("npz upload").run()
    at.file_uploader(key="npz_upload").set_value(("evil.npz", buf.getvalue(), "application/octet-stream"))
    at.run()
    create_workspace(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Model & data"  # the page is the new workspace's Model & data
    at.button(key="train").click().run()
    at = wait_jobs(at)
    captions = " ".join(e.proto.imgs[0].caption for e in at.main if type(e).__name__ == "Image")
    assert plain("![a](http://127.0.0.1:9/leak.png)") in captions and plain(":red[b] $x$") in captions
    assert "![a](" not in captions


def test_a_job_worker_importing_the_app_runs_nothing(tmp_path):
    # multiprocessing's spawn start method runs the main script again as __mp_main__ in every job
    # worker; on a shared server that rendered the dashboard headless and created an ownerless workspace
    env = dict(os.environ, AOMSCOPE_SHARED="1", AOMSCOPE_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", f"import runpy; runpy.run_path({APP!r}, run_name='__mp_main__')"],
                          cwd=Path(APP).parent, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.rglob("workspace.json")) == [] and "Traceback" not in done.stderr
