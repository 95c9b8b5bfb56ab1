"""Filter map, Input map and Hidden activity through AppTest on the trained digits workspace."""

from tests.app.helpers import app, texts, wait_jobs


def test_filter_map_computes_and_a_selection_prefills_edit_and_retrain(trained):
    at = app()
    at.switch_page("app_pages/deepeyes/filter_map.py").run()
    assert not at.exception, at.exception
    assert "No filter map of **conv1**" in at.info[0].value  # the empty state says what to press
    at.number_input[0].set_value(50).run()  # t-SNE iterations: keep the test short
    at.button(key="compute").click().run()
    assert not at.exception, at.exception
    at = wait_jobs(at, "app_pages/deepeyes/filter_map.py")
    at.number_input[0].set_value(50).run()
    assert not at.exception, at.exception
    assert "8 filters" in texts(at) and "dead" in texts(at)
    assert len(at.dataframe[0].value) == 8  # the heatmap numbers, one row per filter
    # The chart's box selection fills this multiselect; AppTest cannot drag on a chart, so pick here.
    at.multiselect[0].set_value([1, 3]).run()
    at.button(key="drop").click().run()
    assert not at.exception, at.exception
    digest = trained.version(0)["digest"]
    assert trained.selection(digest)["conv1"] == [0, 2, 4, 5, 6, 7]
    at.switch_page("app_pages/aom/edit_retrain.py").run()
    assert not at.exception, at.exception
    assert at.multiselect[0].value == [1, 3]  # Edit & retrain is pre-filled with the dropped filters
    assert trained.results("deepeyes", digest)[-1]["layers"] == ["conv1", "conv2", "fc1", "fc2"]


def test_input_map_computes_and_shows_its_points(trained):
    at = app()
    at.switch_page("app_pages/deepeyes/input_map.py").run()
    assert not at.exception, at.exception
    assert "No input map of **conv1**" in at.info[0].value
    at.number_input[0].set_value(300).run()
    at.number_input[1].set_value(50).run()
    at.button(key="compute").click().run()
    at = wait_jobs(at, "app_pages/deepeyes/input_map.py")
    at.number_input[0].set_value(300).run()
    at.number_input[1].set_value(50).run()
    assert not at.exception, at.exception
    assert "receptive fields of" in texts(at) and "neighbourhood hit" in texts(at)
    assert "Select points in the map" in at.info[-1].value
    at.radio[0].set_value("perplexity").run()
    assert not at.exception, at.exception


def test_hidden_activity_projects_two_layers_and_neurons(trained):
    at = app()
    at.switch_page("app_pages/rauber/hidden_activity.py").run()
    assert not at.exception, at.exception
    assert at.multiselect[0].value == ["conv1", "fc1"]
    at.number_input[0].set_value(300).run()
    at.number_input[1].set_value(50).run()
    at.button(key="compute").click().run()
    at = wait_jobs(at, "app_pages/rauber/hidden_activity.py")
    at.number_input[0].set_value(300).run()
    at.number_input[1].set_value(50).run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "**conv1** · neighbourhood hit" in shown and "**fc1** · neighbourhood hit" in shown
    at.button(key="neurons").click().run()
    at = wait_jobs(at, "app_pages/rauber/hidden_activity.py")
    at.number_input[0].set_value(300).run()
    at.number_input[1].set_value(50).run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "neurons"]  # the neuron projection is shown


def test_projections_of_an_older_t_sne_schedule_are_computed_again(trained):
    from aomcore import run_inline

    run_inline(trained, "embed", {"version": 0, "view": "activations", "layer": "conv1", "n": 300, "n_iter": 50})
    at = app()
    at.switch_page("app_pages/rauber/hidden_activity.py").run()
    at.multiselect[0].set_value(["conv1"]).run()
    at.number_input[0].set_value(300).run()
    at.number_input[1].set_value(50).run()
    assert at.button(key="compute").label == "All chosen layers are projected"
    trained.modify(lambda state: [r.update(schedule="converge-2") for r in state["results"] if r["kind"] == "embed"])
    at.run()
    assert not at.exception, at.exception
    assert at.button(key="compute").label == "Compute 1 projection(s)"  # the layout of an older schedule is not shown


def test_filter_map_shows_the_aom_rows_of_some_selected_filters(trained):
    """Some (not all) filters selected while maps exist: their AOM rows, no IndexError (was a crash)."""
    from aomcore import run_inline

    run_inline(trained, "maps", {"version": 0, "layers": ["conv1", "conv2"], "split": "train", "threshold": 0.0})
    run_inline(trained, "embed", {"version": 0, "view": "filter-map", "layer": "conv1", "n_iter": 50})
    at = app()
    at.switch_page("app_pages/deepeyes/filter_map.py").run()
    at.number_input[0].set_value(50).run()
    assert not at.exception, at.exception
    at.multiselect[0].set_value([6, 1]).run()
    assert not at.exception, at.exception
    images = [e for e in at.main if type(e).__name__ == "Image"]
    captions = [img.caption for e in images for img in e.proto.imgs]
    assert any(c.startswith("AOM rows of the selected filters (k6, k1;") for c in captions), captions
