"""AOMscope dashboard: the router and the sidebar every page shares.

``streamlit run app.py -- --workspace DIR`` opens a workspace made by the CLI.

Streamlit runs this file as ``__main__``. A job worker (``multiprocessing`` spawn) imports
the main script again as ``__mp_main__`` to find its functions: there nothing may run, or
every worker would render the dashboard headless (and, on a shared server, create an
ownerless workspace), hence the guard.

``$AOMSCOPE_RENDER_LOG`` (for benchmarks): a file to which each script run appends one JSON
line, ``{"time": epoch seconds at the end, "page": url path, "seconds": server-side script time}``.
"""

import json
import os
import time

import streamlit as st

from aomcore import InputError
from ui.jobs import sidebar_jobs
from ui.state import current_user, show_flash, sign_in_gate, view, visit
from ui.steps import loop_bar, next_step_link
from ui.views import plain


def main() -> None:
    """Route to the chosen page and draw the sidebar every page shares."""
    st.set_page_config(page_title="AOMscope", page_icon=":material/grid_view:", layout="wide")

    pages = {
        "AOM methodology": [
            st.Page("app_pages/workspace/model_data.py", title="Model & data", icon=":material/database:",
                    default=True),
            st.Page("app_pages/aom/compute_maps.py", title="Compute maps", icon=":material/calculate:"),
            st.Page("app_pages/aom/explore.py", title="Explore", icon=":material/grid_on:"),
            st.Page("app_pages/aom/layer_overview.py", title="Layer overview", icon=":material/view_list:"),
            st.Page("app_pages/aom/select_kernels.py", title="Select kernels", icon=":material/checklist:"),
            st.Page("app_pages/aom/edit_retrain.py", title="Edit & retrain", icon=":material/content_cut:"),
            st.Page("app_pages/aom/versions.py", title="Versions", icon=":material/history:"),
            st.Page("app_pages/aom/selectivity_experiment.py", title="Selectivity experiment",
                    icon=":material/science:"),
        ],
        "DeepEyes · Rauber et al.": [
            st.Page("app_pages/deepeyes/training_monitor.py", title="Training monitor", icon=":material/monitoring:"),
            st.Page("app_pages/deepeyes/filter_map.py", title="Filter map", icon=":material/bubble_chart:"),
            st.Page("app_pages/deepeyes/input_map.py", title="Input map", icon=":material/scatter_plot:"),
            st.Page("app_pages/rauber/hidden_activity.py", title="Hidden activity", icon=":material/hub:"),
            st.Page("app_pages/rauber/training_trails.py", title="Training trails", icon=":material/timeline:"),
        ],
        "Workspace": [st.Page("app_pages/workspace/workspaces.py", title="Workspaces", icon=":material/folder_open:")],
    }
    page = st.navigation(pages, expanded=True)
    sign_in_gate()

    try:
        v = view()
    except InputError as exc:
        st.error(f"Could not open this workspace — {exc}")
        st.page_link("app_pages/workspace/workspaces.py", label="Open or create a workspace",
                     icon=":material/folder_open:")
        v = None

    url_path = page.url_path or "model_data"  # the default page's is ""
    _RUN["page"] = url_path
    if v is not None:
        visit(v, url_path)
    with st.sidebar:
        st.markdown("### AOMscope")
        if current_user() is not None:
            st.caption(f"Signed in as **{plain(current_user())}**")
            st.button("Sign out", on_click=st.logout, key="sign_out")
        if v is not None:
            st.caption(f"**Workspace** · {plain(v.state['name'])}"
                       + (" · read-only, shared with you" if v.ws.read_only else ""))
            st.caption(f"**Dataset** · {plain(v.dataset)}")
            if v.model is not None:
                st.caption(f"**Model** · {plain(v.model.arch)} · {v.version['metrics']['params']:,} params  \n"
                           f"v{v.version_id} of {len(v.versions)} · `{v.version['digest'][:12]}`")
                st.metric("Test accuracy", f"{v.version['metrics']['accuracy']:.2%}")
            elif v.model_problem:
                st.caption(f"**Model** · {plain(v.model_problem)}")
            else:
                st.caption("**Model** · none yet")
            if v.maps_info:
                names = v.maps_info["layers"]
                shown = plain(", ".join(names[:4])) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
                st.caption(f"**Maps** · {shown} · {v.maps_info['split']} split · threshold {v.maps_info['threshold']}")
            elif v.model is not None:
                st.caption(f"**Maps** · none for v{v.version_id} yet")
            sidebar_jobs(v)

    show_flash()
    if v is not None or page.title == "Workspaces":
        if v is not None:
            loop_bar(v, url_path)
        try:
            page.run()
        except InputError as exc:
            st.error(str(exc))
        if v is not None:
            next_step_link(v, url_path)


_RUN = {"page": None}  # this script run's page, for the render log


def timed_main(log: str) -> None:
    """:func:`main`, appending the run's page and server-side seconds to ``log`` however the run ends
    (a rerun or stop request ends it with an exception)."""
    start = time.perf_counter()
    try:
        main()
    finally:
        line = json.dumps({"time": time.time(), "page": _RUN["page"], "ws": st.query_params.get("ws"),
                           "seconds": time.perf_counter() - start})
        with open(log, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    if os.environ.get("AOMSCOPE_RENDER_LOG"):
        timed_main(os.environ["AOMSCOPE_RENDER_LOG"])
    else:
        main()
