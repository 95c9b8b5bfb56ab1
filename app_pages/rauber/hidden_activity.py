"""Hidden activity (Rauber et al. 2017): projections of chosen layers side by side, and of a layer's neurons."""

import numpy as np
import streamlit as st

import aomcore
from ui import cached
from ui import projections as ev
from ui.jobs import job_outcome, job_panel
from ui.state import require_model, submit, view

v = view()
st.title("Hidden activity")
st.caption("Rauber et al. 2017: each point is a test image, placed by t-SNE on a layer's activations. Classes "
           "that separate better layer after layer show the network's learning; the neighbourhood hit (share of "
           "each point's 6 nearest neighbours with its class) puts a number on it. Ringed points are misclassified. "
           "Hover a point to see its image; select points (click, shift-click) to list them below.")
require_model(v)

test_set = v.split("test")
table = cached.layer_table(v.model.digest, test_set.input_shape, False, v.model)
names = [r["name"] for r in table if r["kind"] in ("conv", "fc")]
c1, c2, c3 = st.columns([3, 1, 1])
chosen = c1.multiselect("Layers", names, default=[names[0], names[-2]] if len(names) > 2 else names[:1],
                        max_selections=4)
n = c2.number_input("Images", 100, 10_000, 2000, step=100)
n_iter = c3.number_input("t-SNE iterations", 50, 2000, 500, step=50)
digest = v.version["digest"]


def stored(view_name: str, layer: str) -> dict | None:
    return aomcore.stored_embedding(v.ws, digest, view_name, layer, n=n, n_iter=n_iter)


missing = [la for la in chosen if stored("activations", la) is None]
running = bool(v.active_jobs(("embed",)))
label = f"Compute {len(missing)} projection(s)" if missing else "All chosen layers are projected"
if st.button(label, type="primary", disabled=running or not missing, key="compute"):
    if submit(v.ws, "embed", {"version": v.version_id, "view": "activations", "layers": missing, "split": "test",
                              "n": int(n), "n_iter": int(n_iter)}):
        st.rerun()
job_panel(v, ("embed",))
job_outcome(v, "embed")
ready = [(la, rec) for la in chosen if (rec := stored("activations", la)) is not None]
if not ready:
    if not running:
        st.info("Choose layers and press **Compute** (one pass over a stratified sample of test images, then t-SNE, "
                "per layer).")
    st.stop()

st.markdown(ev.legend_html(test_set.classes) + "&nbsp;&nbsp; ◯ ring = misclassified", unsafe_allow_html=True)
selected: dict[int, None] = {}
for col, (la, rec) in zip(st.columns(len(ready)), ready, strict=True):
    a = cached.stored_arrays(str(v.ws.path), "embed", rec["key"])
    wrong = a["predicted"] != a["labels"]
    thumbs = cached.thumbnails(test_set.digest, tuple(int(i) for i in a["index"]), test_set)
    deck = ev.scatter_deck(a["points"], np.array([ev.class_colour(c) for c in a["labels"]]),
                           {"thumb": thumbs, "label": [test_set.classes[c] for c in a["labels"]],
                            "pred": [test_set.classes[c] if c >= 0 else "?" for c in a["predicted"]]},
                           radius=np.where(wrong, 4.5, 2.5), outline=wrong,
                           tooltip_html="<img src='{thumb}' width=56><br>class {label} · predicted {pred}",
                           span=min(380, 1000 // len(ready) - 40))
    with col:
        st.markdown(f"**{la}** · neighbourhood hit **{float(a['neighborhood_hit']):.3f}** · {int(wrong.sum())} of "
                    f"{len(wrong):,} misclassified")
        event = st.pydeck_chart(deck, on_select="rerun", selection_mode="multi-object", key=f"ha_{rec['key']}",
                                height=420)
    selected.update(dict.fromkeys(int(a["index"][r]) for r in ev.selected_indices(event)))

if selected:
    idx = list(selected)[:60]
    images = cached.display_images(test_set.digest, tuple(idx), test_set)
    a0 = cached.stored_arrays(str(v.ws.path), "embed", ready[0][1]["key"])
    pred = dict(zip(a0["index"].tolist(), a0["predicted"].tolist(), strict=True))
    labels = test_set.labels.numpy()
    st.image(ev.image_sheet(images, [], np.array([pred.get(i, labels[i]) != labels[i] for i in idx])),
             caption=f"{len(idx)} selected image(s) (red frame: misclassified)")

st.subheader("Neuron projection")
st.caption("Each point is a neuron (for a conv layer, a kernel's spatial mean), placed by t-SNE on 1 − |Pearson r| "
           "of the activations over the sampled images; colour = the class it responds to most.")
nl = st.selectbox("Layer", names, index=len(names) - 2 if len(names) > 1 else 0, key="neuron_layer")
rec = stored("neurons", nl)
if rec is None:
    if st.button("Compute neuron projection", disabled=running, key="neurons"):
        if submit(v.ws, "embed", {"version": v.version_id, "view": "neurons", "layer": nl, "split": "test",
                                  "n": int(n), "n_iter": int(n_iter)}):
            st.rerun()
    st.stop()
a = cached.stored_arrays(str(v.ws.path), "embed", rec["key"])
deck = ev.scatter_deck(a["points"], np.array([ev.class_colour(c) for c in a["labels"]]),
                       {"neuron": [int(i) for i in a["index"]],
                        "label": [test_set.classes[c] for c in a["labels"]]}, radius=5,
                       tooltip_html="neuron {neuron} · class {label}", span=340)
st.pydeck_chart(deck, key=f"np_{rec['key']}", height=380)
