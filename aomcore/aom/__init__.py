"""Garcia et al., IJCNN 2019: activation occurrence maps and the architecture-tuning loop.

Maps (eqs. 1–4) and their streaming counter, kernel order and groups, the three tasks as
findings per layer with the keep rule, the selectivity experiment (Sec. V-C), the edit →
retrain loop with the paper's freezing, cached results, ``maps.npz``, and the paper's
MNIST reproduction; pruning criteria beside selectivity, a Torch-Pruning importance from the
maps, and the ablation that compares them.
"""

from .criteria import (
    COMPARED_CRITERIA,
    CRITERIA,
    Criterion,
    MapsImportance,
    apoz,
    compare_criteria,
    kernel_scores,
    layer_scores,
    summarize_criteria,
    top_kernels,
)
from .experiment import selectivity_experiment, silenced, silencing_vs_removal, summarize_experiment
from .maps import (
    MULTI_CLASS_LEVEL,
    LayerMaps,
    OccurrenceCounter,
    aom,
    check_maps_options,
    class_difference,
    class_selectivity,
    classes_per_kernel,
    compute_maps,
    csm,
    kernel_flags,
    least_separated_pairs,
    multi_class_share,
    odm,
    selectivity,
)
from .maps_npz import load_maps_npz, maps_npz_bytes, save_maps_npz
from .ordering import DEFAULT_CUT, KernelOrdering, default_cut_distance, default_n_groups, group_means, group_members
from .overview import MIN_SELECTIVITY, keep_reasons, layer_overview, suggest_keep
from .results import cached_experiment, cached_maps, load_cached_maps, maps_cache_key, maps_key
from .retrain import (
    FREEZE_MODES,
    Version,
    edit_and_retrain,
    export_program,
    flops_per_image,
    frozen_modules,
    initial_version,
    measure,
    preview_edit,
)

__all__ = ["COMPARED_CRITERIA", "CRITERIA", "DEFAULT_CUT", "default_cut_distance", "FREEZE_MODES", "MIN_SELECTIVITY",
           "MULTI_CLASS_LEVEL", "Criterion", "KernelOrdering", "LayerMaps",
           "group_means", "group_members", "MapsImportance", "OccurrenceCounter", "Version", "aom", "apoz",
           "compare_criteria", "kernel_scores", "layer_scores",
           "top_kernels", "cached_experiment", "cached_maps", "check_maps_options",
           "class_difference", "class_selectivity", "classes_per_kernel", "compute_maps", "csm", "default_n_groups",
           "edit_and_retrain", "export_program", "flops_per_image", "frozen_modules", "initial_version",
           "kernel_flags", "layer_overview", "least_separated_pairs", "load_cached_maps", "load_maps_npz",
           "maps_cache_key", "maps_key", "maps_npz_bytes", "measure", "multi_class_share", "odm", "preview_edit",
           "save_maps_npz", "selectivity", "selectivity_experiment", "silenced", "silencing_vs_removal", "suggest_keep",
           "keep_reasons",
           "summarize_criteria", "summarize_experiment"]
