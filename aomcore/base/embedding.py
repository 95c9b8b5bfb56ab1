"""The one 2-D embedding engine behind every projection view, and the neighbourhood hit.

:func:`embed` turns N feature vectors (or an N×N distance matrix) into N points in the
plane: t-SNE with openTSNE by default (FFT-accelerated gradients, Linderman et al. 2019,
from 10,000 points; Barnes-Hut below, where it is much faster),
UMAP (umap-learn) on request. Every view of the dashboard — Rauber et al.'s activation and
neuron projections and training trails, DeepEyes' input and filter maps — calls it, so they
share one set of defaults, one progress/cancel protocol and one notion of determinism:

* **Threads**: openTSNE runs with this process's share of the cores
  (:func:`aomcore.base.threads.current`; a Barnes-Hut iteration on 5,000 MNIST fc1 vectors:
  21 ms on one thread, 11.5 ms on two).
* **Reproducible**: the same data, options, ``seed`` and thread count give bit-identical points
  on the same machine and library versions (the nearest-neighbour search, PCA initialisation and
  optimisation all take the seed). Another thread count sums the gradients in another order: the
  points differ slightly, with the same neighbourhood hit and a KL divergence within 0.5% (measured
  on MNIST fc1, 1 vs 2 threads; ``benchmarks/RESULTS.md``).
* **Converged, not counted**: t-SNE stops each phase when its KL divergence has stopped falling
  (:data:`CONVERGENCE`; the exaggerated phase only from 3,000 points), so the schedule adapts to
  the data; ``converge=False`` runs every iteration asked for. From 3,000 to 10,000 points the
  plain phase takes larger steps (:data:`FAST_PLAIN`): on 5,000 MNIST vectors it ends 2–3% below
  the KL divergence of openTSNE's full schedule in 500 iterations instead of 750.
* **Progress**: ``progress(done, total)`` in optimisation iterations (openTSNE callbacks,
  every ``callback_every`` iterations); UMAP reports only start and end.
* **Cancel**: any object with ``is_set()`` (e.g. :class:`threading.Event`); when set,
  :class:`aomcore.base.training.Cancelled` is raised at the next callback.

Caching is the caller's job (a workspace keyed by content). :func:`embedding_key` builds
the key; it must name everything the points depend on — see its docstring.

:func:`neighborhood_hit` is the separation score Rauber et al. (TVCG 2017) report for their projections (
Paulovich et al. 2008): the mean fraction of each point's k nearest 2-D neighbours that
share its label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from . import threads
from .cache import DiskCache
from .errors import Cancelled, InputError

__all__ = [
    "BH_THETA",
    "CONVERGENCE",
    "FAST_PLAIN",
    "SCHEDULE",
    "EMBED_METHODS",
    "EMBED_METRICS",
    "embed",
    "effective_perplexity",
    "embedding_key",
    "neighborhood_hit",
    "neighborhood_hit_per_class",
    "point_neighborhood_hits",
    "reduce_dims",
]

EMBED_METHODS = ("tsne", "umap")
EMBED_METRICS = ("euclidean", "precomputed")
#: When t-SNE stops a phase early: its KL divergence fell by less than ``tol`` (a fraction) over the
#: last 25 iterations, after at least ``min_iter`` iterations of the phase. The exaggerated phase
#: stops early only from :data:`_SHORT_FROM` points; below, it runs all its iterations. Measured on
#: MNIST (fc1, conv1 and conv2; 1,000 to 60,000 points) by the exact KL divergence against openTSNE's
#: full 250 + 500 schedule on the same affinities and seeds (``benchmarks/RESULTS.md``): the
#: neighbourhood hit and the KL divergence (the mean over seeds) stay within 1% of it. Stopped after
#: 75 exaggerated iterations, conv2's 5,000-point layout ended 1.3% above; 125 is the least measured
#: to stay within from 3,000 points.
CONVERGENCE = {"early_exaggeration": {"tol": 0.01, "min_iter": 125}, "plain": {"tol": 0.001, "min_iter": 50}}
#: The plain phase after early exaggeration with Barnes-Hut gradients from :data:`_SHORT_FROM` points:
#: momentum and learning rate (in units of N). openTSNE's defaults are 0.8 and N; these pass the exact
#: KL divergence of its full schedule in a fraction of the plain iterations (5,000 MNIST fc1 vectors:
#: 100 instead of 500), with the same neighbourhood hit (MNIST fc1, conv1 and conv2, 3,000 to 9,000
#: points; ``benchmarks/RESULTS.md``). Not used below 3,000 points, where they converge more slowly
#: than openTSNE's on some layers (conv1 at 1,000 points: 6.7% above after all 500 iterations; conv2
#: at 1,000: 5.1%); nor with FFT gradients (from 10,000 points), whose iterations cost more the wider
#: the layout: 4N spread 60,000 points twice as wide and their KL kept falling past the rule; nor when
#: the plain phase continues a given layout (no exaggerated phase, e.g. the next snapshot of a
#: training trail), which should move the points only as far as its iterations allow.
FAST_PLAIN = {"momentum": 0.95, "learning_rate": 2.0}
#: Barnes-Hut's accuracy θ (the size-to-distance ratio under which a cell of the tree stands for all
#: its points) in the shortened schedule, per phase; openTSNE's and scikit-learn's default is 0.5,
#: a larger θ costs less per iteration and approximates the repulsive forces more coarsely.
#: Measured from 3,000 to 9,000 points on MNIST and FashionMNIST (fc1, conv1, conv2; 1–3 seeds):
#: 30–45% less time, the exact KL divergence still 0.8–3.9% below openTSNE's full schedule (mean
#: over seeds; 0.95–4.5% with 0.5), the same neighbourhood hit (within 0.002), e.g. 5,000 MNIST
#: fc1 vectors 4.2 s instead of 6.5 s; the closest, MNIST conv1 at 3,000 points, +0.45% (worst
#: seed +0.94%, 0.5: −0.05% and +0.85%). The exaggerated phase tolerates coarser forces: its
#: attraction is 12 times stronger (``benchmarks/RESULTS.md``). Below 3,000 points, openTSNE's 0.5.
BH_THETA = {"early_exaggeration": 1.0, "plain": 0.8}
#: The version of the t-SNE schedule: part of every embedding key (a new schedule moves the points)
#: and of every stored projection's record, so views can tell a layout of an older schedule.
SCHEDULE = "converge-4"
#: openTSNE's "auto" gradient: Barnes-Hut below this many points, FFT interpolation from it.
_FFT_FROM = 10_000
#: The shortened schedule from this many points: the exaggerated phase stopped by
#: :data:`CONVERGENCE` (at least 125 iterations) and, with Barnes-Hut, the plain phase with
#: :data:`FAST_PLAIN`. Below it, openTSNE's own schedule (250 exaggerated iterations, momentum 0.8,
#: learning rate N) with the plain phase stopped by :data:`CONVERGENCE`. Measured below it with the
#: shortened schedule: conv2 at 2,000 points 1.4% above openTSNE's full schedule (mean of 5 seeds,
#: worst 2.2%), 0.7% with the exaggerated phase in full; conv1 and conv2 at 1,000 points 5–7% above
#: (the plain phase). From 3,000 points it stays below (conv2 3k and 4k: 1.1% and 1.5% below).
_SHORT_FROM = 3_000


def _fast_plain(n: int, gradient: str) -> bool:
    """Whether a plain phase after early exaggeration takes :data:`FAST_PLAIN`."""
    barnes_hut = gradient == "bh" or (gradient == "auto" and n < _FFT_FROM)
    return barnes_hut and n >= _SHORT_FROM


#: Below this many points t-SNE is not meaningful; :func:`embed` lays them out exactly (classical MDS).
_MIN_TSNE_POINTS = 4


class _Event(Protocol):
    def is_set(self) -> bool: ...


def _check_cancel(cancel: _Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("embedding cancelled")


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("openTSNE", "umap-learn", "numpy", "scikit-learn"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def embedding_key(**parts) -> str:
    """A content key for a cached embedding: ``DiskCache.key`` of ``parts`` + library versions.

    The key must name everything the points depend on. For a view computed from a model:

    * the weights' digest (:func:`aomcore.base.models.weights_digest`) — per snapshot for trails;
    * the dataset identity (:meth:`aomcore.base.data.ImageDataset.identity`) and split;
    * the layer and its tap, the view (``activations``/``neurons``/``input-map``), the
      vector mode (``flatten``/``mean``/``patch``/``activations``);
    * the sample: either the indices array, or ``n`` and the sampling seed (the sample of
      :func:`aomcore.rauber.projections.stratified_sample` is a pure function of labels, n, seed);
      for the input map also ``positions`` and its seed;
    * every :func:`embed` option that is not left at its default: method, metric,
      perplexity, seed, init (its array, if any), n_iter, early_exaggeration_iter,
      pca_dims, n_neighbors; for trails also ``stability`` and ``align``.

    Arrays among ``parts`` are hashed by content. openTSNE, umap-learn, NumPy and
    scikit-learn versions are added automatically (a new version may move the points), and so is
    the version of the iteration schedule. The thread count is not part of the key: a cached
    layout from another thread count is as good (see the module docstring).

    Returns
    -------
    str, hex digest.
    """
    return DiskCache.key(kind="embedding", versions=_library_versions(), schedule=SCHEDULE, **parts)


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


def reduce_dims(x: np.ndarray, dims: int | None, seed: int = 0) -> np.ndarray:
    """PCA to ``dims`` components when ``x`` has more columns (the usual t-SNE preprocessing).

    Parameters
    ----------
    x : ndarray, (N, D) float
    dims : int or None
        None, or ``dims >= min(N, D)``, returns ``x`` unchanged.
    seed : int
        Seeds the randomized SVD solver that scikit-learn picks for large inputs.

    Returns
    -------
    ndarray, (N, min(D, dims)) float32 or float64 (as given).
    """
    if dims is None or x.shape[1] <= dims or x.shape[0] <= dims:
        return x
    from sklearn.decomposition import PCA

    return PCA(n_components=dims, random_state=seed).fit_transform(x).astype(x.dtype, copy=False)


def _classical_mds(d: np.ndarray) -> np.ndarray:
    """Exact 2-D layout of at most 3 points from their distances (Torgerson's classical MDS)."""
    n = d.shape[0]
    if n == 0:
        return np.zeros((0, 2))
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d**2) @ j
    w, v = np.linalg.eigh(b)
    order = np.argsort(w)[::-1][:2]
    y = v[:, order] * np.sqrt(np.clip(w[order], 0, None))
    out = np.zeros((n, 2))
    out[:, : y.shape[1]] = y
    # A fixed sign so the layout is deterministic regardless of the eigen-solver's choice.
    for c in range(2):
        nz = np.flatnonzero(np.abs(out[:, c]) > 1e-12)
        if nz.size and out[nz[0], c] < 0:
            out[:, c] = -out[:, c]
    return out


