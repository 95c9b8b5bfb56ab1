"""Versions: every edit + retrain as a version; compare accuracy against size, revert, download."""

import json

import pandas as pd
import streamlit as st

from ui import cached, views
from ui.state import require_model, view

v = view()
st.title("Versions")
st.caption("Each edit + retrain on **Edit & retrain** adds a version, a child of the version it started from; "
           "they live in the workspace on disk. Revert to any version to undo; maps are recomputed on the current "
           "version's weights.")
require_model(v)

rows = pd.DataFrame([views.version_row(r, v.version_id) for r in v.versions.values()])
st.dataframe(rows, hide_index=True, width="stretch",
             column_config={"test accuracy": st.column_config.NumberColumn(format="percent"),
                            "params": st.column_config.NumberColumn(format="localized"),
                            "FLOPs": st.column_config.NumberColumn(format="localized")})
st.altair_chart(views.versions_chart(rows))

ids = list(v.versions)
c1, c2 = st.columns([1, 2])
chosen = c1.selectbox("Version", ids, index=ids.index(v.version_id), format_func=lambda i: f"v{i}")
record = v.versions[chosen]
c2.caption(record["note"])
if chosen != v.version_id and c2.button(f"Make v{chosen} current (revert)", type="primary"):
    v.ws.set_current(chosen)
    st.rerun()
if chosen == v.version_id and not v.maps:
    st.page_link("pages/compute_maps.py", label=f"Compute maps for v{chosen}", icon=":material/calculate:")

st.subheader(f"Download v{chosen}")
model = cached.version_model(str(v.ws.path), chosen, record["digest"])
edits = json.dumps({"arch": v.state["arch"], "edits": record["edits"], "digest": record["digest"],
                    "metrics": record["metrics"]}, indent=2)
d1, d2, d3, d4 = st.columns(4)
d1.download_button("state_dict (.pt)", cached.state_dict_bytes(record["digest"], "pt", model), f"v{chosen}.pt")
d2.download_button("state_dict (.safetensors)", cached.state_dict_bytes(record["digest"], "safetensors", model),
                   f"v{chosen}.safetensors")
d3.download_button("Edit list (JSON)", edits, f"v{chosen}_edits.json", "application/json")
if d4.button("Prepare torch.export program"):
    st.session_state[f"export_{record['digest']}"] = True
if st.session_state.get(f"export_{record['digest']}"):
    program = cached.export_program(record["digest"], v.split("test").input_shape, model)
    d4.download_button("torch.export (.pt2)", program, f"v{chosen}.pt2")
st.caption("Load a downloaded version back on **Model & data** (weights + this edit list), or in the CLI: "
           f"`python -m aomcore maps --arch {v.state['arch']} --weights v{chosen}.pt --edits v{chosen}_edits.json ...`")
