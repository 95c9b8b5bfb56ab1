"""Versions: every edit + retrain as a version; compare accuracy against size, revert, download."""

import json

import pandas as pd
import streamlit as st

from ui import cached, views
from ui.state import require_model, workspace

ws = workspace()
st.title("Versions")
st.caption("v0 is the model as loaded; each edit + retrain on **Edit & retrain** adds a version. Revert to any "
           "version to undo; maps are recomputed on the current version's weights.")
require_model(ws)

history = ws.versions()
rows = pd.DataFrame(history.rows())
st.dataframe(rows, hide_index=True, width="stretch",
             column_config={"test accuracy": st.column_config.NumberColumn(format="percent"),
                            "params": st.column_config.NumberColumn(format="localized"),
                            "FLOPs": st.column_config.NumberColumn(format="localized")})
st.altair_chart(views.versions_chart(rows))
if history.evicted:
    st.caption(f"Evicted to bound memory: {', '.join(f'v{i}' for i in history.evicted)}.")

ids = list(history.versions)
c1, c2 = st.columns([1, 2])
chosen = c1.selectbox("Version", ids, index=ids.index(history.current_id), format_func=lambda i: f"v{i}")
version = history.versions[chosen]
c2.caption(version.note)
if chosen != history.current_id and c2.button(f"Make v{chosen} current (revert)", type="primary"):
    ws.use_version(history.revert(chosen))
    st.rerun()
if ws.model.digest == version.digest and not ws.maps:
    st.page_link("pages/compute_maps.py", label=f"Compute maps for v{chosen}", icon=":material/calculate:")

st.subheader(f"Download v{chosen}")
edits = json.dumps({"arch": ws.model.arch, "edits": [e.to_dict() for e in version.edits],
                    "digest": version.digest, "metrics": version.metrics}, indent=2)
d1, d2, d3, d4 = st.columns(4)
d1.download_button("state_dict (.pt)", cached.state_dict_bytes(version.digest, "pt", version.model), f"v{chosen}.pt")
d2.download_button("state_dict (.safetensors)", cached.state_dict_bytes(version.digest, "safetensors", version.model),
                   f"v{chosen}.safetensors")
d3.download_button("Edit list (JSON)", edits, f"v{chosen}_edits.json", "application/json")
if d4.button("Prepare torch.export program"):
    st.session_state[f"export_{version.digest}"] = True
if st.session_state.get(f"export_{version.digest}"):
    program = cached.export_program(version.digest, ws.split("test").input_shape, version.model)
    d4.download_button("torch.export (.pt2)", program, f"v{chosen}.pt2")
st.caption("To analyse a downloaded version elsewhere: `python -m aomcore maps --arch ARCH --weights vN.pt "
           "--edits vN_edits.json ...`")
