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
    table = at.dataframe[0].value if at.dataframe else None
    assert "Kernels kept in conv1" in at.metric[-1].label
    kept = int(at.metric[-1].value.split(" of ")[0])
    assert 1 <= kept <= 8
    del table


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
