"""Shared ground: data, models, layers, hooks, devices, training, errors, files, policy.

Nothing here knows the methods (:mod:`aomcore.aom`, :mod:`aomcore.deepeyes`,
:mod:`aomcore.rauber`), the store or the jobs; they all stand on it.
"""

from .activations import VECTOR_MODES, activation_vectors, stratified_sample
from .cache import DiskCache, default_cache_dir, file_sha256
from .data import DATASET_NAMES, ImageDataset, Preprocessing, default_data_root, display_images, load_dataset
from .devices import resolve_device, valid_devices
from .editing import (
           EDIT_KINDS,
           Edit,
           apply_edit,
           apply_edits,
           build_edited,
           edit_log_origin,
           kernels_per_layer,
           load_edits,
           parse_edit,
           rebuild,
           rebuild_traced,
           trace_edits,
)
from .embedding import (
           EMBED_METHODS,
           embed,
           embedding_key,
           neighborhood_hit,
           neighborhood_hit_per_class,
           point_neighborhood_hits,
           reduce_dims,
)
from .errors import Cancelled, InputError
from .hooks import forward_hooks, forward_input_hooks, get_module
from .layers import LayerInfo, list_layers, resolve_layers, unanalysable_layers
from .lineage import Lineage, aligned_rows, kernel_list, kernel_names, kernel_origin, kinship, renamed, shared_names
from .loaded import LoadedModel, load_model, pretrained_zoo_model
from .models import (
           ZOO,
           ZOO_FOR_DATASET,
           apply_state_dict,
           architecture_classes,
           build_model,
           check_finite,
           load_checkpoint,
           load_state_dict,
           match_state_dict,
           save_state_dict,
           weights_digest,
)
from .npzfile import AOMCORE_VERSION, embedding_npz_bytes, library_versions, load_embedding_npz, save_embedding_npz
from .paths import inside
from .policy import Policy, current_policy
from .receptive_field import receptive_box, receptive_boxes
from .render import COLORMAPS, apply_colormap, colorbar_image, map_grid_image, matrix_image
from .training import Evaluation, TrainConfig, check_model_fits, default_train_config, evaluate, train

__all__ = ["AOMCORE_VERSION", "COLORMAPS", "Cancelled", "DATASET_NAMES", "DiskCache", "EDIT_KINDS", "EMBED_METHODS",
           "architecture_classes",
           "Edit", "Lineage", "aligned_rows", "edit_log_origin", "kernel_list", "kinship", "shared_names",
           "kernel_names", "kernel_origin", "rebuild_traced", "renamed",
           "trace_edits",
           "Evaluation", "ImageDataset", "InputError", "LayerInfo", "LoadedModel", "Policy", "Preprocessing",
           "TrainConfig", "VECTOR_MODES", "ZOO", "ZOO_FOR_DATASET", "activation_vectors", "apply_colormap",
           "apply_edit", "apply_edits", "apply_state_dict", "build_edited", "build_model", "check_finite",
           "check_model_fits", "colorbar_image", "current_policy", "default_cache_dir", "default_data_root",
           "default_train_config", "display_images", "embed", "embedding_key", "embedding_npz_bytes", "evaluate",
           "file_sha256", "forward_hooks", "forward_input_hooks", "get_module", "inside", "kernels_per_layer",
           "library_versions", "list_layers", "unanalysable_layers", "load_checkpoint", "load_dataset", "load_edits",
           "load_embedding_npz", "load_model", "load_state_dict", "map_grid_image", "match_state_dict",
           "matrix_image", "neighborhood_hit", "neighborhood_hit_per_class", "parse_edit",
           "point_neighborhood_hits", "pretrained_zoo_model", "rebuild", "receptive_box", "receptive_boxes",
           "reduce_dims", "resolve_device", "resolve_layers", "save_embedding_npz", "save_state_dict",
           "stratified_sample", "train", "valid_devices", "weights_digest"]
