"""A training run as DeepEyes shows it: learning histograms, layer stability, flagged filters.

From the statistics a training run keeps (``monitor.npz``, read with
:func:`aomcore.store.runs.read_run_view`, safe while the run is still being written), derives
the quantities of DeepEyes' training views (Pezzotti et al., IEEE TVCG 24(1), 2018):

* the perplexity histogram of each snapshot window, normalised to shares of the samples,
  and the *learning histogram*: its change from the previous window (the released code
  shows the current histogram minus an earlier one); mass moving to low perplexity means
  the layer's filters specialise;
* per layer, the change ``Δ_t = Σ_b |h_t[b] − h_{t−1}[b]|`` (L1 of the normalised
  histograms' difference, in [0, 2]) and a *stable* flag when the last ``n`` changes all
  stay under a threshold — DeepEyes' cue that a layer has stopped changing;
* dead filters (maximum activation μ = 0 over the window) and always-on filters
  (activation frequency f ≥ a level near 1), the degenerate filters of the activation
  heatmap.
"""

from __future__ import annotations

import numpy as np

from ..base.errors import InputError

__all__ = ["filter_flags", "histogram_change", "learning_histogram", "normalised_histograms", "stable_layers"]


def normalised_histograms(hist: np.ndarray) -> np.ndarray:
    """Perplexity histograms (S, B) counts → shares of each window's samples (S, B) float64.

    A window without samples gives a row of zeros.
    """
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 2:
        raise InputError("histograms must be (windows, bins)", expected="a 2-D array", found=f"shape {hist.shape}")
    totals = hist.sum(axis=1, keepdims=True)
    return np.divide(hist, totals, out=np.zeros_like(hist), where=totals > 0)


def learning_histogram(hist: np.ndarray) -> np.ndarray:
    """DeepEyes' learning histogram: each window's normalised histogram minus the previous one.

    Parameters
    ----------
    hist : ndarray, (S, B)
        Perplexity histogram counts per window.

    Returns
    -------
    ndarray, (S, B) float64 in [-1, 1]; row 0 is all zero (nothing before it). Positive =
    share of samples gained by that perplexity bin.
    """
    h = normalised_histograms(hist)
    out = np.zeros_like(h)
    out[1:] = h[1:] - h[:-1]
    return out


def histogram_change(hist: np.ndarray) -> np.ndarray:
    """L1 change of the normalised histogram from the previous window, (S,) float64 in [0, 2];
    NaN for the first window."""
    change = np.abs(learning_histogram(hist)).sum(axis=1)
    if change.size:
        change[0] = np.nan
    return change


def stable_layers(layers: dict[str, dict[str, np.ndarray]], threshold: float, last: int) -> dict[str, bool]:
    """Per layer, whether the histogram change stayed under ``threshold`` for the ``last`` windows.

    A layer with fewer than ``last`` changes (``last + 1`` windows) is not stable yet.

    Raises
    ------
    InputError
        ``threshold`` not in (0, 2] or ``last`` < 1.
    """
    if not 0 < threshold <= 2:
        raise InputError("threshold out of range", expected="0 < threshold <= 2 (L1 of shares)", found=str(threshold))
    if last < 1:
        raise InputError("last must be positive", expected="an integer >= 1", found=str(last))
    out = {}
    for name, arrays in layers.items():
        change = histogram_change(arrays["perplexity_histogram"])[1:]
        out[name] = bool(change.size >= last and np.all(change[-last:] < threshold))
    return out


def filter_flags(max_activation: np.ndarray, frequency: np.ndarray,
                 always_level: float = 0.95) -> dict[str, np.ndarray]:
    """Dead (μ = 0) and always-on (f ≥ ``always_level``) filters of one window.

    Returns
    -------
    dict with ``dead``, ``always_on`` and ``flagged`` (either), each (K,) bool.

    Raises
    ------
    InputError
        ``always_level`` not in (0.5, 1] (f counts samples above 0.5·μ, so every live
        filter has f > 0; levels at or below one half flag ordinary filters).
    """
    if not 0.5 < always_level <= 1:
        raise InputError("always-on level out of range", expected="0.5 < level <= 1", found=str(always_level))
    mu = np.asarray(max_activation, dtype=np.float64)
    f = np.asarray(frequency, dtype=np.float64)
    dead = mu == 0
    always = ~dead & (f >= always_level)
    return {"dead": dead, "always_on": always, "flagged": dead | always}
