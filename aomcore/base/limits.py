"""The ranges of every number a user gives, in one place: CLI ``type=`` functions and widget bounds.

Each range is a pair of constants (``NAME_MIN``, ``NAME_MAX``, inclusive) that the dashboard
can pass to its widgets as ``min_value``/``max_value``, and a checker used by the CLI
(``type=seed``) and by the library where the same number arrives from a file (an edit
list's seed, an inserted layer's name). A number outside its range is refused at the
boundary, before anything is allocated.

=====================  ===================  ==================================================
range                  bounds               why
=====================  ===================  ==================================================
``SEED``               0 .. 2**32 - 1       what every generator used accepts (torch,
                                            NumPy, and scikit-learn's ``random_state``,
                                            which stops at 2**32 - 1)
``BINS``               1 .. 1000            perplexity histogram bins (DeepEyes uses 30)
``POSITIONS``          1 .. 1_000_000       positions sampled per image, or ``'all'``
``SNAPSHOTS``          0 .. 1000            weights kept over a run (0: none)
``MAX_RESOLUTION``     1 .. 4096            cells per side of pooled maps
``BATCH_SIZE``         1 .. 65536           images per batch
``EPOCHS``             1 .. 10000           training epochs
``RETRAIN_EPOCHS``     0 .. 10000           retraining epochs of a comparison (0: none)
``SAMPLE``             1 .. 10_000_000      images in an embedding's sample (``--n``)
``N_ITER``             1 .. 100_000         t-SNE iterations
``PERPLEXITY``         1 .. 1000 (real)     t-SNE perplexity (further clamped to (n - 1)/3)
``KEEP``               1 .. 1_000_000       kernels kept (``criteria --keep``)
``CHANNELS``           1 .. 64              channels grayscale images are repeated to
``RESIZE``             1 .. 65535           image side after resizing (memory is checked
                                            separately, against the machine)
``VERSION``            0 .. 2**31 - 1       a workspace version id
``PER_CLASS``          1 .. 10_000_000      images per class of a quick look (``--per-class``)
``WORKERS``            0 .. 64              processes decoding an image folder (0: none)
=====================  ===================  ==================================================

A new layer's name (an inserted conv) is a Python identifier: no ``.`` (PyTorch's module
path separator) or ``/`` (a path separator where names become file names).
"""

from __future__ import annotations

import argparse

import numpy as np

from .errors import InputError

__all__ = [
    "SEED_MIN", "SEED_MAX", "BINS_MIN", "BINS_MAX", "POSITIONS_MIN", "POSITIONS_MAX", "SNAPSHOTS_MIN",
    "SNAPSHOTS_MAX", "MAX_RESOLUTION_MIN", "MAX_RESOLUTION_MAX", "BATCH_SIZE_MIN", "BATCH_SIZE_MAX",
    "EPOCHS_MIN", "EPOCHS_MAX", "RETRAIN_EPOCHS_MIN", "RETRAIN_EPOCHS_MAX", "SAMPLE_MIN", "SAMPLE_MAX",
    "N_ITER_MIN", "N_ITER_MAX", "PERPLEXITY_MIN", "PERPLEXITY_MAX", "KEEP_MIN", "KEEP_MAX", "KERNELS_MIN",
    "KERNELS_MAX",
    "CHANNELS_MIN", "CHANNELS_MAX", "RESIZE_MIN", "RESIZE_MAX", "VERSION_MIN", "VERSION_MAX",
    "WORKERS_MIN", "WORKERS_MAX", "THREADS_MIN", "THREADS_MAX", "PER_CLASS_MIN", "PER_CLASS_MAX",
    "check_int", "check_layer_name",
    "seed", "bins", "positions", "positions_count", "snapshots", "max_resolution", "batch_size", "epochs",
    "retrain_epochs",
    "sample", "n_iter", "perplexity", "keep", "channels", "resize", "version", "workers", "per_class", "layer_name",
]

