"""AOMscope's library: activation occurrence maps for CNN architecture tuning.

Implements Garcia, Falcão, Telea, da Silva, Tørresen, Comba, "A Methodology for Neural
Network Architectural Tuning Using Activation Occurrence Maps", IJCNN 2019. Never imports
streamlit; the dashboard (``app.py``, ``app_pages/``) and the CLI (``python -m aomcore``) sit
on top of it.
"""

__version__ = "0.1.0"

from .cache import DiskCache, default_cache_dir
from .data import DATASET_NAMES, ImageDataset, Preprocessing, default_data_root, load_dataset
from .deepeyes import (
    DeepEyesSeries,
    DeepEyesStats,
    LayerDeepEyes,
    TrainingMonitor,
    compute_deepeyes,
    deepeyes_over_snapshots,
    load_deepeyes_npz,
    perplexity,
    perplexity_bin_edges,
    save_deepeyes_npz,
    stack_deepeyes,
)
from .editing import EDIT_KINDS, Edit, apply_edit, apply_edits, build_edited, kernels_per_layer, load_edits, parse_edit
from .embedding import (
    EMBED_METHODS,
    embed,
    embedding_key,
    neighborhood_hit,
    neighborhood_hit_per_class,
    point_neighborhood_hits,
)
from .errors import InputError
from .experiment import selectivity_experiment, silenced, summarize_experiment
from .export import load_embedding_npz, load_maps_npz, maps_npz_bytes, save_embedding_npz, save_maps_npz
from .hooks import forward_hooks, forward_input_hooks, get_module
from .layers import LayerInfo, list_layers, resolve_layers
from .maps import (
    MULTI_CLASS_LEVEL,
    LayerMaps,
    OccurrenceCounter,
    aom,
    class_difference,
    class_selectivity,
    classes_per_kernel,
    compute_maps,
    csm,
    kernel_flags,
    least_separated_pairs,
    multi_class_share,
    odm,
    resolve_device,
    selectivity,
)
from .models import (
    ZOO,
    ZOO_FOR_DATASET,
    apply_state_dict,
    build_model,
    check_finite,
    load_state_dict,
    save_state_dict,
    weights_digest,
)
from .ordering import KernelOrdering, default_n_groups
from .overview import layer_overview, suggest_keep
from .projections import (
    InputMap,
    InputMapSamples,
    NeuronProjection,
    Projection,
    activation_projection,
    activation_vectors,
    filter_map,
    input_map,
    input_map_vectors,
    neuron_distances,
    neuron_projection,
    sample_perplexity,
    stratified_sample,
)
from .render import apply_colormap, colorbar_image, map_grid_image, matrix_image
from .training import (
    Cancelled,
    Evaluation,
    TrainConfig,
    check_model_fits,
    default_train_config,
    evaluate,
    train,
)
from .trails import (
    Trails,
    aligned_projections,
    bundle_trails,
    class_palette,
    render_trails,
    trail_lengths,
    trail_segments,
    trails_from_run,
)
from .versions import (
    FREEZE_MODES,
    Version,
    VersionHistory,
    edit_and_retrain,
    export_program,
    flops_per_image,
    frozen_modules,
    initial_version,
    measure,
    preview_edit,
)
from .jobs import JobRunner, list_jobs, read_job, run_inline
from .runs import list_runs, read_metrics, read_run, resolve_run, snapshot_schedule
from .workflow import (
    LoadedModel,
    cached_experiment,
    cached_maps,
    load_cached_maps,
    load_model,
    maps_key,
    pretrained_zoo_model,
)
from .workspace import Workspace, default_home, default_root, export_zip, import_zip, list_workspaces

__all__ = [
    "activation_projection", "activation_vectors", "aligned_projections", "aom", "apply_colormap", "apply_edit",
    "apply_edits", "apply_state_dict", "build_edited", "build_model", "bundle_trails", "cached_experiment",
    "cached_maps", "Cancelled", "check_finite", "check_model_fits", "class_difference", "class_palette",
    "class_selectivity", "classes_per_kernel", "colorbar_image", "compute_deepeyes", "compute_maps", "csm",
    "DATASET_NAMES", "deepeyes_over_snapshots", "DeepEyesSeries", "DeepEyesStats", "default_cache_dir",
    "default_data_root", "default_home", "default_n_groups", "default_root", "default_train_config", "DiskCache",
    "Edit", "edit_and_retrain", "EDIT_KINDS", "embed", "EMBED_METHODS", "embedding_key", "evaluate", "Evaluation",
    "export_program", "export_zip", "filter_map", "flops_per_image", "forward_hooks", "forward_input_hooks",
    "FREEZE_MODES", "frozen_modules", "get_module", "ImageDataset", "import_zip", "initial_version", "input_map",
    "input_map_vectors", "InputError", "InputMap", "InputMapSamples", "JobRunner", "kernel_flags", "KernelOrdering",
    "kernels_per_layer", "layer_overview", "LayerDeepEyes", "LayerInfo", "LayerMaps", "least_separated_pairs",
    "list_jobs", "list_layers", "list_runs", "list_workspaces", "load_cached_maps", "load_dataset",
    "load_deepeyes_npz", "load_edits", "load_embedding_npz", "load_maps_npz", "load_model", "load_state_dict",
    "LoadedModel", "map_grid_image", "maps_key", "maps_npz_bytes", "matrix_image", "measure", "MULTI_CLASS_LEVEL",
    "multi_class_share", "neighborhood_hit", "neighborhood_hit_per_class", "neuron_distances", "neuron_projection",
    "NeuronProjection", "OccurrenceCounter", "odm", "parse_edit", "perplexity", "perplexity_bin_edges",
    "point_neighborhood_hits", "Preprocessing", "pretrained_zoo_model", "preview_edit", "Projection", "read_job",
    "read_metrics", "read_run", "render_trails", "resolve_device", "resolve_layers", "resolve_run", "run_inline",
    "sample_perplexity", "save_deepeyes_npz", "save_embedding_npz", "save_maps_npz", "save_state_dict", "selectivity",
    "selectivity_experiment", "silenced", "snapshot_schedule", "stack_deepeyes", "stratified_sample", "suggest_keep",
    "summarize_experiment", "trail_lengths", "trail_segments", "Trails", "trails_from_run", "train", "TrainConfig",
    "TrainingMonitor", "Version", "VersionHistory", "weights_digest", "Workspace", "ZOO", "ZOO_FOR_DATASET",
]
