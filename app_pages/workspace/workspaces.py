"""Workspaces: open, create, rename, delete, export and import the folders that hold analyses."""

import time

import pandas as pd
import streamlit as st

import aomcore
from aomcore.base.policy import current_policy
from ui import views
from ui.datasets import new_workspace_form
from ui.state import cli_workspace, current_user, reported, signed_in_mode, switch_to, view

st.title("Workspaces")
st.caption("A workspace is a folder holding one analysis: the dataset, every version of the model, training runs, "
           "maps and results, and the jobs. The URL names it, so a reload, a second tab or a restart comes back "
           "to it. The CLI writes the same folders (`--workspace DIR`).")
policy = current_policy()
user = current_user()
try:
    v = view()
except aomcore.InputError:
    v = None

if v is not None:
    st.subheader(f"Open: {views.plain(v.state['name'])}")
    st.caption(f"{views.plain(v.ws.path)} · dataset {views.plain(v.dataset)} · {len(v.versions)} version(s) · "
               f"{len(v.jobs)} job(s)")
    c1, c2 = st.columns([2, 1])
    name = c1.text_input("Name", v.state["name"], key=f"rename_{v.ws.id}", disabled=v.ws.read_only)
    if name.strip() and name != v.state["name"]:
        v.ws.update(name=name.strip())
        st.rerun()
    if signed_in_mode() and not v.ws.read_only:
        s1, s2 = st.columns([2, 1])
        grantee = s1.text_input("Share read-only with (their sign-in e-mail)", key="grantee")
        if s2.button("Share", disabled=not grantee.strip(), key="share"):
            with reported():
                v.ws.grant(grantee)
                st.toast(f"Shared read-only with {grantee.strip()}")
        grants = v.state.get("grants", [])
        if grants:
            st.caption("Shared read-only with: " + ", ".join(views.plain(g["user"]) for g in grants))
    if c2.button("Export as zip", help="Versions, runs and results; opens on another machine with Import."):
        c2.download_button("Download the zip", aomcore.export_zip(v.ws), f"aomscope-{v.ws.id}.zip",
                           "application/zip", type="primary")

if signed_in_mode():
    listing = aomcore.list_workspaces(aomcore.default_root(), owner=user, shared_with=user)
else:
    listing = [] if policy.shared else aomcore.list_workspaces(aomcore.default_root())
if cli_workspace() is not None and all(w.path != cli_workspace() for w in listing):
    listing.insert(0, aomcore.Workspace(cli_workspace()))
if listing:
    st.subheader("Your workspaces" if user else "Workspaces")
    rows = []
    for w in listing:
        s = w.state()
        rows.append({"name": s["name"] + (" (read-only)" if w.read_only else ""), "dataset": s["dataset"]["spec"],
                     "model": s.get("arch") or "—",
                     "versions": len(w.versions()), "created": time.strftime("%Y-%m-%d %H:%M",
                                                                              time.localtime(s.get("created", 0))),
                     "id": w.id})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    ids = [w.id for w in listing]
    names = {w.id: f"{r['name']} · {r['dataset']} · {r['model']} · {r['versions']} version(s)"
             for w, r in zip(listing, rows, strict=True)}
    c1, c2, c3 = st.columns([3, 1, 1])
    picked = c1.selectbox("Workspace", ids, format_func=names.get,
                          index=ids.index(v.ws.id) if v is not None and v.ws.id in ids else 0)
    if c2.button("Open", type="primary", disabled=v is not None and picked == v.ws.id):
        switch_to(next(w for w in listing if w.id == picked))
        st.switch_page("app_pages/workspace/model_data.py")
    with c3.popover("Delete…", disabled=next(w for w in listing if w.id == picked).read_only):
        st.write(f"Delete **{views.plain(names[picked])}** and everything in it? This cannot be undone.")
        if st.button("Delete for good", type="primary", key=f"delete_{picked}"):
            target = next(w for w in listing if w.id == picked)
            if v is not None and target.id == v.ws.id:
                st.session_state.pop("ws_id", None)
                st.query_params.clear()
            with reported():
                target.delete()
                st.rerun()
elif policy.shared:
    st.info("Shared server: workspaces are not listed. Keep this page's URL to come back to your workspace; "
            "anyone with the URL can open it.")

st.subheader("New workspace")
st.caption("One dataset per workspace; its model, versions and results follow. The workspace open now is kept.")
new_workspace_form((v.state["dataset"].get("data_root") if v is not None else None) or "")

st.subheader("Import")
upload = st.file_uploader("A workspace zip (from Export, or `python -m aomcore workspace export`)", type=["zip"],
                          key="import_zip")
names_code = st.session_state.get("import_names_code")  # an architecture file the zip names, to confirm
if upload is not None and names_code:
    st.warning(f"This workspace builds its model from the file **{names_code}**: opening it runs that code on "
               "this server. Import it only if you trust the file.")
trusted = bool(names_code) and upload is not None and st.checkbox(f"I trust {names_code}", key="import_trust")
if upload is not None and st.button("Import", key="do_import"):
    with reported():
        data = views.check_upload(upload.getvalue(), upload.name, "a workspace zip")
        if user is not None:
            policy.check_workspace_count(len(aomcore.list_workspaces(aomcore.default_root(), owner=user)))
        left = None
        if policy.max_disk_gb is not None:  # the import counts against the owner's quota
            spaces = aomcore.list_workspaces(aomcore.default_root(), owner=user) if user is not None else []
            left = max(0, int(policy.max_disk_gb * 2**30) - sum(w.disk_usage() for w in spaces))
        try:
            imported = aomcore.import_zip(data, aomcore.default_root(), owner=user, trust_code=trusted,
                                          max_bytes=left)
        except aomcore.InputError as exc:
            if "--trust-code" in str(exc):  # in shared mode only an allow-listed file gets this far
                st.session_state["import_names_code"] = exc.found
                st.rerun()
            raise
        st.session_state.pop("import_names_code", None)
        switch_to(imported)
        st.switch_page("app_pages/workspace/model_data.py")
