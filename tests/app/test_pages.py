"""Every page through AppTest, on the digits default (and MNIST when present)."""

from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

APP = str(REPO / "app.py")


def _app():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at):
    return " ".join(e.value for e in [*at.markdown, *at.caption, *at.info, *at.success, *at.title, *at.subheader])


def test_opens_on_digits_default_with_a_trained_model():
    at = _app()
    assert at.title[0].value == "Model & data"
    assert "digits" in _texts(at)
    acc = at.sidebar.metric[0].value
    assert float(acc.rstrip("%")) > 90
    layers = at.dataframe[0].value
    assert list(layers["name"]) == ["conv1", "conv2", "fc1", "fc2"]


def _compute(at):
    at.switch_page("pages/compute_maps.py").run()
    assert not at.exception, at.exception
    assert at.multiselect[0].value == ["conv1", "conv2"]
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "Maps of 2 layer(s) over 1,347 train images" in at.success[0].value
    return at


def test_compute_explore_select_walk():
    at = _compute(_app())
    at.switch_page("pages/explore.py").run()
    assert not at.exception, at.exception
    assert "8 kernels × 10 classes × 8×8 positions" in _texts(at)
    at.selectbox[0].set_value("conv2").run()
    assert not at.exception and "16 kernels" in _texts(at)
    at.switch_page("pages/select_kernels.py").run()
    assert not at.exception, at.exception
    assert "Kernels kept in conv1" in at.metric[-1].label
    assert sorted(at.dataframe[0].value["kernel"]) == list(range(8))  # one ranked row per kernel
    kept = int(at.metric[-1].value.split(" of ")[0])
    assert 1 <= kept <= 8


def test_empty_states_say_what_to_do_first():
    at = _app()
    at.switch_page("pages/explore.py").run()
    assert not at.exception and "compute them" in at.info[0].value
    at.switch_page("pages/select_kernels.py").run()
    assert not at.exception and "compute them" in at.info[0].value


def test_bad_weights_upload_is_a_message_and_session_survives():
    at = _app()
    at.radio[0].set_value("Load weights").run()
    at.file_uploader[0].set_value(("bad.pt", b"not a checkpoint", "application/octet-stream")).run()
    at.button[-1].click().run()
    assert not at.exception
    assert "could not read weights" in at.error[0].value
    # the previous model is still current and the page still works
    assert any(h.value.startswith("Test accuracy: 9") for h in at.subheader)
    at.radio[0].set_value("Train a zoo model here").run()
    assert not at.exception


def test_selectivity_experiment_page():
    at = _app()
    at.switch_page("pages/selectivity_experiment.py").run()
    assert not at.exception, at.exception
    assert at.selectbox[0].value == "conv2"  # default: the last conv layer
    assert "press **Run**" in at.info[0].value
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "Removing the selective kernels costs more accuracy than keeping only them for" in at.success[0].value
    table = at.dataframe[0].value
    assert len(table) == 10 and table["n_images"].sum() == 450
    assert ((table["n_selective"] + table["n_not_selective"]) == 16).all()


def _wait_for_job(at, timeout=120):
    import time

    ws = at.session_state["workspace"]
    deadline = time.time() + timeout
    while ws.job is not None and ws.job.status == "running" and time.time() < deadline:
        time.sleep(0.2)
    return ws


def test_edit_retrain_versions_revert():
    at = _compute(_app())
    at.switch_page("pages/select_kernels.py").run()
    kept = int(at.metric[-1].value.split(" of ")[0])
    at.switch_page("pages/edit_retrain.py").run()
    assert not at.exception, at.exception
    assert at.multiselect[0].value == [k for k in range(8) if k not in at.session_state["workspace"].selection["conv1"]]
    assert at.metric[0].value == f"8 → {kept}"
    at.button[0].click().run()
    ws = _wait_for_job(at)
    assert ws.job.status == "done", ws.job.error
    at.run()
    assert not at.exception, at.exception
    assert any(h.value == "v0 → v1" for h in at.subheader)
    assert ws.history.current_id == 1 and ws.model.digest == ws.history.current.digest
    assert ws.history.current.metrics["kernels"]["conv1"] == kept
    assert ws.history.current.metrics["accuracy"] > 0.9

    at.switch_page("pages/versions.py").run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["version"]) == ["v0", "v1"]
    at.selectbox[0].set_value(0).run()
    at.button[0].click().run()  # make v0 current
    assert not at.exception, at.exception
    assert ws.history.current_id == 0 and ws.model.digest == ws.history.versions[0].digest
    assert not ws.maps  # maps belong to a version: recompute


def test_bad_edit_and_cancel_leave_the_version_intact():
    at = _app()
    at.switch_page("pages/edit_retrain.py").run()
    assert not at.exception, at.exception
    at.multiselect[0].set_value(list(range(8))).run()  # remove every kernel of conv1
    assert not at.exception
    assert "cannot remove every kernel of conv1" in at.error[0].value
    ws = at.session_state["workspace"]
    at.radio[0].set_value("Widen").run()
    at.button[0].click().run()
    ws.job.cancel.set()
    _wait_for_job(at)
    at.run()
    assert ws.job.status == "cancelled" and ws.history.current_id == 0
    assert "cancelled" in at.warning[0].value


def test_resnet18_upload_and_remove_through_a_residual_block(tmp_path):
    import io

    import torch

    from aomcore import build_model

    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(build_model("torchvision:resnet18", 10, (3, 32, 32)).state_dict(), buf)
    at = _app()
    at.number_input[0].set_value(3).run()  # repeat to 3 channels
    at.number_input[1].set_value(32).run()  # resize to 32x32
    at.button[0].click().run()  # use this dataset
    assert not at.exception, at.exception
    at.radio[0].set_value("Load weights").run()
    at.text_input[-1].set_value("torchvision:resnet18").run()
    at.file_uploader[0].set_value(("resnet18.pt", buf.getvalue(), "application/octet-stream")).run()
    at.button[-1].click().run()
    assert not at.exception, at.exception
    assert not at.error, at.error[0].value
    ws = at.session_state["workspace"]
    assert ws.model.arch == "torchvision:resnet18"
    at.switch_page("pages/edit_retrain.py").run()
    assert not at.exception, at.exception
    at.selectbox[0].set_value("layer1.0.conv2").run()
    at.multiselect[0].set_value([0, 1, 2]).run()
    assert at.metric[0].value == "64 → 61"
    at.number_input[0].set_value(1).run()  # one epoch
    at.button[0].click().run()
    ws = _wait_for_job(at, timeout=300)
    assert ws.job.status == "done", ws.job.error
    at.run()
    kernels = ws.history.current.metrics["kernels"]
    assert kernels["layer1.0.conv2"] == kernels["conv1"] == 61 and kernels["layer2.0.conv1"] == 128
