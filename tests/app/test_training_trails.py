"""The Training trails page on the trained digits workspace: submit, wait, look at the result, change options."""

import pytest

from aomcore import list_jobs, list_runs
from tests.app.helpers import app, texts, wait_jobs, workspace

PAGE = "app_pages/rauber/training_trails.py"


def test_trails_page_computes_once_and_redraws_without_recomputing(trained):
    at = app()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert "Press **Compute trails**" in at.info[0].value or "Compute trails" in at.info[0].value
    assert at.selectbox[1].value == "fc1"  # the hidden layer before the classifier by default
    at.number_input[0].set_value(200)
    at.number_input[1].set_value(60)  # t-SNE iterations: a quick test
    at.button(key="compute_trails").click().run()
    assert not at.exception, at.exception
    at = wait_jobs(at, PAGE)
    at.number_input[0].set_value(200).run()
    at.number_input[1].set_value(60).run()
    assert not at.exception, at.exception
    assert "200 test images × 3 snapshots of fc1 (read at relu3)" in at.success[0].value, texts(at)
    assert len(at.get("image")) == 1  # the rendered trails
    assert {b.label for b in at.get("download_button")} == {"Download PNG", "Download trails.npz"}
    table = at.dataframe[0].value
    assert list(table["class"]) == [str(c) for c in range(10)]
    assert ((table["test accuracy"] >= 0) & (table["test accuracy"] <= 100)).all()  # shown in percent
    stored = workspace(at).results_cache.load_arrays("trails", workspace(at).results("trails")[-1]["key"])
    assert table["test accuracy"].tolist() == pytest.approx((100 * stored["class_accuracy"]).tolist())
    ws = workspace(at)
    record = ws.results("trails")[-1]
    assert record["layer"] == "fc1" and record["n"] == 200 and record["snapshots"] == 3
    jobs = len(list_jobs(ws))
    at.toggle[0].set_value(True).run()  # only misclassified at the end
    at.toggle[1].set_value(True).run()  # raw trails
    at.selectbox[2].set_value(3).run()  # highlight class 3
    assert not at.exception, at.exception
    at.toggle[2].set_value(True).run()  # one snapshot: its projection alone
    assert not at.exception, at.exception
    assert at.select_slider[0].value == list_runs(ws)[0]["snapshots"][-1]["iteration"]
    assert len(list_jobs(ws)) == jobs  # drawing options never submit a job


def test_trails_page_without_a_run_says_what_to_do_first(home):
    at = app()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert "No training run with snapshots yet" in at.info[0].value
    assert not at.button  # nothing to compute
