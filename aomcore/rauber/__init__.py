"""Rauber, Fadel, Falcão, Telea (IEEE TVCG 23(1), 2017): projections of hidden activity
(images and neurons) and training trails."""

from .projections import NeuronProjection, Projection, activation_projection, neuron_distances, neuron_projection
from .run_trails import TRAILS_DEFAULTS, compute_trails, lagging_classes, trails_key, trails_npz_bytes, trails_options
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

__all__ = ["TRAILS_DEFAULTS", "NeuronProjection", "Projection", "Trails", "activation_projection",
           "aligned_projections", "bundle_trails", "class_palette", "compute_trails", "lagging_classes",
           "neuron_distances", "neuron_projection", "render_trails", "trail_lengths", "trail_segments",
           "trails_from_run", "trails_key", "trails_npz_bytes", "trails_options"]