SEED_MIN, SEED_MAX = 0, 2**32 - 1
BINS_MIN, BINS_MAX = 1, 1000
POSITIONS_MIN, POSITIONS_MAX = 1, 1_000_000
SNAPSHOTS_MIN, SNAPSHOTS_MAX = 0, 1000
MAX_RESOLUTION_MIN, MAX_RESOLUTION_MAX = 1, 4096
BATCH_SIZE_MIN, BATCH_SIZE_MAX = 1, 65536
EPOCHS_MIN, EPOCHS_MAX = 1, 10_000
RETRAIN_EPOCHS_MIN, RETRAIN_EPOCHS_MAX = 0, EPOCHS_MAX
SAMPLE_MIN, SAMPLE_MAX = 1, 10_000_000
N_ITER_MIN, N_ITER_MAX = 1, 100_000
PERPLEXITY_MIN, PERPLEXITY_MAX = 1.0, 1000.0
KEEP_MIN, KEEP_MAX = 1, 1_000_000
KERNELS_MIN, KERNELS_MAX = 1, 1_000_000  # kernels named in one edit (ranges expanded)
CHANNELS_MIN, CHANNELS_MAX = 1, 64
RESIZE_MIN, RESIZE_MAX = 1, 65535
VERSION_MIN, VERSION_MAX = 0, 2**31 - 1
WORKERS_MIN, WORKERS_MAX = 0, 64
THREADS_MIN, THREADS_MAX = 1, 1024
PER_CLASS_MIN, PER_CLASS_MAX = 1, 10_000_000


def check_int(label: str, value, lo: int, hi: int) -> int:
    """``value`` as an int when it is a whole number in [lo, hi] (bools and floats refused).

    Raises
    ------
    InputError
        Naming ``label``, the range and the value.
    """
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not whole or not lo <= int(value) <= hi:
        raise InputError(f"bad {label}", expected=f"an integer in [{lo}, {hi}]", found=_short(value))
    return int(value)


def check_layer_name(label: str, value) -> str:
    """A new layer's name: a Python identifier (so no ``.``, ``/``, spaces), at most 64 characters."""
    if not (isinstance(value, str) and value.isidentifier() and len(value) <= 64):
        raise InputError(f"bad {label}", expected="a Python identifier of at most 64 characters (letters, digits, "
                         "'_'; no '.' or '/')", found=_short(value))
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _int_type(name: str, lo: int, hi: int, allow: tuple[str, ...] = ()):
    """An argparse ``type=`` function: a whole number in [lo, hi] (or one of ``allow``)."""

    def parse(text: str):
        if text in allow:
            return text
        try:
            value = int(text, 10)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            extra = "".join(f" or {a!r}" for a in allow)
            raise argparse.ArgumentTypeError(f"expected an integer in [{lo}, {hi}]{extra}, found {_short(text)}")
        return value

    parse.__name__ = name
    return parse


def perplexity(text: str) -> float:
    """An argparse ``type=`` function: a t-SNE perplexity, a finite number in [PERPLEXITY_MIN, PERPLEXITY_MAX]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not PERPLEXITY_MIN <= value <= PERPLEXITY_MAX:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a number in [{PERPLEXITY_MIN:g}, {PERPLEXITY_MAX:g}], "
                                         f"found {_short(text)}")
    return value


seed = _int_type("seed", SEED_MIN, SEED_MAX)
bins = _int_type("bins", BINS_MIN, BINS_MAX)
positions = _int_type("positions", POSITIONS_MIN, POSITIONS_MAX, allow=("all",))
positions_count = _int_type("positions", POSITIONS_MIN, POSITIONS_MAX)
snapshots = _int_type("snapshots", SNAPSHOTS_MIN, SNAPSHOTS_MAX)
max_resolution = _int_type("max_resolution", MAX_RESOLUTION_MIN, MAX_RESOLUTION_MAX)
batch_size = _int_type("batch_size", BATCH_SIZE_MIN, BATCH_SIZE_MAX)
epochs = _int_type("epochs", EPOCHS_MIN, EPOCHS_MAX)
retrain_epochs = _int_type("retrain_epochs", RETRAIN_EPOCHS_MIN, RETRAIN_EPOCHS_MAX)
sample = _int_type("sample", SAMPLE_MIN, SAMPLE_MAX)
n_iter = _int_type("n_iter", N_ITER_MIN, N_ITER_MAX)
keep = _int_type("keep", KEEP_MIN, KEEP_MAX)
channels = _int_type("channels", CHANNELS_MIN, CHANNELS_MAX)
resize = _int_type("resize", RESIZE_MIN, RESIZE_MAX)
version = _int_type("version", VERSION_MIN, VERSION_MAX)
workers = _int_type("workers", WORKERS_MIN, WORKERS_MAX)
per_class = _int_type("per_class", PER_CLASS_MIN, PER_CLASS_MAX)


def layer_name(text: str) -> str:
    """An argparse ``type=`` function for a new layer's name (see :func:`check_layer_name`)."""
    try:
        return check_layer_name("layer name", text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
