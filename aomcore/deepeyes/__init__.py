"""DeepEyes (Pezzotti et al., IEEE TVCG 24(1), 2018): per-layer statistics, the training
monitor, learning histograms, and the input and filter maps."""

from .input_map import (
    INPUT_MAP_USES,
    InputMap,
    InputMapSamples,
    filter_map,
    input_map,
    input_map_vectors,
    sample_perplexity,
)
from .learning import filter_flags, histogram_change, learning_histogram, normalised_histograms, stable_layers
from .statistics import (
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

__all__ = ["INPUT_MAP_USES", "DeepEyesSeries", "DeepEyesStats", "InputMap", "InputMapSamples", "LayerDeepEyes",
           "TrainingMonitor", "compute_deepeyes", "deepeyes_over_snapshots", "filter_flags", "filter_map",
           "histogram_change", "input_map", "input_map_vectors", "learning_histogram", "load_deepeyes_npz",
           "normalised_histograms", "perplexity", "perplexity_bin_edges", "sample_perplexity", "save_deepeyes_npz",
           "stable_layers", "stack_deepeyes"]