def _as_data(data, metric: str) -> np.ndarray:
    if metric not in EMBED_METRICS:
        raise InputError("unknown metric", expected=" or ".join(EMBED_METRICS), found=repr(metric))
    x = np.asarray(data)
    if x.ndim != 2:
        raise InputError("embedding input must be 2-D", expected="(N, D) vectors or (N, N) distances",
                         found=f"shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise InputError("embedding input must be numeric", expected="float array", found=f"dtype {x.dtype}")
    x = x.astype(np.float64 if metric == "precomputed" else np.float32, copy=False)
    if not np.isfinite(x).all():
        raise InputError("embedding input holds NaN or Inf", expected="finite values",
                         found=f"{int((~np.isfinite(x)).sum())} non-finite values")
    if metric == "precomputed":
        if x.shape[0] != x.shape[1]:
            raise InputError("a distance matrix must be square", expected="(N, N)", found=f"shape {x.shape}")
        if (x < 0).any():
            raise InputError("distances must be >= 0", expected="non-negative distances",
                             found=f"minimum {x.min():.3g}")
        x = (x + x.T) / 2  # exact symmetry
        np.fill_diagonal(x, 0.0)
    return x


def effective_perplexity(perplexity: float, n: int) -> float:
    """``perplexity`` clamped so that 3·perplexity ≤ N − 1 (openTSNE's k-NN graph needs it)."""
    return float(max(min(float(perplexity), (n - 1) / 3.0), 1e-3 if n > 1 else 1.0))


def embed(data, method: str = "tsne", metric: str = "euclidean", perplexity: float = 30.0, seed: int = 0,
          init: np.ndarray | str | None = None, n_iter: int = 500, early_exaggeration_iter: int = 250,
          pca_dims: int | None = None, n_neighbors: int = 15, n_jobs: int | None = None,
          negative_gradient_method: str = "auto", rescale_init: bool = True, callback_every: int = 25,
          converge: bool = True, report: dict | None = None,
          progress: Callable[[int, int], None] | None = None, cancel: _Event | None = None) -> np.ndarray:
    """Embed N points in 2-D with t-SNE (openTSNE) or UMAP.

    Parameters
    ----------
    data : array, (N, D) vectors or (N, N) distances
        Vectors for ``metric="euclidean"``; a symmetric, non-negative distance matrix
        (zero diagonal; symmetrised as (D + Dᵀ)/2) for ``metric="precomputed"``.
    method : {"tsne", "umap"}, default "tsne"
        t-SNE: openTSNE on the exact k nearest neighbours (3·perplexity of them; Annoy's
        approximate ones for very large inputs, see :func:`_knn_index`), an early-exaggeration
        phase (factor 12, momentum 0.8, learning rate N/12, ``early_exaggeration_iter``
        iterations) and then ``n_iter`` plain iterations with :data:`FAST_PLAIN` (momentum
        0.95, learning rate 2N, from 3,000 points with Barnes-Hut gradients, whose θ is then
        1.0 and 0.8 in the two phases, :data:`BH_THETA`; otherwise openTSNE's 0.8, N and θ
        0.5). UMAP: umap-learn (``n_neighbors``, min_dist 0.1).
    metric : {"euclidean", "precomputed"}, default "euclidean"
    perplexity : float, default 30
        t-SNE's effective number of neighbours; clamped to (N − 1)/3 for small N
        (e.g. DeepEyes' filter map uses min(K/3, 30)).
    seed : int, default 0
        Seeds nearest neighbours, initialisation and optimisation.
    init : ndarray (N, 2), "pca", "spectral", "random" or None
        None: PCA of the vectors for t-SNE ("spectral" for precomputed distances),
        "spectral" for UMAP. A t-SNE array is rescaled to standard deviation 1e-4 in x
        (:func:`openTSNE.initialization.rescale`, as openTSNE recommends) unless
        ``rescale_init`` is False; a UMAP array is used as given. Identical vectors, or an
        array with no spread along an axis, fall back to a seeded random initialisation.
    n_iter, early_exaggeration_iter : int, default 500, 250
        t-SNE iterations after / during early exaggeration, at most (0 skips that phase, e.g.
        when continuing from a good initialisation); see ``converge``. UMAP: ``n_iter`` epochs
        (0: umap's default).
    pca_dims : int, optional
        Reduce vectors with more columns than this to ``pca_dims`` principal components
        first (:func:`reduce_dims`); ignored for precomputed distances.
    n_neighbors : int, default 15
        UMAP only; clamped to N − 1.
    n_jobs : int, optional
        openTSNE threads; default this process's share of the cores
        (:func:`aomcore.base.threads.current`). Points are bit-identical for one thread count.
    negative_gradient_method : {"auto", "fft", "bh"}, default "auto"
        openTSNE's approximation of the repulsive forces: "auto" is FFT interpolation
        (Linderman et al. 2019) from 10,000 points and Barnes-Hut below, where FFT's fixed
        grid cost dominates (300 points: 12 s with FFT, 0.6 s with Barnes-Hut here).
    rescale_init : bool, default True
        Rescale an array ``init`` to standard deviation 1e-4 (a fresh start). False
        continues from the positions as given (e.g. a converged layout of similar data).
    callback_every : int, default 25
        Iterations between progress reports / cancel / convergence checks (each check also
        evaluates the KL divergence, so smaller values cost a little time).
    converge : bool, default True
        Stop each t-SNE phase once its KL divergence stops falling (:data:`CONVERGENCE`; the
        exaggerated phase runs in full below 3,000 points); False runs
        ``early_exaggeration_iter + n_iter`` iterations.
    report : dict, optional
        Filled in for t-SNE: ``iterations`` (early exaggeration, plain) as run and
        ``kl_divergence``, openTSNE's estimate of KL(P‖Q) at the end (nats).
    progress : callable(done, total), optional
        Iterations done out of ``early_exaggeration_iter + n_iter`` (t-SNE) or 0/1, 1/1
        (UMAP).
    cancel : object with ``is_set()``, optional

    Returns
    -------
    ndarray, (N, 2) float64. Fewer than 4 points are laid out exactly from their
    distances (classical MDS): (0, 2) for none, the origin for one.

    Raises
    ------
    InputError
        Unknown method or metric, non-finite input, a non-square or negative distance
        matrix, an init of the wrong shape, perplexity <= 0, negative iteration counts.
    Cancelled
        When ``cancel`` is set.
    """
    if method not in EMBED_METHODS:
        raise InputError("unknown embedding method", expected=" or ".join(EMBED_METHODS), found=repr(method))
    if not float(perplexity) > 0 or n_iter < 0 or early_exaggeration_iter < 0:
        raise InputError("perplexity must be > 0 and iteration counts >= 0",
                         expected="perplexity > 0, n_iter >= 0, early_exaggeration_iter >= 0",
                         found=f"perplexity={perplexity}, n_iter={n_iter}, "
                               f"early_exaggeration_iter={early_exaggeration_iter}")
    x = _as_data(data, metric)
    n = x.shape[0]
    if isinstance(init, np.ndarray) or (init is not None and not isinstance(init, str)):
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (n, 2) or not np.isfinite(init).all():
            raise InputError("init must be finite (N, 2) positions", expected=f"shape ({n}, 2)",
                             found=f"shape {init.shape}")
    _check_cancel(cancel)
    if n < _MIN_TSNE_POINTS:
        d = x if metric == "precomputed" else np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1, dtype=np.float64))
        points = _classical_mds(d)
        if progress is not None:
            progress(1, 1)
        return points
    if metric == "euclidean":
        x = reduce_dims(x, pca_dims, seed)
    if method == "umap":
        return _umap(x, metric, seed, init, n_iter, n_neighbors, progress, cancel)
    if n_jobs is None:
        n_jobs = threads.current()
    return _tsne(x, metric, perplexity, seed, init, n_iter, early_exaggeration_iter, int(n_jobs),
                 negative_gradient_method, rescale_init, callback_every, converge, report, progress, cancel)


