"""Charts are sent as the Vega-Lite spec st.altair_chart would send, built once per data (ui.cached.chart_spec)."""

import altair as alt
import numpy as np
import pandas as pd
from streamlit.elements import vega_charts

from ui import cached, views

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
