"""Versions: every edit + retrain as a version; compare accuracy against size, revert, download."""

import json

import pandas as pd
import streamlit as st

import aomcore
from ui import cached, tables, views
from ui.aom import overview as views_overview
from ui.jobs import job_panel
from ui.state import require_model, submit, view

v = view()
st.title("Versions")
st.caption("Each edit + retrain on **Edit & retrain** adds a version, a child of the version it started from; "
           "they live in the workspace on disk. Revert to any version to undo; maps are recomputed on the current "
           "version's weights.")
require_model(v)

rows = pd.DataFrame([views.version_row(r, v.version_id) for r in v.versions.values()])
tables.table(rows, {"test accuracy": None}, hide_index=True, width="stretch",
             column_config={"params": st.column_config.NumberColumn(format="localized"),
                            "FLOPs": st.column_config.NumberColumn(format="localized"),
                            "note": st.column_config.TextColumn(width="large"),
                            "kernels": st.column_config.TextColumn(width="medium")})
st.vega_lite_chart(cached.chart_spec(views.versions_chart, rows))

st.subheader("Compare two versions")
ids = list(v.versions)
others = [i for i in ids if i != v.version_id]  # default: parent → current, else current → newest other
pair = ((v.version["parent"], v.version_id) if v.version["parent"] is not None
        else (v.version_id, others[-1] if others else v.version_id))
c1, c2 = st.columns(2)
a = v.versions[c1.selectbox("Version A", ids, index=ids.index(pair[0]), format_func=lambda i: f"v{i}", key="cmp_a")]
b = v.versions[c2.selectbox("Version B", ids, index=ids.index(pair[1]), format_func=lambda i: f"v{i}", key="cmp_b")]
t, chart = st.columns([5, 4])  # the change column names the kernels gone and new
lineages = [cached.version_model(str(v.ws.path), r["id"], r["digest"]).lineage for r in (a, b)]
relation = aomcore.kinship({i: r["parent"] for i, r in v.versions.items()}, a["id"], b["id"])
t.dataframe(views_overview.compare_table(a, b, *lineages, relation=relation), hide_index=True, width="stretch",
            column_config={"change": st.column_config.TextColumn(width="large")})
t.caption("Kernels keep their names from the first version (`k5` is its kernel 5 wherever it sits now; `+`: added "
          "by an edit), so a change names the kernels gone and new.")
chart.caption(f"Per-class test accuracy, v{b['id']} − v{a['id']} in percentage points (hover: both values).")
chart.altair_chart(views_overview.accuracy_difference_chart(v.split("test").classes, a["metrics"]["per_class"],
                                                            b["metrics"]["per_class"], f"v{a['id']}", f"v{b['id']}"),
                   width="stretch")
found = {r["id"]: (v.ws.results("maps", r["digest"]) or [None])[-1] for r in (a, b)}
both = [n for n in a["metrics"]["kernels"] if n in b["metrics"]["kernels"]]
newer = max(a, b, key=lambda r: r["id"])
edited = [e["layer"] for e in newer.get("edits", [])[-1:] if e["layer"] in both]
mapped = {n for f in found.values() if f for n in f["layers"]}
layers = [n for n in both if n in mapped or n in edited] or both[:1]  # with maps, and the edited layer
layer = st.selectbox("AOM grid of layer", layers, index=layers.index(edited[0]) if edited else 0,
                     key=f"cmp_layer_{a['id']}_{b['id']}", help="Default: the layer of the newer version's last edit.")
align = st.toggle("Align B's rows to A's kernels", value=relation != "unrelated", disabled=relation == "unrelated",
                  help="B's grid lists A's kernels in A's order (by name: k5 is k5 in both), then B's new kernels. "
                       + ("These versions were trained apart: their kernels share no identity."
                          if relation == "unrelated" else "Off: each grid in its own clustering order, groups boxed."))
shown = {}  # side -> (names, display order) of a drawn grid
for side, col, record, lineage in zip("AB", st.columns(2), (a, b), lineages, strict=True):
    info = found[record["id"]]
    col.markdown(f"**v{record['id']}** · {record['metrics']['kernels'][layer]} kernels in {layer}")
    if info and layer in info["layers"]:
        m = cached.workspace_maps(str(v.ws.path), info["key"])[layer]
        cut = min(m.num_kernels, v.ws.n_groups(layer, aomcore.default_n_groups(m.odm, m.aom)))
        names = tuple(aomcore.kernel_names(lineage, layer, m.num_kernels))  # as A/B's own
        shown[side] = names, cached.views(info["key"], layer, cut, m)["order"]
        order, labels = None, names
        if side == "B" and align and "A" in shown:
            order = tuple(aomcore.aligned_rows(*shown["A"], *shown["B"], relation=relation))
            matched = len(aomcore.shared_names(shown["A"][0], names, relation))
            col.caption(f"In A's order: the {matched} kernels A has too (A's kernels marked 'gone' are not in B), "
                        f"then B's other {m.num_kernels - matched}.")
        if side == "A" and align and b["id"] != a["id"]:  # mark A's kernels that B no longer has
            kept = aomcore.shared_names(names, aomcore.kernel_names(lineages[1], layer, b["metrics"]["kernels"][layer]),
                                        relation)
            labels = tuple(n if n in kept else f"{n} gone" for n in names)
        col.image(cached.grid_image(info["key"], layer, cut, "aom", "occurrence", 28, m, names=labels, order=order),
                  width="stretch")
    elif col.button(f"Compute maps of v{record['id']}", key=f"maps_{side}_{record['id']}",
                    disabled=bool(v.active_jobs(("maps",)))):
        if submit(v.ws, "maps", {"version": record["id"], "layers": [layer], "split": "train", "threshold": 0.0,
                                 "batch_size": 256, "device": "auto"}):
            st.rerun()
job_panel(v, ("maps",))

st.subheader("Revert")
c1, c2 = st.columns([1, 2])
chosen = c1.selectbox("Version", ids, index=ids.index(v.version_id), format_func=lambda i: f"v{i}",
                      key="revert_version")
record = v.versions[chosen]
c2.caption(record["note"])
if chosen != v.version_id and c2.button(f"Make v{chosen} current (revert)", type="primary", key="revert"):
    v.ws.set_current(chosen)
    st.rerun()
if chosen == v.version_id and not v.maps:
    st.page_link("app_pages/aom/compute_maps.py", label=f"Compute maps for v{chosen}", icon=":material/calculate:")

st.subheader(f"Download v{chosen}")
loaded = cached.version_model(str(v.ws.path), chosen, record["digest"])
model = loaded.model
edits = json.dumps({"arch": v.state["arch"], "edits": record["edits"], "digest": record["digest"],
                    "metrics": record["metrics"],
                    "kernel_origin": loaded.lineage.to_json(changed_only=True) if loaded.lineage else {}}, indent=2)
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
