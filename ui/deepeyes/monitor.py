"""Sections of the Training monitor page that call Streamlit: the snapshot's AOM grid, the
hand-off of flagged filters to the kernel selection, and the import of checkpoint files."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

import aomcore
from aomcore.store import CHECKPOINT_SUFFIXES, stage_checkpoints
from ui import cached
from ui.jobs import RECENT_SECONDS
from ui.state import View, reported, submit


def version_of_run(v: View, run_id: str) -> dict | None:
    """The version a run made (None for an import, or a run still training)."""
    return next((r for r in v.versions.values() if r.get("run") == run_id), None)


def send_flags(v: View, run_id: str, layer: str, flags: dict, iteration: int) -> None:
    """Offer to store 'all kernels minus the flagged ones' as the kept selection of the run's version."""
    made = version_of_run(v, run_id)
    flagged = [int(k) for k in np.flatnonzero(flags["flagged"])]
    k = len(flags["flagged"])
    if made is None:
        st.caption("This run made no version of the workspace (an import, or still training): there is no "
                   "version whose kernel selection the flags could go to.")
        return
    if layer == list(made["metrics"]["kernels"])[-1]:
        st.caption(f"{layer} is the output layer (one neuron per class): not editable.")
        return
    keep = [i for i in range(k) if i not in set(flagged)]
    st.caption(f"At the end of training (window up to iteration {iteration}) {layer} has {int(flags['dead'].sum())} "
               f"dead and {int(flags['always_on'].sum())} always-on filter(s): "
               + (", ".join(f"k{i}" for i in flagged[:24]) or "none")
               + (f" and {len(flagged) - 24} more" if len(flagged) > 24 else "")
               + f". The kept selection goes to **v{made['id']}**, the version this run made; **Edit & retrain** "
                 f"pre-fills its removal from it when v{made['id']} is the current version.")
    if st.button(f"Send to the kernel selection of v{made['id']}: keep {len(keep)} of {k}", disabled=not flagged,
                 key=f"send_{run_id}_{layer}"):
        v.ws.set_selection(made["digest"], layer, keep)
        st.toast(f"Kernel selection of v{made['id']}, {layer}: keep {len(keep)} of {k}.")


def snapshot_grid(v: View, run: dict, iteration: int, layer: str | None) -> None:
    """The AOM grid of the run's snapshot at ``iteration`` (computed by a ``maps_snapshot`` job)."""
    split = st.radio("Images", ["test", "train"], horizontal=True, key="snapshot_split",
                     help="The split the snapshot's maps count over (the paper uses train; test is faster).")
    found = [r for r in v.ws.results("snapshot_maps")
             if r["run"] == run["id"] and r["iteration"] == iteration and r["split"] == split]
    if not found:
        busy = bool(v.active_jobs(("maps_snapshot",)))
        if st.button(f"Compute the AOM grid of iteration {iteration}", disabled=busy, key="snapshot_maps"):
            if submit(v.ws, "maps_snapshot", {"run": run["id"], "iteration": iteration, "layers": None,
                                              "split": split, "threshold": 0.0}):
                st.rerun()
        return
    info = found[-1]
    maps = cached.workspace_maps(str(v.ws.path), info["key"])
    name = layer if layer in maps else st.selectbox("Layer of the grid", list(maps), key="snapshot_layer")
    m = maps[name]
    n_groups = aomcore.default_n_groups(m.odm, m.aom)
    grid = cached.views(info["key"], name, n_groups, m)
    st.caption(f"AOM grid of {name} at iteration {iteration} over {info['n_images']:,} {split} images "
               f"(kernels in cluster order, red boxes = groups; {int(grid['flags']['dead'].sum())} dead, "
               f"{int(grid['flags']['always_on'].sum())} always on by occurrence over these images — the heatmap above "
               f"flags by DeepEyes' μ and frequency over training mini-batches). Colour: 0 (dark purple) → 1 (yellow).")
    st.image(cached.grid_image(info["key"], name, n_groups, "aom", "occurrence", 28, m), width="content")


def import_expander(v: View, expanded: bool = False) -> None:
    """Upload checkpoint files of a training made elsewhere and record them as a run of the workspace."""
    with st.expander("Import a run from checkpoint files", expanded=expanded):
        st.caption("State_dict checkpoints (.pt/.pth, read without running code, or .safetensors), one per "
                   "iteration; ordered by the number in each file name (iter20 before iter100). A file that does "
                   "not fit the architecture is named and left out; the rest is kept.")
        files = st.file_uploader("Checkpoints", type=[s.lstrip(".") for s in CHECKPOINT_SUFFIXES],
                                 accept_multiple_files=True, key="import_files")
        c1, c2 = st.columns(2)
        arch = c1.text_input("Architecture", v.state.get("arch") or "", key="import_arch",
                             help="zoo:NAME or torchvision:NAME, as on Model & data.")
        edited = {f"as v{r['id']} ({len(r['edits'])} edit(s))": r["edits"] for r in v.versions.values() if r["edits"]}
        edits_from = c2.selectbox("Edits", ["none", *edited], key="import_edits",
                                  help="Checkpoints of an edited model: rebuild the architecture with a version's "
                                       "edit list first.")
        if st.button("Import", disabled=not files or not arch, key="import_run"):
            with reported():
                folder = stage_checkpoints(v.ws, [(f.name, f.getvalue()) for f in files])
                if submit(v.ws, "run_import", {"folder": folder, "arch": arch.strip(),
                                               "edits": edited.get(edits_from, [])}) is not None:
                    st.rerun()


def imported_report(v: View) -> None:
    """After a recent import job: say what was kept and what was left out (once a tab), and show the new run."""
    job = v.last_job("run_import")
    if job is None or job["status"] != "done" or time.time() - job.get("finished", 0) > RECENT_SECONDS:
        return
    seen = st.session_state.setdefault("monitor_imports_seen", [])
    if job["id"] in seen:
        return
    seen.append(job["id"])
    done = job["result"]
    st.session_state["monitor_run"] = done["run"]  # before the run picker is drawn
    st.success(f"Imported {done['snapshots']} snapshot(s) as run {done['run']}.")
    for name, reason in done["skipped"]:
        st.warning(f"Left out {name}: {reason}")
