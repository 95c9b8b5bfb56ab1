"""Which workspace a tab shows, and a read-only view of it for one script run.

The workspace on disk (:mod:`aomcore.store.workspace`) is the truth. A tab keeps only the
workspace's id, in the URL (``?ws=<id>``), so a reload, a second tab or a restarted
server comes back to the same place with every version, result and running job. Long
work is submitted as a job (:mod:`aomcore.jobs.engine`) to the server's worker pool
(:func:`ui.cached.runner`); pages read, submit or render.

Which workspace opens:

1. ``?ws=<id>`` in the URL (an id under ``$AOMSCOPE_HOME/workspaces``, or the folder
   given by ``streamlit run app.py -- --workspace DIR``);
2. else the ``--workspace DIR`` folder;
3. else, in local mode, the newest workspace (a new ``digits`` one on the first run);
   in shared mode, a new workspace only this tab's URL reaches (nothing is listed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import streamlit as st

import aomcore
from aomcore import ImageDataset, InputError, LayerMaps, LoadedModel, kernel_list, kernel_names
from aomcore.base.policy import current_policy
from aomcore.store import ACTIVE, Workspace, default_root, list_jobs, list_workspaces, open_by_id
from ui import cached

DEFAULT_DATASET = "digits"


def cli_workspace() -> Path | None:
    """The folder of ``streamlit run app.py -- --workspace DIR``, if given (local mode only)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workspace", default=None)
    args, _ = parser.parse_known_args(sys.argv[1:])
    if args.workspace is None or current_policy().shared:
        return None
    return Path(args.workspace).expanduser().resolve()


def _open(ws_id: str) -> Workspace:
    pinned = cli_workspace()
    if pinned is not None and pinned.name == ws_id and (pinned / "workspace.json").is_file():
        return Workspace(pinned)
    return open_by_id(default_root(), ws_id)


def auth_configured() -> bool:
    """Whether Streamlit's native sign-in is configured (``[auth]`` in secrets.toml)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file
        return False


def signed_in_mode() -> bool:
    """Shared server with sign-in: workspaces belong to users."""
    return current_policy().shared and auth_configured()


def sign_in_gate() -> None:
    """On a shared server with sign-in, stop the page with a sign-in button until the user is signed in."""
    if signed_in_mode() and current_user() is None:
        st.title("AOMscope")
        st.write("This server keeps each user's workspaces private. Sign in to see yours.")
        st.button("Sign in", type="primary", on_click=st.login, key="sign_in")
        st.stop()


def owned_workspaces(user: str | None) -> list[Workspace]:
    return list_workspaces(default_root(), owner=user)


def new_workspace(dataset: str = DEFAULT_DATASET, data_root: str | None = None, prep=None,
                  name: str | None = None) -> Workspace:
    """Create a workspace for this user (owned by the signed-in user, if any).

    Raises
    ------
    InputError
        The user's workspace quota is reached (shared mode).
    """
    user = current_user()
    if user is not None:
        current_policy().check_workspace_count(len(owned_workspaces(user)))
    return Workspace.create(default_root(), name=name or dataset, dataset=dataset, data_root=data_root,
                            prep=prep, owner=user)


def current_user() -> str | None:
    """The signed-in user's e-mail or subject (Streamlit's native auth), or None."""
    try:
        user = st.user
        if getattr(user, "is_logged_in", False):
            return str(user.get("email") or user.get("sub"))
    except Exception:  # no auth configured
        return None
    return None


def switch_to(ws: Workspace) -> None:
    """Show ``ws`` in this tab (its id goes into the URL)."""
    st.session_state["ws_id"] = ws.id
    st.query_params["ws"] = ws.id


def flash(message: str) -> None:
    """Say ``message`` (markdown) once, on the next page this tab draws, e.g. after ``st.switch_page``."""
    st.session_state["flash"] = message


def show_flash() -> None:
    """Draw and forget the message :func:`flash` left (called once per run, above the page)."""
    message = st.session_state.pop("flash", None)
    if message:
        st.success(message, icon=":material/check_circle:")


def visit(v: View, url_path: str) -> None:
    """Remember that this tab opened the page ``url_path`` while ``v``'s current version was shown."""
    if v.version is not None:
        st.session_state.setdefault("visited", {}).setdefault(v.version["digest"], set()).add(url_path)


