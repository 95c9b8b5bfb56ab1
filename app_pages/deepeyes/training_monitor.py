"""Training monitor: a run's curves, DeepEyes' perplexity and learning histograms, the activation heatmap
and the AOM grid of any snapshot — live while the run trains (Pezzotti et al. 2018)."""

import streamlit as st

from aomcore.deepeyes import filter_flags, stable_layers
from aomcore.store import list_runs, read_run_view
from ui import cached
from ui.deepeyes import monitor as monitor
from ui.deepeyes import views as vd
from ui.jobs import job_outcome, job_panel, rerun_when
from ui.state import default_run, view

LIVE_SECONDS = 5.0  # re-read the run's files this often while it trains (charts need time to redraw)

v = view()
st.title("Training monitor")
st.caption("DeepEyes (Pezzotti et al., IEEE TVCG 2018) over a training run: statistics of the training mini-batches "
           "between consecutive snapshots, read live from the run's folder while it trains.")
monitor.imported_report(v)
runs = list(reversed(list_runs(v.ws)))
if not runs and v.active_jobs(("train", "retrain")):  # its run folder is written once the data is loaded
    st.info("A training job is starting: its run shows here as soon as its first step is recorded.")
    job_panel(v, ("train", "retrain"))
    rerun_when(lambda: bool(list_runs(v.ws)))
    st.stop()
if not runs:
    st.info("No runs yet: train a model (**Model & data**) — runs are recorded with snapshots — or import "
            "checkpoint files below.")
    st.page_link("app_pages/workspace/model_data.py", label="Model & data", icon=":material/database:")
    job_panel(v, ("run_import",))
    job_outcome(v, "run_import")
    monitor.import_expander(v, expanded=True)
    st.stop()

by_id = {r["id"]: r for r in runs}
if st.session_state.get("monitor_run") not in by_id:
    st.session_state["monitor_run"] = default_run(runs)
made = {r.get("run"): r["id"] for r in v.versions.values()}
run_id = st.selectbox("Run", list(by_id), key="monitor_run", format_func=lambda i: (
    f"{i} · {by_id[i]['kind']} · {by_id[i]['status']}" + (f" · made v{made[i]}" if i in made else "")))
run = by_id[run_id]
running = run["status"] == "running"
job_panel(v, ("train", "retrain", "maps_snapshot", "run_import"), chart=not running)  # curves below are live
job_outcome(v, "maps_snapshot")
job_outcome(v, "run_import")

with st.expander("Thresholds: stable layers, always-on filters", expanded=False):
    c1, c2, c3 = st.columns(3)
    threshold = c1.number_input("Stable below (L1 change)", 0.001, 2.0, 0.1, 0.01, format="%.3f",
                                help="A layer is stable when its normalised perplexity histogram changes by less "
                                     "than this (sum of absolute differences, 0–2) over the last windows.")
    last = c2.number_input("for the last windows", 1, 50, 3)
    always = c3.number_input("Always on at frequency ≥", 0.51, 1.0, 0.95, 0.01,
                             help="Activation frequency: share of samples above half the filter's maximum.")


@st.fragment(run_every=LIVE_SECONDS if running else None)
def live():
    r = read_run_view(run["path"])
    if running and r.record.get("status") != "running":
        st.rerun()
    snaps, tail = r.snapshots, r.snapshots[-1] if r.snapshots else {}
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Status", r.record["status"])
    m2.metric("Step", f"{r.metrics[-1]['step']:,} / {r.metrics[-1]['steps']:,}" if r.metrics else "—")
    m3.metric("Snapshots", len(snaps))
    m4.metric("Test accuracy", f"{tail['test_accuracy']:.2%}" if "test_accuracy" in tail else "—",
              help=f"At iteration {tail.get('iteration', '—')}, the last snapshot.")
    loss, accuracy = vd.run_curves(r.metrics, snaps)
    c1, c2 = st.columns(2)
    if loss is not None:
        c1.altair_chart(loss, width="stretch")
    c2.altair_chart(accuracy, width="stretch")
    if not r.layers:
        st.info("No DeepEyes statistics yet: the first window closes at the second snapshot." if running else
                "This run has no DeepEyes statistics (an import, or trained without the monitor).")
    else:
        stable = stable_layers(r.layers, threshold, int(last))
        st.subheader("Perplexity histograms")
        st.caption("Per snapshot window, the perplexity of the sampled activation vectors (1 = one filter fires, "
                   "K = all fire alike). " + " · ".join(f"**{n}** {'stable' if s else 'changing'}"
                                                        for n, s in stable.items()))
        st.vega_lite_chart(cached.chart_spec(vd.change_chart, r.layers, r.windows, threshold), width="stretch")
        layer = st.selectbox("Layer", list(r.layers),
                             format_func=lambda n: f"{n} ({'stable' if stable[n] else 'changing'})")
        a, b = r.layers[layer], st.columns(2)
        hist, edges = a["perplexity_histogram"], a["perplexity_bin_edges"][-1]
        b[0].vega_lite_chart(cached.chart_spec(vd.perplexity_heatmap, hist, r.windows, edges), width="stretch")
        b[1].caption("Learning histogram: change from the previous window — blue gained, red lost; blue moving left "
                     "means the filters specialise.")
        b[1].vega_lite_chart(cached.chart_spec(vd.learning_heatmap, hist, r.windows, edges), width="stretch")
    if not snaps:
        return
    st.subheader("Snapshot")
    iteration = st.select_slider("Iteration", [s["iteration"] for s in snaps], value=snaps[-1]["iteration"],
                                 key=f"snapshot_{run_id}_{len(snaps)}" if running else f"snapshot_{run_id}",
                                 help="The weights kept at that iteration; the DeepEyes window is the training since "
                                      "the previous snapshot. While the run trains, a new snapshot moves the slider "
                                      "to it.")
    if r.layers:
        w = r.window_at(iteration)
        if w is None:
            st.caption(f"No window closes at iteration {iteration} (the first closes at {r.windows[0]}).")
        else:
            flags = filter_flags(a["max_activation"][w], a["activation_frequency"][w], always)
            sort_by = st.radio("Sort filters by", ["max activation", "frequency"], horizontal=True)
            st.caption(f"Activation heatmap of {layer}, window up to iteration {iteration}: ✕ dead (never active), "
                       f"● always on (frequency ≥ {always:.0%}). Hover a cell for its values.")
            st.vega_lite_chart(cached.chart_spec(vd.activation_heatmap, a["max_activation"][w],
                                                 a["activation_frequency"][w], flags, sort_by))
        if not running:
            end = filter_flags(a["max_activation"][-1], a["activation_frequency"][-1], always)
            monitor.send_flags(v, run_id, layer, end, int(r.windows[-1]))
    monitor.snapshot_grid(v, run, iteration, layer if r.layers else None)


live()
monitor.import_expander(v)