def _tsne(x, metric, perplexity, seed, init, n_iter, ee_iter, n_jobs, gradient, rescale_init, every, converge,
          report, progress, cancel):
    import logging

    from openTSNE import TSNE
    from openTSNE.affinity import MultiscaleMixture
    from openTSNE.initialization import rescale

    n = x.shape[0]
    total = int(ee_iter) + int(n_iter)
    early = CONVERGENCE["early_exaggeration"] if n >= _SHORT_FROM else {"tol": -np.inf, "min_iter": int(ee_iter)}
    state = {"offset": 0, "phase": early, "seen": [], "stopped": False}

    def callback(iteration, error, _embedding):
        _check_cancel(cancel)
        if progress is not None:
            progress(min(state["offset"] + iteration, total), total)
        seen = state["seen"]
        seen.append((iteration, float(error)))
        if not converge or iteration < state["phase"]["min_iter"] or len(seen) < 2:
            return False
        (before, kl_before), (now, kl_now) = seen[-2], seen[-1]
        fall = (kl_before - kl_now) / max(abs(kl_now), 1e-12) * 25.0 / max(now - before, 1)
        state["stopped"] = fall < state["phase"]["tol"]
        return state["stopped"]  # True ends this phase (openTSNE returns the embedding as it is)

    use_callbacks = converge or progress is not None or cancel is not None
    if init is None:
        init = "spectral" if metric == "precomputed" else "pca"
    if isinstance(init, str) and init == "pca" and not np.ptp(x, axis=0).any():
        init = "random"  # identical vectors (e.g. a dead layer): PCA has no direction to offer
    if isinstance(init, np.ndarray):
        if not (init.std(axis=0) > 0).all():
            init = "random"  # a collapsed layout cannot be rescaled, and t-SNE cannot split equal points
        elif rescale_init:
            init = rescale(init)
    perplexity = effective_perplexity(perplexity, n)
    tsne = TSNE(n_components=2, perplexity=perplexity, metric=metric, initialization=init,
                negative_gradient_method=gradient, n_jobs=n_jobs, random_state=seed,
                callbacks=callback if use_callbacks else None, callbacks_every_iters=max(1, int(every)),
                verbose=False)
    logger = logging.getLogger("openTSNE")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the "std of the initialisation" warnings are expected here
    try:
        knn = _knn_index(x, metric, min(n - 1, int(3 * perplexity)), n_jobs, seed)
        affinities = MultiscaleMixture(None, perplexity, knn_index=knn, n_jobs=n_jobs, random_state=seed)
        _check_cancel(cancel)
        embedding = tsne.prepare_initial(x, affinities=affinities)
        _check_cancel(cancel)
        ran = [0, 0]
        short = n >= _SHORT_FROM
        if ee_iter > 0:
            embedding = embedding.optimize(n_iter=int(ee_iter), exaggeration=tsne.early_exaggeration,
                                           momentum=tsne.initial_momentum, inplace=True,
                                           theta=BH_THETA["early_exaggeration"] if short else tsne.theta)
            ran[0] = state["seen"][-1][0] if state["stopped"] else int(ee_iter)
        state.update(offset=int(ee_iter), phase=CONVERGENCE["plain"], seen=[], stopped=False)
        if n_iter > 0:
            fast = ee_iter > 0 and _fast_plain(n, gradient)
            embedding = embedding.optimize(
                n_iter=int(n_iter), exaggeration=tsne.exaggeration,
                momentum=FAST_PLAIN["momentum"] if fast else tsne.final_momentum,
                learning_rate=FAST_PLAIN["learning_rate"] * n if fast else "auto", inplace=True,
                theta=BH_THETA["plain"] if fast else tsne.theta)
            ran[1] = state["seen"][-1][0] if state["stopped"] else int(n_iter)
    finally:
        logger.setLevel(level)
    if report is not None:
        report.update(iterations=ran, kl_divergence=float(getattr(embedding, "kl_divergence", float("nan"))))
    if progress is not None:
        progress(total, total)
    return np.array(embedding, dtype=np.float64)


