"""Filter map (DeepEyes): a layer's filters placed by similarity, with the activation heatmap beside it."""

import streamlit as st

import aomcore
from aomcore.base import limits
from ui import cached, tables
from ui import projections as ev
from ui.jobs import job_outcome, job_panel
from ui.state import require_model, submit, view

v = view()
st.title("Filter map")
st.caption("DeepEyes (Pezzotti et al. 2018): each point is a filter (kernel or neuron), placed by t-SNE on the "
           "distance (1 − similarity)², where similarity is the weighted Jaccard overlap of two filters' "
           "activations over sampled receptive fields. Colour: the class the filter fires for most (its label); "
           "size: how confidently. Filters close together are redundant candidates; a small grey-ish point "
           "fires for no class in particular. Beside it, the activation heatmap: each filter's maximum "
           "activation and how often it fires (dead and always-on filters show here first).")
require_model(v)

train_set = v.split("train")
layers = [r for r in cached.layer_table(v.model.digest, train_set.input_shape, False, v.model)
          if r["kind"] in ("conv", "fc")][:-1]  # the output layer's neurons are the classes
if not layers:
    st.info("This model has no conv or hidden FC layer to map.")
    st.stop()
c1, c2, c3 = st.columns([2, 1, 1])
layer = c1.selectbox("Layer", [r["name"] for r in layers],
                     format_func=lambda n: next(f"{n} · {r['type']} · {r['kernels']} filters" for r in layers
                                                if r["name"] == n))
n_iter = c2.number_input("t-SNE iterations", 50, 2000, 500, step=50, help="after 250 of early exaggeration")
seed = c3.number_input("Seed", limits.SEED_MIN, limits.SEED_MAX, 0)
digest = v.version["digest"]
found = aomcore.stored_embedding(v.ws, digest, "filter-map", layer, n_iter=n_iter, seed=seed)
running = bool(v.active_jobs(("embed", "deepeyes")))
if st.button("Compute filter map", type="primary", disabled=running or found is not None, key="compute"):
    if submit(v.ws, "embed", {"version": v.version_id, "view": "filter-map", "layer": layer, "split": "train",
                              "n_iter": int(n_iter), "seed": int(seed)}):
        st.rerun()
job_panel(v, ("embed", "deepeyes"))
job_outcome(v, "embed")
if found is None:
    if not running:
        st.info(f"No filter map of **{layer}** (v{v.version_id}) yet: press **Compute filter map**. One pass over "
                "the train split gathers the DeepEyes statistics of every layer (kept for the other layers), "
                "then t-SNE places this layer's filters.")
    st.stop()

arrays = cached.stored_arrays(str(v.ws.path), "embed", found["key"])
classes = [str(c) for c in arrays["classes"]]
stats = {k.removeprefix("deepeyes_"): a for k, a in arrays.items() if k.startswith("deepeyes_")}
df = ev.filter_frame(arrays["points"], stats, classes)
left, right = st.columns([3, 2])
with left:
    event = st.vega_lite_chart(cached.chart_spec(ev.filter_map_chart, df, classes), width="stretch", on_select="rerun",
                               key=f"fm_{layer}")
    st.caption("Drag a box to select filters; double-click to clear.")
box = (event.selection.get("box") or {}) if event else {}
from_chart = df[df["x"].between(*box["x"]) & df["y"].between(*box["y"])]["filter"].tolist() if box.get("x") else []
picked = st.multiselect("Selected filters", df["filter"].tolist(), default=from_chart, format_func=lambda k: f"k{k}",
                        key=f"picked_{layer}_{hash(tuple(from_chart))}")
with right:
    st.vega_lite_chart(cached.chart_spec(ev.heatmap_chart, df, picked), width="stretch")
    dead = int((df["max activation"] <= 0).sum())
    always = int((df["frequency"] >= 0.999).sum())
    st.caption(f"{len(df)} filters · {dead} dead (never activate) · {always} always on (fire on ≥ 99.9% of samples)")
    tables.table(df.drop(columns=["x", "y"]).set_index("filter").loc[picked or df["filter"].tolist()],
                 {"frequency": None}, height=260,
                 column_config={"confidence": st.column_config.NumberColumn(format="%.2f")})

if picked:
    k = len(df)
    b1, b2, b3 = st.columns(3)
    if b1.button(f"Keep only these {len(picked)}", key="keep"):
        v.ws.set_selection(digest, layer, picked)
        st.toast(f"Selection of {layer}: keep {len(picked)}, drop {k - len(picked)}. Edit & retrain is pre-filled.")
    if b2.button(f"Drop these {len(picked)}", key="drop"):
        v.ws.set_selection(digest, layer, [f for f in range(k) if f not in picked])
        st.toast(f"Selection of {layer}: drop {len(picked)}, keep {k - len(picked)}. Edit & retrain is pre-filled.")
    b3.page_link("app_pages/aom/edit_retrain.py", label="Edit & retrain", icon=":material/content_cut:")
    if layer in v.maps:
        m = v.maps[layer]
        st.image(cached.aom_rows(v.maps_info["key"], layer, tuple(picked), v.maps[layer]),
                 caption=f"AOM rows of the selected filters (k{', k'.join(map(str, picked))}; one column per class)")
    else:
        st.caption("Compute maps on **Compute maps** to see the selected filters' AOM rows here.")
if layer in v.selection:
    st.caption(f"Current selection of {layer}: keep {len(v.selection[layer])} of {len(df)}.")
