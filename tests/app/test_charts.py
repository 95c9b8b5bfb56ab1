"""Chart specs drawn the way they are read: accuracy axes that show 93–100% differences, the
version tree drawn, fixed-size heatmaps keeping their size (Altair specs, no browser); and sent as
the Vega-Lite spec st.altair_chart would send, built once per data (ui.cached.chart_spec)."""

import altair as alt
import numpy as np
import pandas as pd
from streamlit.elements import vega_charts

from ui import cached, views
from ui.aom.criteria import score_table
from ui.aom.overview import class_difference_chart
from ui.deepeyes.views import run_curves


def test_accuracy_axes_start_under_the_lowest_value_on_a_5_percent_step():
    assert views.accuracy_floor([0.93, 0.99, 1.0]) == 0.9
    assert views.accuracy_floor([0.951, 0.97]) == 0.9  # 0.941 is under 0.95
    assert views.accuracy_floor([0.05, 0.5]) == 0.0
    assert views.accuracy_floor([]) == 0.0
    spec = views.per_class_accuracy_chart(["a", "b"], [0.93, 0.99], 0.96).to_dict()
    dots = spec["layer"][1]["encoding"]["y"]
    assert dots["scale"]["domain"] == [0.9, 1] and dots["title"] == "test accuracy (from 90%)"
    assert spec["layer"][2]["mark"]["type"] == "rule"  # the overall accuracy


def test_training_accuracy_axis_ignores_the_first_tenth_of_the_run():
    metrics = [{"step": i, "loss": 1.0, "accuracy": 0.1 if i < 2 else 0.97} for i in range(20)]
    _, chart = run_curves(metrics, [{"iteration": 19, "test_accuracy": 0.96}])
    spec = chart.to_dict()
    assert spec["layer"][0]["encoding"]["y"]["scale"]["domain"] == [0.95, 1]
    assert spec["layer"][1]["encoding"]["y"]["scale"]["domain"] == [0.95, 1]  # both layers, one scale
    assert spec["autosize"]["type"] == "fit-x"


def test_versions_chart_draws_a_line_from_each_version_to_its_parent():
    rows = pd.DataFrame([views.version_row({"id": i, "parent": p, "note": "", "metrics": {
        "accuracy": a, "params": n, "flops": 2 * n, "kernels": {"conv1": 4}}}, 2)
        for i, p, a, n in ((0, None, 0.9, 100), (1, 0, 0.92, 80), (2, 1, 0.95, 60))])
    spec = views.versions_chart(rows).to_dict()
    edges = pd.DataFrame(spec["datasets"][spec["hconcat"][0]["layer"][0]["data"]["name"]])
    assert edges[["x", "y", "x2", "y2"]].values.tolist() == [[80, 0.92, 100, 0.9], [60, 0.95, 80, 0.92]]
    labels = spec["hconcat"][0]["layer"][2]
    assert labels["mark"]["type"] == "text" and "condition" in labels["encoding"]["color"]  # coloured as the point


def test_fixed_size_heatmaps_keep_their_size_with_the_colour_bar_outside():
    odm = np.random.default_rng(0).random((6, 6))
    for chart in (views.odm_heatmap(odm, np.arange(6), np.zeros(6, int)),
                  views.position_heatmap(odm, "AOM", "occurrence"),
                  class_difference_chart(odm, np.arange(6), list("abcdef"))):
        assert chart.to_dict()["autosize"]["type"] == "pad"
    assert views.odm_heatmap(odm, np.arange(6)).to_dict()["width"] >= 320


def test_labels_drawn_as_text_marks_read_on_the_dark_theme():
    """Vega draws text marks black unless told: the ODM's and the hover grid's kernel labels vanished on dark."""
    odm = np.random.default_rng(0).random((4, 4))
    grid, _ = views.grid_chart(np.random.default_rng(0).random((3, 2, 4, 4)), np.arange(3), ["a", "b"], "viridis")
    for spec in (views.odm_heatmap(odm, np.arange(4)).to_dict(), grid.to_dict()):
        texts = [layer["mark"] for layer in spec["layer"] if layer["mark"]["type"] == "text"]
        assert len(texts) == 2 and all(t["color"] == views.LABEL for t in texts)


def test_criteria_table_keeps_one_precision_per_column():
    """#25: a column printed with .4g switched between 2.716, 0.1272 and 0.0002241; now each column
    has the decimals that give its largest value four significant digits, on every row."""
    table = score_table({"l1": [2.716, 0.1272, 0.0002241], "apoz": [0.999, 0.5, 0.0002241]}, 1, [0],
                        ["k0", "k1", "k2"])
    text = table.to_string()
    assert "2.716" in text and "0.127 " in text and "0.000 " in text  # three decimals for l1
    assert "0.9990" in text and "0.5000" in text and "0.0002" in text  # four for apoz
    assert "0.1272" not in text and "0.0002241" not in text


BUILT = []


def counted_chart(values: np.ndarray, title: str) -> alt.Chart:
    """A module-level builder that records each call."""
    BUILT.append(title)
    return alt.Chart(pd.DataFrame({"k": range(len(values)), "v": values})).mark_bar().encode(x="k:O", y="v:Q")


def test_the_spec_is_the_one_altair_chart_sends_and_is_built_once_per_data():
    classes, per_class = [str(c) for c in range(10)], [0.9 + c / 100 for c in range(10)]
    spec = cached.chart_spec(views.per_class_accuracy_chart, classes, per_class, 0.95)
    direct = vega_charts._convert_altair_to_vega_lite_spec(views.per_class_accuracy_chart(classes, per_class, 0.95))
    assert spec == direct and spec["datasets"], "the same spec, its data as Arrow bytes"

    BUILT.clear()
    values = np.arange(5.0)
    first = cached.chart_spec(counted_chart, values, title="a")
    again = cached.chart_spec(counted_chart, values.copy(), title="a")
    assert BUILT == ["a"] and first == again
    changed = cached.chart_spec(counted_chart, values + 1, title="a")
    assert BUILT == ["a", "a"] and changed != first, "new data, a new spec"
    first.pop("datasets")
    assert cached.chart_spec(counted_chart, values, title="a")["datasets"], "each call gets its own copy"
