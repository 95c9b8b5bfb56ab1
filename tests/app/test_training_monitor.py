"""Training monitor page: DeepEyes views of a run, the hand-off to the kernel selection, the AOM grid
of a snapshot (a job), checkpoint import, and live updates while a run trains."""

import io
import time

import numpy as np
import torch
from safetensors.torch import load_file

from aomcore import JobRunner, default_train_config, list_runs, read_job
from aomcore.deepeyes import filter_flags
from aomcore.store import read_run_view, request_cancel
from aomcore.store.job_records import new_job_record, write_job
from tests.app.helpers import app, texts, wait_jobs, workspace

PAGE = "app_pages/deepeyes/training_monitor.py"


def _charts(at) -> list:
    return list(at.get("vega_lite_chart"))


def _monitor(timeout: int = 120):
    at = app(timeout)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_empty_state_says_to_train(home):
    at = _monitor()
    assert "train a model (**Model & data**) — runs are recorded with snapshots" in texts(at)


def test_a_training_job_whose_run_is_not_written_yet_is_announced_not_absent(home):
    """#25: opened right after Train, before the job has written its run folder, the page said "No runs
    yet" and stayed so; now it says the run is coming (and polls for it: a fragment, seen in Chromium)."""
    at = _monitor()
    ws = workspace(at)
    record = new_job_record(ws, "train", {"arch": "zoo:digits_net", "config": default_train_config("digits").__dict__,
                                          "snapshots": 3})
    record.update(status="running", started=time.time())  # this process owns it: alive, not interrupted
    write_job(ws, record)
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "A training job is starting" in shown and "No runs yet" not in shown
    record.update(status="cancelled", finished=time.time())
    write_job(ws, record)
    at.run()
    assert "No runs yet" in texts(at)


def test_histograms_heatmap_and_send_flags_to_the_selection(trained):
    at = _monitor()
    run = list_runs(trained)[-1]
    assert at.selectbox(key="monitor_run").value == run["id"]
    shown = texts(at)
    assert "Perplexity histograms" in shown and "Activation heatmap of conv1, window up to iteration 660" in shown
    assert len(_charts(at)) >= 5  # curves, change, perplexity, learning histogram, activation heatmap
    # The layer whose last window has flagged filters (fixed seeds: the same every time).
    view = read_run_view(run["path"])
    flagged = {name: filter_flags(a["max_activation"][-1], a["activation_frequency"][-1], 0.95)["flagged"]
               for name, a in view.layers.items() if name != "fc2"}
    layer = next(n for n, f in flagged.items() if f.any())
    layer_box = next(s for s in at.selectbox if s.label == "Layer")
    layer_box.set_value(layer).run()
    assert not at.exception, at.exception
    assert f"Activation heatmap of {layer}" in texts(at)
    at.button(key=f"send_{run['id']}_{layer}").click().run()
    assert not at.exception, at.exception
    digest = trained.version(0)["digest"]
    assert trained.selection(digest)[layer] == [int(k) for k in np.flatnonzero(~flagged[layer])]


def test_snapshot_aom_grid_is_a_job(trained):
    at = _monitor()
    at.select_slider[0].set_value(330).run()
    at.button(key="snapshot_maps").click().run()
    assert not at.exception, at.exception
    at = wait_jobs(at, PAGE)
    at.select_slider[0].set_value(330).run()
    assert not at.exception, at.exception
    assert "AOM grid of conv1 at iteration 330 over 450 test images" in texts(at)
    result = trained.results("snapshot_maps")[-1]
    assert (result["iteration"], result["split"], result["layers"]) == (330, "test", ["conv1", "conv2"])
    assert result["digest"] != trained.version(0)["digest"]  # iteration 330's weights, not the final ones


def test_import_checkpoints_on_the_page(trained, tmp_path):
    run = list_runs(trained)[-1]
    snaps = {s["iteration"]: f"{run['path']}/{s['file']}" for s in run["snapshots"]}
    good = open(snaps[660], "rb").read()
    sd = load_file(snaps[330])
    sd["fc1.weight"] = sd["fc1.weight"][:5]
    buf = io.BytesIO()
    torch.save(sd, buf)
    at = _monitor()
    at.file_uploader(key="import_files").set_value([
        ("iter660.safetensors", good, "application/octet-stream"),
        ("iter330.pt", buf.getvalue(), "application/octet-stream")]).run()
    at.button(key="import_run").click().run()
    assert not at.exception, at.exception
    at = wait_jobs(at, PAGE)  # the import is a job: the page reports it once it is done
    assert not at.exception, at.exception
    imported = [r for r in list_runs(trained) if r["kind"] == "import"]
    assert len(imported) == 1 and [s["iteration"] for s in imported[0]["snapshots"]] == [660]
    assert at.selectbox(key="monitor_run").value == imported[0]["id"]
    assert "Imported 1 snapshot(s)" in texts(at) and "Left out iter330.pt: the weights do not fit" in texts(at)
    assert imported[0]["snapshots"][0]["test_accuracy"] == trained.version(0)["metrics"]["accuracy"]


def test_page_is_live_while_a_run_trains(trained):
    runner = JobRunner()
    job = runner.submit(trained, "train", {"arch": "zoo:digits_net", "snapshots": 40, "device": "cpu",
                                           "config": {"epochs": 200, "lr": 3e-3, "batch_size": 64}})
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # until its first DeepEyes window is on disk
            live = [r for r in list_runs(trained) if r["status"] == "running"]
            if live and (trained.runs_dir / live[0]["id"] / "monitor.npz").is_file():
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the run wrote no monitor window")
        at = _monitor()
        assert read_job(trained, job["id"])["status"] == "running"
        assert at.selectbox(key="monitor_run").value == live[0]["id"]  # the running run is the default
        assert [m.value for m in at.metric if m.label == "Status"] == ["running"]
        step = next(m.value for m in at.metric if m.label == "Step")
        assert step.endswith("/ 4,400") and "Perplexity histograms" in texts(at)
        time.sleep(2.5)
        at.run()  # the next tick re-reads the run's files
        assert not at.exception, at.exception
        later = next(m.value for m in at.metric if m.label == "Step")
        assert int(later.split(" / ")[0].replace(",", "")) > int(step.split(" / ")[0].replace(",", ""))
    finally:
        request_cancel(trained, job["id"])
        runner.cancel(trained, job["id"])
        deadline = time.time() + 60
        while read_job(trained, job["id"])["status"] == "running" and time.time() < deadline:
            time.sleep(0.5)