#: Exact k-NN (scikit-learn) while N² · D is at most this; Annoy above. Measured here on MNIST fc1
#: vectors, 90 neighbours, 2 threads (``benchmarks/RESULTS.md``): exact takes 0.13 s at 5,000 × 50
#: (Annoy 1.1 s), 8.5 s at 60,000 × 50 (Annoy 17 s), 14.6 s at 60,000 × 128 (Annoy 15.7 s).
_EXACT_KNN_BUDGET = 60_000**2 * 128


def _knn_index(x: np.ndarray, metric: str, k: int, n_jobs: int, seed: int):
    """openTSNE's k-NN index for ``x``: the distances themselves, an exact search, or Annoy.

    openTSNE's own choice (``neighbors="auto"``) is exact below 1,000 points and Annoy from
    there; exact search stays faster than Annoy far beyond that (:data:`_EXACT_KNN_BUDGET`), and
    its neighbours are the true ones. The index is built here and handed to openTSNE's
    affinities because naming the method to ``TSNE`` still imports pynndescent and numba
    (0.8 s) only to see whether they are installed.
    """
    from openTSNE import nearest_neighbors

    if metric == "precomputed":
        return nearest_neighbors.PrecomputedDistanceMatrix(x, k=k)
    n, d = x.shape
    method = nearest_neighbors.Sklearn if n * n * d <= _EXACT_KNN_BUDGET else nearest_neighbors.Annoy
    return method(x, k, metric=metric, n_jobs=n_jobs, random_state=seed)


