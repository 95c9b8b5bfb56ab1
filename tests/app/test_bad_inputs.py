"""The bad-input corpus through the dashboard: a specific message, never a traceback, and the
session stays usable with the earlier model and data intact."""

import pytest

from aomcore import default_root, list_workspaces
from tests.app.helpers import app, create_workspace, on_workspaces, wait_jobs, workspace
from tests.corpus import make_corpus


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _app():
    return app()


def _upload(widget, path, name=None):
    widget.set_value((name or path.name, path.read_bytes(), "application/octet-stream"))


def load_weights(at, path, arch="zoo:digits_net"):
    at.radio(key="model_source").set_value("Load weights").run()
    at.text_input(key="arch").set_value(arch).run()
    _upload(at.file_uploader(key="weights_upload"), path)
    at.run()
    at.button(key="load_weights").click().run()


def use_dataset(at, kind, root=None, folder=None, npz=None):
    on_workspaces(at).selectbox(key="dataset_kind").set_value(kind).run()
    if root is not None:
        at.text_input(key="data_root").set_value(str(root)).run()
    if folder is not None:
        at.text_input(key="image_folder").set_value(str(folder)).run()
    if npz is not None:
        _upload(at.file_uploader(key="npz_upload"), npz)
        at.run()
    if at.button(key="use_dataset").disabled:
        return
    create_workspace(at)


CASES = [
    ("empty weights", lambda at, f: load_weights(at, f["empty"]), "upload is empty: expected a state_dict file"),
    ("truncated .pt", lambda at, f: load_weights(at, f["truncated"]), "truncated or corrupted checkpoint"),
    ("random bytes .pt", lambda at, f: load_weights(at, f["random_pt"]), "not a PyTorch checkpoint"),
    ("random bytes .safetensors", lambda at, f: load_weights(at, f["random_st"]), "could not read safetensors"),
    ("weights of another architecture", lambda at, f: load_weights(at, f["other_arch"]),
     "the weights do not fit the architecture: expected the architecture's own keys and shapes, found mis-shaped "
     "(file vs model): conv1.weight (16, 1, 3, 3) vs (8, 1, 3, 3)"),
    ("NaN in weights", lambda at, f: load_weights(at, f["nan_weights"]), "weights contain NaN or Inf"),
    ("pickle payload", lambda at, f: load_weights(at, f["payload"]), "loading it would run code, so it is refused"),
    ("output size differs from the classes", lambda at, f: load_weights(at, f["five_out"], f"{f['arch_file']}:FiveOut"),
     "the model's output does not match the classes: expected (batch, 10) logits"),
    ("images of the wrong size", lambda at, f: load_weights(at, f["needs28"], f"{f['arch_file']}:Needs28"),
     "the model cannot take this dataset's images: expected a model accepting inputs of shape (1, 8, 8)"),
    ("images with the wrong channel count", lambda at, f: load_weights(at, f["resnet"], "torchvision:resnet18"),
     "the model cannot take this dataset's images"),
    ("unknown architecture", lambda at, f: load_weights(at, f["good"], "zoo:nope"), "unknown zoo model"),
    ("npz without y", lambda at, f: use_dataset(at, "npz upload", npz=f["npz_no_y"]), "missing ['y']"),
    ("labels out of range", lambda at, f: use_dataset(at, "npz upload", npz=f["npz_range"]), "labels out of range"),
    ("non-integer labels", lambda at, f: use_dataset(at, "npz upload", npz=f["npz_float_y"]),
     "labels must be integers"),
    ("Inf in images", lambda at, f: use_dataset(at, "npz upload", npz=f["npz_nan"]),
     "images contain NaN or Inf: expected finite pixel values, found 1 non-finite values in 'x', first at index "
     "[7, 2, 3]"),
    ("single-class dataset", lambda at, f: use_dataset(at, "npz upload", npz=f["npz_one_class"]),
     "the dataset has a single class"),
    ("unreadable image in a folder", lambda at, f: use_dataset(at, "image folder", folder=f["imagefolder"]),
     "unreadable image file"),
    ("data root that does not exist", lambda at, f: use_dataset(at, "mnist", root=f["secret"] / "nowhere"),
     "data root does not exist"),
    ("mean that is not a number", lambda at, f: (on_workspaces(at).text_input(key="prep_mean").set_value("abc").run(),
                                                 create_workspace(at)),
     "mean must be numbers"),
]


