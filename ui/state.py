"""The session's workspace: what this user has loaded and computed.

Everything here lives in ``st.session_state`` (one browser session), so users of a
shared deployment never see each other's models or results. Shared caches only hold
content-keyed, read-only objects (see :mod:`ui.cached`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import streamlit as st

import aomcore
from aomcore import ImageDataset, LayerMaps, LoadedModel
from aomcore.policy import current_policy
from ui import cached

DEFAULT_DATASET = "digits"


@dataclass
class Workspace:
    """One session's state.

    Attributes
    ----------
    dataset : str
        Dataset spec (``digits``, ``mnist``, ``npz:PATH``, …).
    data_root : str or None
        Folder for torchvision-layout data.
    prep : tuple
        (mean, std, channels, resize) — see :class:`aomcore.Preprocessing`.
    model : LoadedModel or None
        The current model (read-only when it came from the shared zoo cache).
    maps : dict of layer name to LayerMaps
        The last maps computed for this model and dataset.
    maps_info : dict
        How the maps were computed: key, split, threshold, layers, seconds, from_cache.
    selection : dict of layer name to list of int
        Kernels to keep, per layer, chosen on the Select page.
    history : VersionHistory or None
        The edit/retrain versions of the model (v0 = the model as loaded).
    job : RetrainJob or None
        The last background retraining.
    """

    dataset: str = DEFAULT_DATASET
    data_root: str | None = field(default_factory=lambda: os.environ.get("AOMSCOPE_DATA_ROOT"))
    prep: tuple = (None, None, None, None)
    model: LoadedModel | None = None
    maps: dict[str, LayerMaps] = field(default_factory=dict)
    maps_info: dict = field(default_factory=dict)
    selection: dict[str, list[int]] = field(default_factory=dict)
    history: aomcore.VersionHistory | None = None
    job: object | None = None

    def split(self, split: str) -> ImageDataset:
        return cached.dataset(self.dataset, split, self.data_root, self.prep)

    def set_model(self, model: LoadedModel) -> None:
        """Make ``model`` current; maps, selections and versions of the previous model are dropped."""
        self.model = model
        self.maps, self.maps_info, self.selection = {}, {}, {}
        self.history, self.job = None, None

    def set_dataset(self, spec: str, data_root: str | None, prep: tuple) -> None:
        self.dataset, self.data_root, self.prep = spec, data_root, prep
        self.set_model(None)

    def versions(self) -> aomcore.VersionHistory:
        """The version history, started (v0 = the current model) on first use."""
        if self.history is None:
            v0 = aomcore.initial_version(self.model.model, self.split("test"), note=f"loaded: {self.model.source}")
            self.history = aomcore.VersionHistory(v0, max_versions=current_policy().max_versions)
        return self.history

    def use_version(self, version: aomcore.Version) -> None:
        """Make a version the current model; the maps and selections of the previous one are dropped."""
        self.model = LoadedModel(arch=self.model.arch, model=version.model, digest=version.digest,
                                 source=f"v{version.id}: {version.note}")
        self.maps, self.maps_info, self.selection = {}, {}, {}

    @property
    def edits(self) -> list:
        return self.history.current.edits if self.history else []


def default_config(spec: str) -> tuple:
    cfg = aomcore.default_train_config(spec)
    return (cfg.epochs, cfg.lr, cfg.batch_size, cfg.optimizer, cfg.seed)


def workspace() -> Workspace:
    """This session's workspace; on first use, the ``digits`` default with its net trained."""
    if "workspace" not in st.session_state:
        st.session_state["workspace"] = Workspace()
    ws: Workspace = st.session_state["workspace"]
    if ws.model is None and ws.dataset == DEFAULT_DATASET:
        ws.model = cached.zoo_model("zoo:digits_net", DEFAULT_DATASET, None, ws.prep, default_config(DEFAULT_DATASET))
    from ui.jobs import collect

    collect(ws)
    return ws


def test_accuracy(ws: Workspace) -> dict | None:
    """Cached test-split evaluation of the current model, or None without one."""
    if ws.model is None:
        return None
    test = ws.split("test")
    return cached.evaluation(ws.model.digest, test.digest, ws.model, test)


@contextmanager
def reported() -> Iterator[None]:
    """Show an :class:`aomcore.InputError` raised by a user action as a message, not a traceback.

    Whatever the action would have changed stays as it was: actions only assign to the
    workspace after their last call that can fail.
    """
    try:
        yield
    except aomcore.InputError as exc:
        st.error(str(exc), icon=":material/error:")


def require_model(ws: Workspace) -> None:
    """The empty state of pages that need a model: say what to do first, then stop the page."""
    if ws.model is None:
        st.info("Load or train a model on **Model & data** first.")
        st.page_link("pages/model_data.py", label="Model & data", icon=":material/database:")
        st.stop()


def require_maps(ws: Workspace) -> None:
    """The empty state of pages that need maps."""
    require_model(ws)
    if not ws.maps:
        st.info("No maps yet: compute them on **Compute maps**.")
        st.page_link("pages/compute_maps.py", label="Compute maps", icon=":material/calculate:")
        st.stop()
