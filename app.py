"""AOMscope dashboard: the router and the sidebar every page shares."""

import streamlit as st

from aomcore import InputError
from ui.state import test_accuracy, workspace

st.set_page_config(page_title="AOMscope", page_icon=":material/grid_view:", layout="wide")

PAGES = [
    st.Page("pages/model_data.py", title="Model & data", icon=":material/database:", default=True),
    st.Page("pages/compute_maps.py", title="Compute maps", icon=":material/calculate:"),
    st.Page("pages/explore.py", title="Explore", icon=":material/grid_on:"),
    st.Page("pages/select_kernels.py", title="Select kernels", icon=":material/checklist:"),
    st.Page("pages/edit_retrain.py", title="Edit & retrain", icon=":material/content_cut:"),
    st.Page("pages/versions.py", title="Versions", icon=":material/history:"),
    st.Page("pages/selectivity_experiment.py", title="Selectivity experiment", icon=":material/science:"),
]
page = st.navigation(PAGES)

try:
    ws = workspace()
    accuracy = test_accuracy(ws)
except InputError as exc:
    st.error(f"Could not load the current model or dataset — {exc}")
    ws, accuracy = None, None

with st.sidebar:
    st.markdown("### AOMscope")
    if ws is not None:
        st.caption(f"**Dataset** · {ws.dataset}")
        if ws.model is not None:
            st.caption(f"**Model** · {ws.model.arch} · {ws.model.num_params:,} params  \n"
                       f"{ws.model.source} · `{ws.model.digest[:12]}`")
        else:
            st.caption("**Model** · none loaded yet")
        if accuracy is not None:
            st.metric("Test accuracy", f"{accuracy['accuracy']:.2%}")
        if ws.history is not None and len(ws.history.versions) > 1:
            st.caption(f"**Version** · v{ws.history.current_id} of {len(ws.history.versions)}")
        if ws.job is not None and ws.job.status == "running":
            status, metrics = ws.job.snapshot()
            done = metrics[-1]["step"] / metrics[-1]["steps"] if metrics else 0.0
            st.caption(f"**Retraining** · {done:.0%} (Edit & retrain)")
        if ws.maps:
            info = ws.maps_info
            names = list(ws.maps)
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            st.caption(f"**Maps** · {shown} · {info.get('split')} split · threshold {info.get('threshold')}")
        else:
            st.caption("**Maps** · not computed yet")

try:
    page.run()
except InputError as exc:
    st.error(str(exc))