@pytest.mark.parametrize("case,action,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_a_message_and_the_workspace_survives(trained, files, case, action, message):
    at = _app()
    before = (trained.versions(), trained.state()["dataset"])
    action(at, files)
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert message in errors, errors
    assert not files["pwned"].exists()
    # nothing was lost: the same workspace, dataset and versions, no new workspace
    assert workspace(at).id == trained.id and len(list_workspaces(default_root())) == 1
    assert (trained.versions(), trained.state()["dataset"]) == before


def test_the_workspace_still_computes_after_a_bad_input(trained, files):
    at = _app()
    load_weights(at, files["truncated"])
    assert "truncated or corrupted checkpoint" in at.error[0].value
    at.switch_page("app_pages/aom/compute_maps.py").run()
    at.button(key="compute").click().run()
    at = wait_jobs(at, "app_pages/aom/compute_maps.py")
    assert "Maps of 2 layer(s)" in at.success[0].value


def test_oversize_upload(trained, files, monkeypatch):
    monkeypatch.setenv("AOMSCOPE_MAX_UPLOAD_MB", "0.001")
    at = _app()
    load_weights(at, files["good"])
    assert not at.exception and "upload too large: expected at most 0.001 MB" in at.error[0].value


@pytest.mark.parametrize("path_key,suffix", [("allowed", "../secret"), ("secret", ""), ("escape_link", "")])
def test_shared_mode_confines_data_paths(files, monkeypatch, path_key, suffix):
    monkeypatch.setenv("AOMSCOPE_SHARED", "1")
    monkeypatch.setenv("AOMSCOPE_DATA_DIRS", str(files["allowed"]))
    at = _app()
    use_dataset(at, "mnist", root=f"{files[path_key]}/{suffix}" if suffix else files[path_key])
    assert not at.exception
    assert "path outside the allowed data folders" in at.error[0].value
    assert workspace(at).state()["dataset"]["spec"] == "digits"
    assert len(list_workspaces(default_root())) == 1


def test_shared_mode_refuses_architecture_files(trained, files, monkeypatch):
    monkeypatch.setenv("AOMSCOPE_SHARED", "1")
    at = _app()
    at.query_params["ws"] = trained.id
    at.run()
    load_weights(at, files["five_out"], f"{files['arch_file']}:FiveOut")
    assert not at.exception and "architecture files are disabled in shared mode" in at.error[0].value
    monkeypatch.setenv("AOMSCOPE_ARCH_ALLOWLIST", str(files["arch_file"]))
    at.button(key="load_weights").click().run()
    assert "architecture files are disabled" not in " ".join(e.value for e in at.error)


def test_class_without_images_is_a_clear_maps_error(files):
    at = _app()
    use_dataset(at, "npz upload", npz=files["npz_empty_class"])
    assert not at.exception and not at.error
    at.button(key="train").click().run()
    at = wait_jobs(at, "app_pages/aom/compute_maps.py")
    at.button(key="compute").click().run()
    at = wait_jobs(at, "app_pages/aom/compute_maps.py")
    assert "a class has no images: expected at least one image of every class, found no images of class 'c'" in \
        " ".join(e.value for e in at.error)


def test_edit_removing_every_kernel(trained, files):
    at = _app()
    at.switch_page("app_pages/aom/edit_retrain.py").run()
    at.multiselect[0].set_value(list(range(8))).run()
    assert not at.exception and "cannot remove every kernel of conv1" in at.error[0].value
    assert sorted(trained.versions()) == [0] and trained.current_version == 0


def test_an_uploaded_dataset_is_named_by_the_users_file(files):
    """#22: uploads were stored and shown by their cache digest; now under the user's own file name."""
    at = on_workspaces(_app())
    at.selectbox(key="dataset_kind").set_value("npz upload").run()
    _upload(at.file_uploader(key="npz_upload"), files["npz_empty_class"], name="my digits (v2).npz")
    at.run()
    create_workspace(at)
    assert not at.exception and not at.error
    dataset = next(c.value for c in at.sidebar.caption if c.value.startswith("**Dataset**"))
    assert dataset.replace("\\", "").endswith("/my_digits_v2.npz"), dataset  # plain() escapes markdown
