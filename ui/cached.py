"""Every Streamlit cache of the app, in one place.

Policy:

* ``st.cache_resource`` only for objects that are the same for every user and never
  mutated: dataset splits, a workspace version's model (keyed by its weights' digest),
  stored maps (keyed by their content key) and the worker pool. Callers treat them as
  read-only; every job works on its own copy in a worker process.
* ``st.cache_data`` for results derived from a model: every such function takes the
  model's sha256 **digest as a real argument** (never an underscore argument, which
  Streamlit leaves out of the key), so two users with different models never share an
  entry. The model object itself is passed underscored alongside its digest.
* ``st.cache_data`` for charts too (:func:`chart_spec`): a chart's Vega-Lite spec, keyed by
  the function that builds it and that function's arguments (the data the chart shows).
* Behind the in-memory caches, the workspace on disk keeps versions and results across
  restarts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import streamlit as st
from streamlit.elements import vega_charts

import aomcore
from aomcore import ImageDataset, LoadedModel, Preprocessing


@st.cache_resource(max_entries=8, show_spinner="Loading the dataset…")
def dataset(spec: str, split: str, data_root: str | None, prep: tuple) -> ImageDataset:
    """One split, shared read-only by every session (keyed by spec, root, preprocessing)."""
    return aomcore.load_dataset(spec, split, data_root or None, Preprocessing.from_key(prep))


@st.cache_resource(show_spinner=False)
def runner() -> aomcore.JobRunner:
    """The server's one worker pool: every job of every session and workspace queues here."""
    return aomcore.JobRunner()


@st.cache_resource(max_entries=16, show_spinner="Loading the model…")
def version_model(workspace: str, version_id: int, digest: str) -> LoadedModel:
    """A workspace version's model (:meth:`aomcore.Workspace.loaded`), shared read-only (keyed by
    its folder, id and weights digest)."""
    return aomcore.Workspace(workspace).loaded(version_id)


@st.cache_resource(max_entries=16, show_spinner="Loading the maps…")
def workspace_maps(workspace: str, key: str) -> dict[str, aomcore.LayerMaps]:
    """Maps stored in a workspace's content-keyed results, shared read-only."""
    return aomcore.load_cached_maps(aomcore.Workspace(workspace).results_cache, key)


def chart_spec(build: Callable, *args, **kwargs) -> dict:
    """The Vega-Lite spec of the Altair chart ``build(*args, **kwargs)``, for ``st.vega_lite_chart``.

    The same spec ``st.altair_chart`` would send, made once per arguments: building an Altair
    chart and converting it validates it against the Vega-Lite schema (100–150 ms for the
    Versions chart), and Streamlit converts under one lock shared by every session, so on a
    shared server every rerun of every page with a chart waited its turn. ``build`` is a
    module-level function of ``ui`` returning one chart; its arguments must be hashable by
    ``st.cache_data`` (arrays, frames, lists, dicts, strings, numbers).
    """
    return _chart_spec(build.__module__, build.__qualname__, args, kwargs)


@st.cache_data(max_entries=256, show_spinner=False)
def _chart_spec(module: str, name: str, args: tuple, kwargs: dict) -> dict:
    chart = getattr(importlib.import_module(module), name)(*args, **kwargs)
    return vega_charts._convert_altair_to_vega_lite_spec(chart)  # what st.altair_chart sends


@st.cache_data(max_entries=32, show_spinner=False)
def layer_table(digest: str, input_shape: tuple, include_all: bool, _loaded: LoadedModel) -> list[dict]:
    """The model's analysable layers as rows (name, type, kind, output shape, kernels, params, tap)."""
    return [layer.__dict__ | {"output_shape": str(layer.output_shape)}
            for layer in aomcore.list_layers(_loaded.model, input_shape, include_all=include_all)]


@st.cache_data(max_entries=32, show_spinner=False)
def unanalysable(digest: str, input_shape: tuple, _loaded: LoadedModel) -> list[tuple[str, str]]:
    """The model's conv and FC modules that cannot be analysed, with why (:func:`aomcore.unanalysable_layers`)."""
    return aomcore.unanalysable_layers(_loaded.model, input_shape)


