"""AOMscope dashboard: the router and the sidebar every page shares.

``streamlit run app.py -- --workspace DIR`` opens a workspace made by the CLI.
"""

import streamlit as st

from aomcore import InputError
from ui.jobs import sidebar_jobs
from ui.state import view

st.set_page_config(page_title="AOMscope", page_icon=":material/grid_view:", layout="wide")

PAGES = [
    st.Page("pages/model_data.py", title="Model & data", icon=":material/database:", default=True),
    st.Page("pages/compute_maps.py", title="Compute maps", icon=":material/calculate:"),
    st.Page("pages/explore.py", title="Explore", icon=":material/grid_on:"),
    st.Page("pages/layer_overview.py", title="Layer overview", icon=":material/view_list:"),
    st.Page("pages/select_kernels.py", title="Select kernels", icon=":material/checklist:"),
    st.Page("pages/edit_retrain.py", title="Edit & retrain", icon=":material/content_cut:"),
    st.Page("pages/versions.py", title="Versions", icon=":material/history:"),
    st.Page("pages/selectivity_experiment.py", title="Selectivity experiment", icon=":material/science:"),
    st.Page("pages/workspaces.py", title="Workspaces", icon=":material/folder_open:"),
]
page = st.navigation(PAGES)

try:
    v = view()
except InputError as exc:
    st.error(f"Could not open this workspace — {exc}")
    st.page_link("pages/workspaces.py", label="Open or create a workspace", icon=":material/folder_open:")
    v = None

with st.sidebar:
    st.markdown("### AOMscope")
    if v is not None:
        st.caption(f"**Workspace** · {v.state['name']}")
        st.caption(f"**Dataset** · {v.dataset}")
        if v.model is not None:
            st.caption(f"**Model** · {v.model.arch} · {v.version['metrics']['params']:,} params  \n"
                       f"v{v.version_id} of {len(v.versions)} · `{v.version['digest'][:12]}`")
            st.metric("Test accuracy", f"{v.version['metrics']['accuracy']:.2%}")
        else:
            st.caption("**Model** · none yet")
        if v.maps_info:
            names = v.maps_info["layers"]
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            st.caption(f"**Maps** · {shown} · {v.maps_info['split']} split · threshold {v.maps_info['threshold']}")
        elif v.model is not None:
            st.caption(f"**Maps** · none for v{v.version_id} yet")
        sidebar_jobs(v)

if v is not None or page.title == "Workspaces":
    try:
        page.run()
    except InputError as exc:
        st.error(str(exc))
