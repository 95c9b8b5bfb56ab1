"""Input map (DeepEyes): sampled receptive fields of a layer, placed by what the layer sees there."""

import numpy as np
import streamlit as st

import aomcore
from aomcore.base.receptive_field import receptive_boxes
from ui import cached
from ui import projections as ev
from ui.jobs import job_outcome, job_panel
from ui.state import require_model, submit, view

v = view()
st.title("Input map")
st.caption("DeepEyes (Pezzotti et al. 2018): each point is one receptive field — the patch of the layer's input "
           "that one filter position sees in one test image (10 positions per image) — placed by t-SNE on that "
           "patch. Groups of points are the input patterns the layer can tell apart; colour them by class, by one "
           "filter's activation or by perplexity (how many filters respond: low = specific). Select points "
           "(click; shift-click for more) to see their receptive fields and the filters most active on them.")
require_model(v)

test_set = v.split("test")
layers = [r for r in cached.layer_table(v.model.digest, test_set.input_shape, False, v.model)
          if r["type"] in ("Conv2d", "Linear")][:-1]
c1, c2, c3 = st.columns([2, 1, 1])
layer = c1.selectbox("Layer", [r["name"] for r in layers], format_func=lambda n: next(
    f"{n} · {r['type']} · {r['kernels']} filters" for r in layers if r["name"] == n))
n = c2.number_input("Points (about)", 100, 20_000, 2000, step=100)
n_iter = c3.number_input("t-SNE iterations", 50, 2000, 500, step=50)
digest = v.version["digest"]
found = aomcore.stored_embedding(v.ws, digest, "input-map", layer, n=n, n_iter=n_iter)
running = bool(v.active_jobs(("embed",)))
if st.button("Compute input map", type="primary", disabled=running or found is not None, key="compute"):
    if submit(v.ws, "embed", {"version": v.version_id, "view": "input-map", "layer": layer, "split": "test",
                              "n": int(n), "n_iter": int(n_iter)}):
        st.rerun()
job_panel(v, ("embed",))
job_outcome(v, "embed")
if found is None:
    if not running:
        st.info(f"No input map of **{layer}** with {n:,} points yet: press **Compute input map** (one pass over "
                "a stratified sample of test images, then t-SNE).")
    st.stop()

a = cached.stored_arrays(str(v.ws.path), "embed", found["key"])
classes = [str(c) for c in a["classes"]]
acts = a["activations"]
colour_by = st.radio("Colour", ["class", "one filter's activation", "perplexity", "max activation"], horizontal=True)
if colour_by == "class":
    colours = np.array([ev.class_colour(c) for c in a["labels"]])
    st.markdown(ev.legend_html(classes), unsafe_allow_html=True)
else:
    if colour_by == "one filter's activation":
        f = st.slider("Filter", 0, acts.shape[1] - 1, int(np.argmax(acts.mean(0))))
        values = acts[:, f]
    else:
        values = a["perplexity"] if colour_by == "perplexity" else a["max_activation"]
    colours = ev.ramp(values)
    st.caption(f"Dark blue = {values.min():.3g} … yellow = {values.max():.3g}")
deck = ev.scatter_deck(a["points"], colours, {"label": [classes[c] for c in a["labels"]],
                                              "img": [int(i) for i in a["index"]],
                                              "perp": np.round(a["perplexity"], 2)},
                       tooltip_html="class {label} · image {img} · perplexity {perp}", span=470)
event = st.pydeck_chart(deck, on_select="rerun", selection_mode="multi-object", key=f"im_{found['key']}",
                        height=520)
st.caption(f"{len(a['points']):,} receptive fields of {len(np.unique(a['index'])):,} images · neighbourhood hit "
           f"{float(a['neighborhood_hit']):.3f} (share of each point's 6 nearest neighbours with its class)")

rows = ev.selected_indices(event)
if not rows:
    st.info("Select points in the map to see their receptive fields here.")
    st.stop()
rows = rows[:40]
boxes, what = receptive_boxes(v.model.model, layer, a["position"][rows], tuple(a["map_shape"]),
                              test_set.input_shape[1:])
images = cached.display_images(test_set.digest, tuple(int(i) for i in a["index"][rows]), test_set)
st.subheader(f"{len(rows)} selected receptive field(s)")
st.caption(f"Red box in each image and the crop beside it: {what}.")
st.image(ev.crops_image(images, boxes))
st.dataframe(ev.top_filters(acts, rows), hide_index=True)