@st.cache_data(max_entries=64, show_spinner=False)
def views(maps_key: str, layer: str, n_groups: int, _maps: aomcore.LayerMaps) -> dict:
    """Ordering, flags and the ODM image for one layer at one cut (keyed by the maps' key); grids: grid_image."""
    m = _maps
    ordering = aomcore.KernelOrdering(n_groups=n_groups).fit(m.odm)
    flags = aomcore.kernel_flags(m.aom)
    return {
        "order": ordering.order_, "groups": ordering.labels_, "flags": flags,
        "members": aomcore.group_members(ordering.order_, ordering.labels_),
        "odm_image": aomcore.matrix_image(m.odm, order=ordering.order_, cell=max(2, min(24, 480 // m.num_kernels)),
                                          groups=ordering.labels_),
        "mean_occurrence": m.aom.mean(axis=(2, 3)),
        "class_selectivity": m.class_selectivity,
        "selectivity": m.selectivity,
    }


@st.cache_data(max_entries=16, show_spinner=False)
def maps_npz(maps_key: str, meta_json: str, _maps: dict, _lineage: aomcore.Lineage | None,
             lineage_key: str = "") -> bytes:
    """The CLI's ``maps.npz`` for a download button (``lineage_key``: the lineage's JSON, in the key)."""
    import json

    return aomcore.maps_npz_bytes(_maps, json.loads(meta_json), _lineage)


@st.cache_data(max_entries=8, show_spinner="Exporting with torch.export…")
def export_program(digest: str, input_shape: tuple, _model) -> bytes:
    """``torch.export`` program of a version, keyed by its weights' digest."""
    return aomcore.export_program(_model, input_shape)


@st.cache_data(max_entries=32, show_spinner=False)
def edit_preview(digest: str, edit: dict, input_shape: tuple, _model) -> dict:
    """Kernels, parameters and FLOPs before/after an edit, keyed by the weights' digest and the edit."""
    return aomcore.preview_edit(_model, aomcore.Edit.from_dict(edit), input_shape)


@st.cache_data(max_entries=4, show_spinner="Serialising the weights…")
def state_dict_bytes(digest: str, fmt: str, _model) -> bytes:
    """A version's state_dict as ``.pt`` or ``.safetensors`` bytes, keyed by its digest."""
    from ui.views import state_dict_bytes as to_bytes

    return to_bytes(_model, fmt)


# --- DeepEyes and Rauber et al. views (app_pages/deepeyes/filter_map.py, input_map.py, hidden_activity.py) ---
@st.cache_resource(max_entries=32, show_spinner=False)
def stored_arrays(workspace: str, kind: str, key: str) -> dict | None:
    """A content-keyed ``deepeyes``/``embed`` result's arrays, shared read-only (keyed by its content key)."""
    return aomcore.Workspace(workspace).results_cache.load_arrays(kind, key)


@st.cache_data(max_entries=32, show_spinner=False)
def display_images(data_digest: str, indices: tuple, _dataset):
    """Images at ``indices`` in [0, 1], (N, H, W, C), keyed by the dataset's content digest."""
    from aomcore.base.data import display_images as images

    return images(_dataset, list(indices))


@st.cache_data(max_entries=8, show_spinner="Drawing thumbnails…")
def thumbnails(data_digest: str, indices: tuple, _dataset) -> list[str]:
    """PNG data URLs of the images at ``indices`` (hover tooltips), keyed by the dataset's digest."""
    from ui.projections import thumbnail_url

    return [thumbnail_url(img, 56) for img in display_images(data_digest, indices, _dataset)]


@st.cache_data(max_entries=32, show_spinner=False)
def aom_rows(maps_key: str, layer: str, kernels: tuple, _maps: aomcore.LayerMaps):
    """The AOM grid of some kernels of a layer (rows in the given order), keyed by the maps' key."""
    import numpy as np

    return aomcore.map_grid_image(_maps.aom, "occurrence", order=np.asarray(kernels), classes=_maps.classes)


# --- training trails (Rauber et al. 2017) -------------------------------------------------
@st.cache_resource(max_entries=8, show_spinner="Loading the trails…")
def trails_arrays(workspace: str, key: str) -> dict | None:
    """A ``trails`` result of a workspace (content key), shared read-only; None when absent."""
    return aomcore.Workspace(workspace).results_cache.load_arrays("trails", key)


@st.cache_data(max_entries=32, show_spinner="Drawing the trails…")
def trails_png(workspace: str, key: str, bundled: bool, highlight: int | None, misclassified: bool) -> bytes:
    """Rendered trails as PNG, keyed by the result's content key and the drawing options: changing an
    option re-draws (and re-bundles) but never re-embeds."""
    from ui.rauber.trails import trails_png as draw

    return draw(trails_arrays(workspace, key), bundled, highlight, misclassified)


@st.cache_data(max_entries=8, show_spinner=False)
def trails_npz(workspace: str, key: str, meta_json: str) -> bytes:
    """The CLI's ``trails.npz`` of a stored result, for a download button (the same writer as the CLI)."""
    import json

    return aomcore.trails_npz_bytes(trails_arrays(workspace, key), json.loads(meta_json))


@st.cache_data(max_entries=8, show_spinner=False)
def sample_images(dataset_digest: str, index: tuple, _dataset: ImageDataset):
    """The sample's images scaled to [0, 1], (N, C, H, W) float32 (keyed by the split's digest and the indices)."""
    return _dataset.display(index).transpose(0, 3, 1, 2)  # the split's own scaling to [0, 1]


@st.cache_data(max_entries=8, show_spinner=False)
def examples(dataset_digest: str, prep: tuple, per_class: int, _dataset: ImageDataset):
    """``_dataset.examples(per_class)``: a folder decodes them, so once per split and preprocessing."""
    return _dataset.examples(per_class)


@st.cache_data(max_entries=16, show_spinner=False)
def run_layers(run_path: str, arch: str, edits_json: str, num_classes: int, input_shape: tuple) -> list[str]:
    """The conv/FC layer names of a run's architecture (with its edits)."""
    import json

    model = aomcore.rebuild(arch, num_classes, input_shape, json.loads(edits_json))
    return [la.name for la in aomcore.list_layers(model, input_shape)]


@st.cache_data(max_entries=64, show_spinner="Drawing the maps…")
def grid_image(maps_key: str, layer: str, n_groups: int, which: str, colormap: str, cell: int,
               _maps: aomcore.LayerMaps, rows: str | int = "kernels", names: tuple[str, ...] | None = None,
               order: tuple[int, ...] | None = None, columns: tuple[int, ...] | None = None):
    """The AOM or CSM grid of one layer as an image, at one cut, colormap and zoom (keyed by the maps' key).

    ``rows``: ``"kernels"`` (one row per kernel), ``"groups"`` (one row per group of the cut, its mean
    map) or a group's position in the grid (that group's kernels). ``order``: with ``"kernels"``, the
    rows in this order instead of the cut's (e.g. aligned to another version's), groups not outlined.
    ``columns``: the classes drawn, in this order (default: every class, in the dataset's order); the
    rows' order, groups and dead/always-on flags stay those of every class."""
    m = _maps
    ordering = aomcore.KernelOrdering(n_groups=n_groups).fit(m.odm)
    values = m.aom if which == "aom" else m.csm
    classes = m.classes
    if columns is not None:
        values, classes = values[:, list(columns)], [m.classes[c] for c in columns]
    if rows == "kernels":
        rows_order = ordering.order_ if order is None else np.asarray(order)
        return aomcore.map_grid_image(values, colormap, rows_order, ordering.labels_ if order is None else None,
                                      classes, aomcore.kernel_flags(m.aom), cell=cell,
                                      row_labels=None if names is None else [names[i] for i in rows_order])
    means, members = aomcore.group_means(values, ordering.order_, ordering.labels_)
    if rows == "groups":
        labels = [f"g{i + 1} ({len(k)})" for i, k in enumerate(members)]
        return aomcore.map_grid_image(means, colormap, classes=classes, cell=cell, row_labels=labels)
    return aomcore.map_grid_image(values, colormap, members[int(rows)], classes=classes,
                                  flags=aomcore.kernel_flags(m.aom), cell=cell,
                                  row_labels=None if names is None else [names[i] for i in members[int(rows)]])


@st.cache_data(max_entries=16, show_spinner="Summarising the layers…")
def overview(maps_key: str, cuts_json: str, hits_json: str, _maps: dict, _lineage: aomcore.Lineage | None,
             lineage_key: str = "") -> list[dict]:
    """:func:`aomcore.layer_overview` of stored maps at the workspace's cuts (keyed by the maps' key and
    ``lineage_key``, the lineage's JSON)."""
    import json

    return aomcore.layer_overview(_maps, n_groups=json.loads(cuts_json), neighborhood_hit=json.loads(hits_json)
                                  or None, lineage=_lineage)


@st.cache_data(max_entries=16, show_spinner="Scoring the kernels…")
def criteria_scores(digest: str, maps_key: str, layer: str, names: tuple, _model: LoadedModel,
                    _maps: aomcore.LayerMaps, input_shape: tuple) -> dict[str, list[float]]:
    """Each kernel's score by each criterion of ``names`` that applies to the layer (keyed by the weights'
    digest and the maps' key); a criterion that cannot apply (no BatchNorm after the layer) is left out."""
    return aomcore.layer_scores(_model.model, _maps, input_shape=input_shape, names=names, device="cpu")