def focus_on(layer: str) -> None:
    """Remember that this tab is looking at ``layer`` (Explore, Select kernels)."""
    st.session_state["layer_in_focus"] = layer


def layer_in_focus(layers: list[str]) -> int:
    """The position in ``layers`` of the layer this tab last looked at (:func:`focus_on`; 0 if none of
    them), so that Explore, Select kernels and Edit & retrain open on the layer the user works on."""
    focus = st.session_state.get("layer_in_focus")
    return layers.index(focus) if focus in layers else 0


def visited(v: View) -> set[str]:
    """The pages (url paths) this tab opened while ``v``'s current version was shown."""
    return st.session_state.get("visited", {}).get(v.version["digest"], set()) if v.version is not None else set()


def _checked(ws: Workspace) -> Workspace:
    """``ws`` opened as the signed-in user may: fully, read-only (a grant), or refused."""
    if not signed_in_mode():
        return ws  # local, or a shared server without sign-in: the unguessable id is the capability
    access = ws.access(current_user())
    if access is None:
        raise InputError("this workspace belongs to another user", expected="one of your workspaces or one "
                         "shared with you", found=ws.id)
    return Workspace(ws.path, read_only=access == "read")


def current_workspace() -> Workspace:
    """The workspace this tab shows (see the module docstring); its id is put in the URL.

    Raises
    ------
    InputError
        A malformed or unknown id, or (signed in) a workspace of another user.
    """
    ws_id = st.query_params.get("ws") or st.session_state.get("ws_id")
    ws = None
    if ws_id:
        ws = _checked(_open(ws_id))
    elif cli_workspace() is not None:
        ws = Workspace(cli_workspace())
    elif signed_in_mode():
        found = owned_workspaces(current_user())
        ws = found[0] if found else None
    elif not current_policy().shared:
        found = list_workspaces(default_root())
        ws = found[0] if found else None
    if ws is None:
        ws = new_workspace()
    if st.query_params.get("ws") != ws.id:
        switch_to(ws)
    st.session_state["ws_id"] = ws.id
    return ws


class View:
    """What one script run reads from the workspace (each property read once per run).

    Attributes
    ----------
    ws : Workspace
    state : dict
        ``workspace.json`` as read at the start of the run.
    """

    def __init__(self, ws: Workspace):
        self.ws = ws
        # Jobs before the state: a job records its result and only then its status, so a job read
        # here as done has its result in the state read next, and one read as running is polled.
        # (State first, a job ending in between showed neither its result nor a progress bar.)
        self.jobs = list_jobs(ws)
        self.state = ws.state()

    @property
    def dataset(self) -> str:
        return self.state["dataset"]["spec"]

    def split(self, split: str) -> ImageDataset:
        d = self.state["dataset"]
        prep = self.ws.preprocessing(self.state)
        return cached.dataset(d["spec"], split, d.get("data_root"),
                              prep.key())

    @cached_property
    def versions(self) -> dict[int, dict]:
        return self.ws.versions()

    @property
    def version_id(self) -> int | None:
        return self.state.get("current_version")

    @property
    def version(self) -> dict | None:
        return self.versions.get(self.version_id) if self.version_id is not None else None

    @cached_property
    def model(self) -> LoadedModel | None:
        """The current version's model (shared read-only by digest), or None before the first — or when
        it cannot be built (a missing architecture file, weights that do not fit): then
        :attr:`model_problem` says why, and no page shows a traceback."""
        v = self.version
        if v is None:
            return None
        try:
            return cached.version_model(str(self.ws.path), v["id"], v["digest"])
        except InputError as exc:
            self.model_problem = f"v{v['id']} cannot be loaded: {exc}"
            return None

    model_problem: str | None = None

    @cached_property
    def maps_info(self) -> dict:
        """The newest maps result of the current version ({} when none)."""
        if self.version is None:
            return {}
        found = self.ws.results("maps", self.version["digest"])
        return found[-1] if found else {}

    @cached_property
    def maps(self) -> dict[str, LayerMaps]:
        info = self.maps_info
        return cached.workspace_maps(str(self.ws.path), info["key"]) if info else {}

    def kernel_names(self, layer: str, k: int) -> list[str]:
        """The names of ``layer``'s ``k`` kernels in the current version: ``k5`` for kernel 5 of the
        first version wherever it sits now, ``k16+`` for a kernel an edit added (:mod:`aomcore.base.lineage`)."""
        return kernel_names(self.model.lineage if self.model else None, layer, k)

    def kernel_list(self, layer: str, k: int, indices) -> str:
        """Kernels ``indices`` of ``layer`` for a table cell: ranges (``0-3,5``) on a first version, their
        names (``k1, k4, k16+``) after an edit."""
        return kernel_list(self.kernel_names(layer, k), indices)

    @property
    def selection(self) -> dict[str, list[int]]:
        return self.ws.selection(self.version["digest"]) if self.version else {}

    def active_jobs(self, kinds: tuple[str, ...] | None = None) -> list[dict]:
        return [j for j in self.jobs if j["status"] in ACTIVE and (kinds is None or j["kind"] in kinds)]

    def last_job(self, kind: str) -> dict | None:
        found = [j for j in self.jobs if j["kind"] == kind]
        return found[-1] if found else None


