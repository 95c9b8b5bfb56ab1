"""Layer overview: every analysed layer, first to last, with the paper's three tasks as findings to judge."""

import json

import streamlit as st

import aomcore
from ui import cached, tables
from ui.aom import overview as views_overview
from ui.state import require_maps, view

v = view()
st.title("Layer overview")
st.caption("One row per analysed layer, first to last, at each layer's group cut (set on Explore or Select "
           "kernels). The findings point at the paper's three tasks (Sec. III) with the edit that would act on them; "
           "they are for you to judge on the maps (\"the engineer examines such cases visually and decides\", "
           "Sec. IV) — nothing is edited until you apply it on Edit & retrain.")
require_maps(v)

digest = v.version["digest"]
cuts = {name: v.ws.n_groups(name, aomcore.default_n_groups(m.odm, m.aom)) for name, m in v.maps.items()}
hits = {r["layer"]: r["neighborhood_hit"] for r in v.ws.results("embed", digest)
        if r.get("layer") in v.maps and r.get("neighborhood_hit") is not None}
lineage = v.model.lineage  # findings name kernels as the first version did
rows = cached.overview(v.maps_info["key"], json.dumps(cuts, sort_keys=True), json.dumps(hits, sort_keys=True), v.maps,
                       lineage, json.dumps(lineage.to_json()) if lineage else "")
table = views_overview.overview_table(rows)
if not hits:
    table = table.drop(columns="neighbourhood hit")
tables.table(table, {"multi-class share": None}, decimals=1, hide_index=True, width="stretch",
             height=min(35 * (len(table) + 1) + 3, 1200),  # every layer at once: a ResNet-18 has 20 conv layers
             column_config={"mean s(k)": st.column_config.NumberColumn(format="%.3f"),
                            "E": st.column_config.NumberColumn(format="%.4f"),
                            "neighbourhood hit": st.column_config.NumberColumn(format="%.3f")})
st.caption("Redundant: kernels dropped because a more selective kernel of their group of similar AOMs is kept, "
           "in so many groups of two or more. E: class difference of the least separated class pair. "
           "Multi-class share: kernels with "
           f"strong occurrence (mean > {aomcore.MULTI_CLASS_LEVEL:g}) for two or more classes."
           + ("" if hits else " Neighbourhood hit: project a layer's activations to add it."))

for row in rows:
    st.subheader(f"{row['layer']} · {row['kernels']} kernels")
    if not row["findings"]:
        st.caption("Nothing listed for this layer at this cut.")
    names = v.kernel_names(row["layer"], row["kernels"])
    for n, finding in enumerate(row["findings"]):
        a, b = st.columns([3, 1], vertical_alignment="center")
        a.markdown(f"**Task {finding['task']} — {views_overview.TASKS[finding['task']]}.** {finding['finding']}.  \n"
                   f"Proposed edit: {views_overview.edit_summary(finding['edit'], names)}.")
        if finding["edit"] is not None and b.button("Prepare this edit", key=f"edit_{row['layer']}_{n}",
                                                    icon=":material/content_cut:"):
            st.session_state["proposed_edit"] = {**finding["edit"], "digest": digest}
            st.switch_page("app_pages/aom/edit_retrain.py")