def _umap(x, metric, seed, init, n_iter, n_neighbors, progress, cancel):
    import warnings

    try:
        import umap
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InputError("UMAP needs umap-learn", expected="pip install umap-learn", found=str(exc)) from None
    n = x.shape[0]
    if progress is not None:
        progress(0, 1)
    reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(int(n_neighbors), n - 1)), metric=metric,
                        random_state=seed, init=init if init is not None else "spectral",
                        n_epochs=int(n_iter) or None, transform_seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", small-N spectral warnings
        points = reducer.fit_transform(x)
    _check_cancel(cancel)
    if progress is not None:
        progress(1, 1)
    return np.asarray(points, dtype=np.float64)


# --------------------------------------------------------------------------------------
# Neighbourhood hit
# --------------------------------------------------------------------------------------


def point_neighborhood_hits(points: np.ndarray, labels: np.ndarray, k: int = 6) -> np.ndarray:
    """Per point, the fraction of its k nearest 2-D neighbours (itself excluded) with its label.

    Parameters
    ----------
    points : ndarray, (N, 2) float
    labels : ndarray, (N,) int
    k : int, default 6
        Clamped to N − 1. Ties in distance are broken by scikit-learn's neighbour search.

    Returns
    -------
    ndarray, (N,) float64 in [0, 1]; empty for N < 2.
    """
    from sklearn.neighbors import NearestNeighbors

    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    if points.ndim != 2 or labels.shape != (points.shape[0],):
        raise InputError("one label per point", expected="points (N, d) and labels (N,)",
                         found=f"points {points.shape}, labels {labels.shape}")
    if k < 1:
        raise InputError("k must be >= 1", expected="k >= 1", found=str(k))
    n = points.shape[0]
    if n < 2:
        return np.zeros(0)
    k = min(int(k), n - 1)
    # kneighbors() without X leaves each point out of its own neighbour list, also with duplicates.
    idx = NearestNeighbors(n_neighbors=k).fit(points).kneighbors(return_distance=False)  # (N, k)
    return (labels[idx] == labels[:, None]).mean(axis=1)


def neighborhood_hit(points: np.ndarray, labels: np.ndarray, k: int = 6) -> float:
    """Neighbourhood hit (as in Rauber et al., TVCG 2017): mean of :func:`point_neighborhood_hits`.

    Returns
    -------
    float in [0, 1]; NaN for fewer than 2 points.
    """
    hits = point_neighborhood_hits(points, labels, k)
    return float(hits.mean()) if hits.size else float("nan")


def neighborhood_hit_per_class(points: np.ndarray, labels: np.ndarray, k: int = 6,
                               num_classes: int | None = None) -> np.ndarray:
    """Neighbourhood hit averaged over the points of each class.

    Returns
    -------
    ndarray, (C,) float64 in [0, 1], C = ``num_classes`` or max(label) + 1; NaN for a class
    with no points.
    """
    labels = np.asarray(labels).astype(np.int64)
    hits = point_neighborhood_hits(points, labels, k)
    c = int(num_classes) if num_classes is not None else (int(labels.max()) + 1 if labels.size else 0)
    if hits.size == 0:
        return np.full(c, np.nan)
    sums = np.bincount(labels, weights=hits, minlength=c)
    counts = np.bincount(labels, minlength=c)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