def default_run(runs: list[dict]) -> str:
    """The run a page opens on: one running, else the newest that is not a retrain (a training run or
    an import: an edit's fine-tune is short, with few snapshots), else the newest. ``runs`` are
    :func:`aomcore.list_runs` records (ids sort by start time)."""
    newest = sorted(runs, key=lambda r: r["id"], reverse=True)
    pick = (next((r for r in newest if r.get("status") == "running"), None)
            or next((r for r in newest if r.get("kind") != "retrain"), None) or newest[0])
    return pick["id"]


def view() -> View:
    """This run's view of the tab's workspace."""
    return View(current_workspace())


def submit(ws: Workspace, kind: str, params: dict) -> dict | None:
    """Queue a job for ``ws``; a refusal (read-only, a quota) is shown as a message and returns None.

    Shared mode: at most one queued or running job per user (signed in) or per workspace,
    and no new job once the user's (or the workspace's) disk quota is used.
    """
    user = current_user()
    policy = current_policy()
    with reported():
        ws.check_writable()
        if policy.shared:
            spaces = owned_workspaces(user) if user is not None else [ws]
            policy.check_disk(sum(w.disk_usage() for w in spaces))
        return cached.runner().submit(ws, kind, params, user=user, per_owner_limit=1 if policy.shared else None,
                                      owner_key=user or str(ws.path))
    return None


def test_accuracy(v: View) -> dict | None:
    """The current version's recorded test accuracy overall and per class, or None."""
    return v.version["metrics"] if v.version else None


@contextmanager
def reported() -> Iterator[None]:
    """Show an :class:`aomcore.InputError` raised by a user action as a message, not a traceback.

    Whatever the action would have changed stays as it was: actions only write to the
    workspace after their last call that can fail.
    """
    try:
        yield
    except InputError as exc:
        st.error(str(exc), icon=":material/error:")


def require_model(v: View) -> None:
    """The empty state of pages that need a model: say what to do first, then stop the page."""
    if v.model is None and v.model_problem:
        st.error(v.model_problem, icon=":material/error:")
        st.stop()
    if v.model is None:
        st.info("This workspace has no model yet: train one or load weights on **Model & data**.")
        st.page_link("app_pages/workspace/model_data.py", label="Model & data", icon=":material/database:")
        st.stop()


def require_maps(v: View) -> None:
    """The empty state of pages that need maps."""
    require_model(v)
    if not v.maps:
        st.info(f"No maps yet for v{v.version_id}: compute them on **Compute maps**.")
        st.page_link("app_pages/aom/compute_maps.py", label="Compute maps", icon=":material/calculate:")
        st.stop()


def default_config(spec: str) -> aomcore.TrainConfig:
    return aomcore.default_train_config(spec)
