"""Training trails (Rauber et al. 2017): how a fixed image sample moves in a layer's projection over a run."""

import json

import streamlit as st

import aomcore
from aomcore.base import limits
from aomcore.base.embedding import SCHEDULE
from ui import cached, tables
from ui.jobs import job_outcome, job_panel
from ui.rauber import trails as views_trails
from ui.state import default_run, submit, view

v = view()
st.title("Training trails")
st.caption("One projection of the same test images per training snapshot (Rauber et al., TVCG 2017); each "
           "image's positions form its trail, bundled and coloured by class, dark = early → bright = late. "
           "Classes that separate late, or stay mixed, show where the network still struggles.")
runs = [r for r in aomcore.list_runs(v.ws) if r.get("status") == "done" and len(r.get("snapshots", [])) >= 2]
if not runs:
    st.info("No training run with snapshots yet: train a model on **Model & data** (snapshots are kept), or "
            "`python -m aomcore train --workspace DIR --snapshots 20`.")
    st.stop()

test = v.split("test")
by_id = {r["id"]: r for r in runs}
c1, c2, c3 = st.columns([2, 1, 1])
ids = list(by_id)[::-1]
run_id = c1.selectbox("Run", ids, index=ids.index(default_run(runs)), format_func=lambda i: (
    f"{i} · {by_id[i].get('kind', 'run')} · {by_id[i]['arch']} · {len(by_id[i]['snapshots'])} snapshots"))
run = by_id[run_id]
layers = cached.run_layers(run["path"], run["arch"], json.dumps(run.get("edits", [])), test.num_classes,
                           test.input_shape)
layer = c2.selectbox("Layer", layers, index=len(layers) - 2 if len(layers) > 1 else 0)
method = c3.radio("Projection", ["tsne", "umap"], horizontal=True, format_func={"tsne": "t-SNE",
                                                                                    "umap": "AlignedUMAP"}.get)
c1, c2, c3, c4 = st.columns(4)
n = c1.number_input("Images (stratified)", 50, 10000, min(2000, len(test)), step=100)
stability = c2.slider("Stability", 0.0, 1.0, 0.5, 0.05, help="Higher keeps each snapshot's layout closer to "
                      "the previous one: smoother trails, less faithful layouts.")
n_iter = c3.number_input("t-SNE iterations", 10, 2000, 500, step=50, help="Of the first snapshot; later ones "
                         "continue from the previous layout for (1 − stability) of these.")
seed = c4.number_input("Seed", limits.SEED_MIN, limits.SEED_MAX, 0)
params = {"run": run_id, "layer": layer, "n": int(n), "method": method, "seed": int(seed),
          "stability": float(stability), "split": "test", "n_iter": int(n_iter)}

running = bool(v.active_jobs(("trails",)))
if st.button("Compute trails", type="primary", disabled=running, key="compute_trails"):
    if submit(v.ws, "trails", params):
        st.rerun()
job_panel(v, ("trails",))
job_outcome(v, "trails")

same = [r for r in v.ws.results("trails") if all(r.get(k) == val for k, val in params.items())
        and r.get("schedule") == SCHEDULE]  # trails of an older t-SNE schedule are computed again
if not same:
    if not running:
        st.info("Choose a run, a layer and the options, then press **Compute trails**.")
    st.stop()
info = same[-1]
arrays = cached.trails_arrays(str(v.ws.path), info["key"])
classes = list(test.classes)
st.success(f"{info['n']:,} test images × {info['snapshots']} snapshots of {info['layer']} (read at {info['tap']}) "
           f"in {info['seconds']:.0f} s{' (already in the workspace)' if info['from_cache'] else ''}.")

o1, o2, o3, o4 = st.columns(4)
highlight = o1.selectbox("Highlight class", [None, *range(len(classes))],
                         format_func=lambda c: "none" if c is None else str(classes[c]))
misclassified = o2.toggle("Only misclassified at the end")
raw = o3.toggle("Raw trails (unbundled)")
one = o4.toggle("One snapshot")
picture, numbers = st.columns([3, 2])
with picture:
    if misclassified and not views_trails.trail_subset(arrays, True).size:
        st.info("The last snapshot classifies every sampled image correctly.")
    elif one:
        snapshots = [int(i) for i in arrays["snapshots"]]
        it = st.select_slider("Snapshot (training iteration)", snapshots, value=snapshots[-1])
        images = cached.sample_images(test.digest, tuple(int(i) for i in arrays["index"]), test)
        chart = views_trails.snapshot_scatter(arrays, snapshots.index(it), classes, images, highlight, misclassified)
        event = st.altair_chart(chart, on_select="rerun", key="trail_pick", width="stretch")
        picked = (event or {}).get("selection", {}).get("pick") or []
        if picked:
            row = int(picked[0]["row"])
            st.image(images[row].transpose(1, 2, 0), width=112,
                     caption=f"index {int(arrays['index'][row])}, class {classes[int(arrays['labels'][row])]}")
    else:
        png = cached.trails_png(str(v.ws.path), info["key"], not raw, highlight, misclassified)
        st.image(png, width="stretch")
        st.markdown(views_trails.legend_html(classes, arrays["snapshots"], highlight), unsafe_allow_html=True)
        st.download_button("Download PNG", png, f"trails_{info['layer']}.png", "image/png")
with numbers:
    st.markdown("**Neighbourhood hit per snapshot** (k = 6)")
    st.vega_lite_chart(cached.chart_spec(views_trails.nh_curve, arrays["snapshots"], arrays["neighborhood_hit"]),
                       width="stretch")
    tables.table(views_trails.class_table(arrays, classes), {"test accuracy": None}, hide_index=True,
                 width="stretch",
                 column_config={"final neighbourhood hit": st.column_config.NumberColumn(format="%.3f")})
    if (message := views_trails.lag_message(arrays, classes)) is not None:
        st.warning(message)
    else:
        st.caption("No class lags the median class's final neighbourhood hit by more than 0.05.")
    meta = json.dumps({k: val for k, val in info.items() if k != "dataset"} | {"classes": classes})
    st.download_button("Download trails.npz", cached.trails_npz(str(v.ws.path), info["key"], meta),
                       f"trails_{info['layer']}.npz", "application/octet-stream")
