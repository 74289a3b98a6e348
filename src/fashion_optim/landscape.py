"""Planes through the CNN's weights, and the loss on them.

:func:`pca_plane` finds the plane that best holds recorded training trajectories (Li et
al., 2018), :func:`random_plane` a random one with :func:`filter_normalized_directions`,
and :func:`loss_surface` evaluates the loss on a grid of that plane. What a plane leaves
out: :func:`project` gives each point's coordinates on a plane and its distance from it,
:func:`plane_gap` the loss measured at each snapshot of a trajectory beside the loss at
its projection, and :func:`random_walk_explained_variance` how much of a random walk's
variance its own PCA plane holds (Antognini and Sohl-Dickstein, 2018), the baseline for a
trajectory's, with independent steps or with steps correlated as a trajectory's are
(:func:`step_autocorrelation`). Toy surfaces in two dimensions are :mod:`fashion_optim.toys`'.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

__all__ = [
    "Plane",
    "filter_normalized_directions",
    "loss_surface",
    "losses_at",
    "pca_plane",
    "plane_gap",
    "project",
    "random_plane",
    "random_walk_explained_variance",
    "step_autocorrelation",
]

# --------------------------------------------------------------------------- planes


@dataclass(frozen=True, eq=False)  # arrays have no single truth value
class Plane:
    """A 2-d plane in parameter space: ``origin + alpha * directions[0] + beta * directions[1]``.

    Attributes
    ----------
    origin : numpy.ndarray
        ``[P]`` float64, the point at ``(0, 0)``; flattened in the order of
        ``model.parameters()``.
    directions : numpy.ndarray
        ``[2, P]`` float64. Orthonormal for :func:`pca_plane`; filter-normalised (neither
        unit nor orthogonal) for :func:`random_plane`.
    explained_variance_ratio : numpy.ndarray
        ``[2]``: share of the trajectories' variance along each direction (NaN for a
        random plane).
    coords : list of numpy.ndarray
        ``[n_i, 2]`` per trajectory: the coordinates ``(alpha, beta)`` of its points'
        projections, relative to ``origin`` (empty for a random plane).
    """

    origin: np.ndarray
    directions: np.ndarray
    explained_variance_ratio: np.ndarray
    coords: list[np.ndarray] = field(default_factory=list)

    def point(self, alpha: float, beta: float) -> np.ndarray:
        """The parameter vector at ``(alpha, beta)``, ``[P]``."""
        return self.origin + alpha * self.directions[0] + beta * self.directions[1]


def _as_2d_array(traj: Any, i: int) -> np.ndarray:
    arr = traj.detach().cpu().numpy() if torch.is_tensor(traj) else np.asarray(traj)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(
            f"trajectory {i} must be a 2-d array [points, P] with at least one point, got "
            f"shape {arr.shape}."
        )
    return arr


def _top_two_components(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top two squared singular values and right singular vectors of ``centred`` [n, P].

    Through the eigen-decomposition of the smaller of the two Gram matrices: with ``n`` in
    the hundreds and ``P`` ~ 62,000 the ``n x n`` one costs one matrix product, several
    times cheaper than a full economy SVD.
    """
    n, width = centred.shape
    if n <= width:
        values, vectors = np.linalg.eigh(centred @ centred.T)
        values, vectors = values[::-1][:2], vectors[:, ::-1][:, :2]
        return values, vectors.T @ centred  # rows: sqrt(value) * right singular vector
    values, vectors = np.linalg.eigh(centred.T @ centred)
    return values[::-1][:2], vectors[:, ::-1][:, :2].T


def pca_plane(trajectories: Sequence[Any]) -> Plane:
    r"""The plane through the shared initial point that best holds some trajectories.

    Following Li et al. (2018), the directions are the top two principal components of the
    visited points: the top right singular vectors of the stacked points minus their mean,
    found through the ``n x n`` Gram matrix (cheap for ``n`` in the hundreds and ``P`` in
    the tens of thousands). Li et al. draw the plane through the final point of one run; here
    it goes through the initial point, which all trajectories must share, so several runs
    (optimizers, learning rates) from the same initialisation land in one picture. The
    shared initial point enters the PCA once.

    Each direction's sign is chosen so that the first trajectory's last point has a
    non-negative coordinate along it. The coordinates are orthogonal projections:

    .. math:: (\alpha, \beta) = D\,(\theta - \theta_0), \qquad D = [d_1; d_2].

    Parameters
    ----------
    trajectories : sequence of array-like
        ``[n_i, P]`` parameter snapshots each (numpy arrays or tensors, e.g.
        :class:`~fashion_optim.recorders.ParameterRecorder`'s ``"params"``), all starting
        from exactly the same row 0.

    Returns
    -------
    Plane

    Raises
    ------
    ValueError
        When no trajectory is given, shapes disagree, initial points differ, or the
        trajectories never move.

    Examples
    --------
    >>> plane = pca_plane([sgd["params"], adam["params"]])  # doctest: +SKIP
    >>> plane.explained_variance_ratio  # doctest: +SKIP
    array([0.83, 0.09])
    """
    if isinstance(trajectories, np.ndarray | torch.Tensor):
        raise TypeError(
            "trajectories must be a list of [n_i, P] arrays; wrap a single one as [traj]."
        )
    arrays = [_as_2d_array(t, i) for i, t in enumerate(trajectories)]
    if not arrays:
        raise ValueError("pca_plane needs at least one trajectory, got none.")
    width = arrays[0].shape[1]
    if width < 2:
        raise ValueError(f"trajectories must have P >= 2 parameters, got P = {width}.")
    for i, arr in enumerate(arrays[1:], start=1):
        if arr.shape[1] != width:
            raise ValueError(
                f"trajectory {i} has {arr.shape[1]} parameters, trajectory 0 has {width}."
            )
        if not np.array_equal(arr[0], arrays[0][0]):
            diff = np.abs(arr[0].astype(np.float64) - arrays[0][0]).max()
            raise ValueError(
                f"trajectory {i} starts from a different point than trajectory 0 (max abs "
                f"difference {diff:.3g}); pca_plane needs runs from the same initial weights."
            )
    origin = arrays[0][0].astype(np.float64)
    points = np.concatenate([arrays[0]] + [a[1:] for a in arrays[1:]]).astype(np.float64)
    centred = points - points.mean(axis=0)
    total = float(np.sum(centred**2))
    if total == 0.0:
        raise ValueError("the trajectories never leave their initial point: no plane to fit.")
    variances, raw = _top_two_components(centred)
    # QR re-orthonormalises; it also gives a valid second direction when all the points
    # lie on one line (the second variance is then zero).
    directions = np.linalg.qr(raw.T)[0].T.copy()
    ratio = np.clip(variances / total, 0.0, None)
    last = arrays[0][-1].astype(np.float64) - origin
    for k in range(2):
        if directions[k] @ last < 0:
            directions[k] = -directions[k]
    coords = [(a.astype(np.float64) - origin) @ directions.T for a in arrays]
    return Plane(origin, directions, ratio, coords)


def filter_normalized_directions(model: nn.Module, seed: int) -> np.ndarray:
    r"""Two random directions, filter-normalised as in Li et al. (2018).

    Each direction is drawn from :math:`\mathcal N(0, 1)` (with a private generator seeded
    by ``seed``; torch's global random state is untouched), then every filter (a slice
    along the first dimension: a convolution's output channel, a linear layer's row) is
    rescaled to the norm of the corresponding filter of the weights:

    .. math:: d_{i,j} \leftarrow \frac{d_{i,j}}{\lVert d_{i,j} \rVert}\,
        \lVert \theta_{i,j} \rVert.

    Biases and other 1-d parameters get zero, so the plane leaves them fixed.

    Returns
    -------
    numpy.ndarray
        ``[2, P]`` float64, in the order of ``model.parameters()``.

    Examples
    --------
    >>> from fashion_optim.models import LeNet
    >>> filter_normalized_directions(LeNet(), seed=0).shape
    (2, 61706)
    """
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for _ in range(2):
        parts = []
        for p in model.parameters():
            w = p.detach().to("cpu", torch.float64)
            if w.dim() <= 1:
                parts.append(torch.zeros(w.numel(), dtype=torch.float64))
                continue
            d = torch.randn(w.shape, generator=gen, dtype=torch.float64)
            dims = tuple(range(1, w.dim()))
            norm = torch.linalg.vector_norm
            scale = norm(w, dim=dims, keepdim=True) / (norm(d, dim=dims, keepdim=True) + 1e-10)
            parts.append((d * scale).reshape(-1))
        out.append(torch.cat(parts))
    return torch.stack(out).numpy()


def random_plane(model: nn.Module, seed: int) -> Plane:
    """A plane through the model's current weights along :func:`filter_normalized_directions`.

    Its :attr:`~Plane.coords` are empty, so :func:`loss_surface` defaults to the extent
    ``(-1, 1, -1, 1)`` of Li et al. (2018).
    """
    origin = parameters_to_vector(model.parameters()).detach().to("cpu", torch.float64)
    return Plane(
        origin=origin.numpy(),
        directions=filter_normalized_directions(model, seed),
        explained_variance_ratio=np.full(2, np.nan),
        coords=[],
    )


def _default_extent(plane: Plane, margin: float = 0.25) -> tuple[float, float, float, float]:
    coords = [c for c in plane.coords if len(c)]
    if not coords:
        return (-1.0, 1.0, -1.0, 1.0)
    pts = np.concatenate([*coords, np.zeros((1, 2))])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = hi - lo
    # A trajectory along one direction only would give a zero-height window.
    span = np.where(span > 0, span, max(float(span.max()), 1.0))
    lo, hi = lo - margin * span, hi + margin * span
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


#: The window :func:`loss_surface` takes when given none (public: the cached surfaces
#: split that grid into parts computed apart, and must lay out the same points).
default_extent = _default_extent


def _first_batch(loader_or_batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(loader_or_batch, tuple | list) and len(loader_or_batch) == 2:
        if all(torch.is_tensor(t) for t in loader_or_batch):
            return loader_or_batch[0], loader_or_batch[1]
    if isinstance(loader_or_batch, Iterable):
        for batch in loader_or_batch:
            return batch[0], batch[1]
        raise ValueError("the loader yields no batches.")
    raise TypeError(
        f"loader_or_batch must be an (inputs, targets) pair of tensors or a loader, got "
        f"{type(loader_or_batch)}."
    )


def _evaluate(
    model: nn.Module,
    count: int,
    point: Callable[[int], torch.Tensor],
    loader_or_batch: Any,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and accuracy of ``model`` at each parameter vector ``point(k)``, ``k <
    count`` (flat, in the order of ``model.parameters()``) on one fixed batch; in eval
    mode, under :class:`torch.inference_mode`, with the parameters and modes restored
    bitwise.

    With ``workers`` > 1 the points are shared among that many threads, each with its own
    copy of the model; torch runs each forward pass on the thread that asked for it, with
    the caller's thread count, so every value is the one a single thread gives, bit for
    bit, in less time.
    """
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}.")
    params = list(model.parameters())
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    x, y = _first_batch(loader_or_batch)
    device = params[0].device
    x, y = x.to(device), y.to(device)
    saved = [p.detach().clone() for p in params]
    modes = [m.training for m in model.modules()]
    losses, accs = np.empty(count), np.empty(count)

    def evaluate(net: nn.Module, which: range) -> None:
        own = list(net.parameters())
        with torch.inference_mode():
            for k in which:
                vec = point(k)
                # In-place copies keep each parameter's storage; vector_to_parameters
                # would rebind .data to views of vec.
                offset = 0
                for p in own:
                    p.copy_(vec[offset : offset + p.numel()].view_as(p))
                    offset += p.numel()
                logits = net(x)
                losses[k] = float(loss_fn(logits, y))
                accs[k] = float((logits.argmax(1) == y).float().mean())

    model.eval()
    try:
        threads = max(1, min(workers, count))
        if threads == 1:
            evaluate(model, range(count))
        else:
            copies = [model] + [copy.deepcopy(model) for _ in range(threads - 1)]
            with ThreadPoolExecutor(threads) as pool:
                done = [
                    pool.submit(evaluate, net, range(i, count, threads))
                    for i, net in enumerate(copies)
                ]
                for future in done:
                    future.result()
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        for m, mode in zip(model.modules(), modes, strict=True):
            m.training = mode
    return losses, accs


def _points_for(model: nn.Module, points: Any, what: str = "points") -> np.ndarray:
    size = sum(p.numel() for p in model.parameters())
    arr = points.detach().cpu().numpy() if torch.is_tensor(points) else np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] != size:
        raise ValueError(
            f"{what} must be an array [n, P] of parameter vectors with the model's P = {size} "
            f"parameters, got shape {arr.shape}."
        )
    return arr


def losses_at(
    model: nn.Module,
    points: Any,
    loader_or_batch: Any,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    workers: int = 1,
) -> dict[str, np.ndarray]:
    """Loss and accuracy of ``model`` with its parameters set to each of ``points``.

    Evaluated as :func:`loss_surface` evaluates a grid point: in eval mode, under
    :class:`torch.inference_mode`, on one fixed batch; the model's parameters and modes
    are restored bitwise afterwards.

    Parameters
    ----------
    model : torch.nn.Module
    points : array-like
        ``[n, P]`` parameter vectors, flattened in the order of ``model.parameters()``
        (e.g. a trajectory's snapshots).
    loader_or_batch : tuple of torch.Tensor or iterable
        An ``(inputs, targets)`` batch, or a loader whose first batch is used.
    loss_fn : callable, optional
        :class:`torch.nn.CrossEntropyLoss` by default.
    workers : int
        Threads that evaluate points at once; the values do not depend on it (see
        :func:`loss_surface`).

    Returns
    -------
    dict
        ``"loss"`` and ``"accuracy"``, ``[n]`` float64 each.

    Examples
    --------
    >>> measured = losses_at(model, run.records["params"], (images, labels))  # doctest: +SKIP
    >>> measured["loss"].shape  # doctest: +SKIP
    (31,)
    """
    arr = _points_for(model, points)
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device

    def point(k: int) -> torch.Tensor:
        return torch.as_tensor(arr[k], dtype=dtype, device=device)

    loss, acc = _evaluate(model, len(arr), point, loader_or_batch, loss_fn, workers)
    return {"loss": loss, "accuracy": acc}


def project(plane: Plane, points: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Each point's coordinates on ``plane`` and its distance from it.

    The coordinates are those of the orthogonal projection of :math:`\theta - o` onto
    the span of the directions :math:`D = [d_1; d_2]` (through their ``2 x 2`` Gram
    matrix, so the directions need be neither unit nor orthogonal); the distance is the
    norm of what the projection leaves out:

    .. math::

        (\alpha, \beta) = (D D^\top)^{-1} D\,(\theta - o), \qquad
        \operatorname{dist}(\theta) =
        \lVert \theta - o - \alpha\, d_1 - \beta\, d_2 \rVert_2.

    For a :func:`pca_plane` (orthonormal directions) the coordinates are
    :math:`D(\theta - o)`, those of :attr:`Plane.coords`.

    Parameters
    ----------
    plane : Plane
    points : array-like
        ``[n, P]`` (or one point ``[P]``).

    Returns
    -------
    coords : numpy.ndarray
        ``[n, 2]`` float64.
    distance : numpy.ndarray
        ``[n]`` float64, in the units of the parameters.

    Examples
    --------
    >>> plane = Plane(np.zeros(3), np.eye(3)[:2], np.full(2, np.nan))
    >>> coords, distance = project(plane, [[1.0, 2.0, 2.0]])
    >>> coords.tolist(), distance.tolist()
    ([[1.0, 2.0]], [2.0])
    """
    origin = np.asarray(plane.origin, dtype=np.float64)
    directions = np.asarray(plane.directions, dtype=np.float64)
    arr = points.detach().cpu().numpy() if torch.is_tensor(points) else np.asarray(points)
    arr = np.atleast_2d(arr).astype(np.float64)
    if arr.ndim != 2 or arr.shape[1] != origin.size:
        raise ValueError(
            f"points must be [n, P] with the plane's P = {origin.size}, got shape {arr.shape}."
        )
    gram = directions @ directions.T
    if np.linalg.matrix_rank(gram) < 2:
        raise ValueError("the plane's two directions are parallel (or zero): no plane.")
    offsets = arr - origin
    coords = np.linalg.solve(gram, directions @ offsets.T).T
    residual = offsets - coords @ directions
    return coords, np.linalg.norm(residual, axis=1)


def plane_gap(
    model: nn.Module,
    plane: Plane,
    trajectories: Sequence[Any],
    loader_or_batch: Any,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    workers: int = 1,
) -> list[dict[str, np.ndarray]]:
    """What a plane leaves out of trajectories: at each snapshot, the loss measured there
    beside the loss at its projection on the plane, and its distance from the plane.

    A contour plot of the plane shows, under a snapshot's dot, the loss at the snapshot's
    projection :meth:`Plane.point` ``(alpha, beta)``, not at the snapshot itself: the two
    differ by what the weights off the plane do. Both are evaluated here exactly (not
    interpolated from a grid), on the same batch, as :func:`losses_at` evaluates.

    Parameters
    ----------
    model : torch.nn.Module
    plane : Plane
    trajectories : sequence of array-like
        ``[n_i, P]`` snapshots each.
    loader_or_batch : tuple of torch.Tensor or iterable
        The batch the loss is measured on (the surface's, for a fair comparison).
    loss_fn : callable, optional
    workers : int
        Threads that evaluate snapshots at once (see :func:`losses_at`).

    Returns
    -------
    list of dict
        Per trajectory: ``"coords"`` ``[n_i, 2]`` and ``"distance"`` ``[n_i]`` (from
        :func:`project`), ``"loss"`` and ``"accuracy"`` at the snapshots,
        ``"projected_loss"`` and ``"projected_accuracy"`` at their projections.

    Examples
    --------
    >>> gap = plane_gap(model, plane, [sgd["params"]], (images, labels))  # doctest: +SKIP
    >>> gap[0]["loss"] - gap[0]["projected_loss"]  # doctest: +SKIP
    """
    if isinstance(trajectories, np.ndarray | torch.Tensor):
        raise TypeError(
            "trajectories must be a list of [n_i, P] arrays; wrap a single one as [traj]."
        )
    out = []
    for i, traj in enumerate(trajectories):
        arr = _points_for(model, traj, what=f"trajectory {i}")
        coords, distance = project(plane, arr)
        measured = losses_at(model, arr, loader_or_batch, loss_fn, workers)
        on_plane = np.stack([plane.point(a, b) for a, b in coords])
        projected = losses_at(model, on_plane, loader_or_batch, loss_fn, workers)
        out.append(
            {
                "coords": coords,
                "distance": distance,
                "loss": measured["loss"],
                "accuracy": measured["accuracy"],
                "projected_loss": projected["loss"],
                "projected_accuracy": projected["accuracy"],
            }
        )
    return out


def loss_surface(
    model: nn.Module,
    plane: Plane,
    loader_or_batch: Any,
    extent: Sequence[float] | None = None,
    n: int = 21,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    workers: int = 1,
) -> dict[str, np.ndarray]:
    """Loss and accuracy of ``model`` on a grid of a plane in its parameter space.

    At each grid point the model's parameters are set to ``plane.point(alpha, beta)`` and
    the model is evaluated, in eval mode and under :class:`torch.inference_mode`, on one
    fixed batch. The parameters and train/eval modes are restored bitwise afterwards.
    With ``workers`` > 1 the grid's points are shared among that many threads, each with
    its own copy of the model: torch runs each point's forward pass on the thread that
    asked for it, with the caller's thread count, so every value is the one a single
    thread gives, bit for bit, in less time.

    Parameters
    ----------
    model : torch.nn.Module
        Its parameters, flattened in order, must have the plane's size ``P``.
    plane : Plane
    loader_or_batch : tuple of torch.Tensor or iterable
        An ``(inputs, targets)`` batch to evaluate on; for a loader, its first batch.
    extent : tuple of float, optional
        The grid's window ``(alpha_min, alpha_max, beta_min, beta_max)``. By default all
        of ``plane.coords`` (and the origin) with a 25 % margin on each side, or
        ``(-1, 1, -1, 1)`` when the plane has no coordinates.
    n : int
        Grid points per axis.
    loss_fn : callable, optional
        ``loss_fn(logits, targets)``; :class:`torch.nn.CrossEntropyLoss` by default.
    workers : int
        Threads that evaluate points of the grid at once (1: this thread only).

    Returns
    -------
    dict
        ``"alphas"`` and ``"betas"`` (``[n]``), ``"loss"`` and ``"accuracy"``
        (``[n, n]``, indexed ``[beta, alpha]`` as ``contour(alphas, betas, loss)``
        expects) and ``"extent"``.

    Examples
    --------
    >>> surf = loss_surface(model, plane, (images, labels), n=31)  # doctest: +SKIP
    >>> plt.contour(surf["alphas"], surf["betas"], surf["loss"])  # doctest: +SKIP
    """
    params = list(model.parameters())
    size = sum(p.numel() for p in params)
    origin = np.asarray(plane.origin)
    directions = np.asarray(plane.directions)
    if origin.shape != (size,) or directions.shape != (2, size):
        raise ValueError(
            f"the plane does not fit the model: the model has {size} parameters, the plane's "
            f"origin has shape {origin.shape} and its directions {directions.shape} (expected "
            f"({size},) and (2, {size}))."
        )
    if not (isinstance(n, int) and n >= 2):
        raise ValueError(f"n must be an integer >= 2, got {n!r}.")
    if extent is None:
        extent = _default_extent(plane)
    if len(extent) != 4 or not (extent[0] < extent[1] and extent[2] < extent[3]):
        raise ValueError(
            f"extent must be (alpha_min, alpha_max, beta_min, beta_max) with min < max, got "
            f"{tuple(extent)}."
        )
    alphas = np.linspace(extent[0], extent[1], n)
    betas = np.linspace(extent[2], extent[3], n)
    device = params[0].device
    origin_t = torch.from_numpy(origin).to(device)
    d1, d2 = (torch.from_numpy(d).to(device) for d in directions)

    def point(k: int) -> torch.Tensor:  # row by row, beta outer: indexed [beta, alpha]
        return origin_t + float(alphas[k % n]) * d1 + float(betas[k // n]) * d2

    loss, acc = _evaluate(model, n * n, point, loader_or_batch, loss_fn, workers)
    loss, acc = loss.reshape(n, n), acc.reshape(n, n)
    return {
        "alphas": alphas,
        "betas": betas,
        "loss": loss,
        "accuracy": acc,
        "extent": np.asarray(extent, dtype=float),
    }


# --------------------------------------------------------------------------- random walks


def _as_walks(step_sizes: Any) -> list[np.ndarray]:
    if torch.is_tensor(step_sizes):
        step_sizes = step_sizes.detach().cpu().numpy()
    if isinstance(step_sizes, np.ndarray) or (
        isinstance(step_sizes, Sequence) and step_sizes and np.ndim(step_sizes[0]) == 0
    ):
        step_sizes = [step_sizes]  # one walk
    walks = [np.asarray(w, dtype=np.float64) for w in step_sizes]
    if not walks:
        raise ValueError("step_sizes must hold at least one walk, got none.")
    for i, w in enumerate(walks):
        if w.ndim != 1 or w.size < 1:
            raise ValueError(
                f"walk {i}'s step sizes must be a 1-d array of at least one step, got shape "
                f"{w.shape}."
            )
        if not np.all(np.isfinite(w) & (w >= 0)):
            raise ValueError(
                f"walk {i}'s step sizes must be finite and >= 0 (they are norms), got "
                f"{w[~(np.isfinite(w) & (w >= 0))][:3].tolist()} among them."
            )
    if not any(w.any() for w in walks):
        raise ValueError("every step size is zero: the walk never moves, no PCA to take.")
    return walks


def _ar1_mixing(sizes: Sequence[int], correlations: Sequence[float]) -> np.ndarray:
    """The block-diagonal ``L`` with ``G = L Xi`` an AR(1) chain per walk: ``g_0 = xi_0``,
    ``g_s = rho g_{s-1} + sqrt(1 - rho^2) xi_s`` (each row of ``G`` then has the
    covariance of a row of ``Xi``, and rows ``k`` apart correlate by ``rho^k``)."""
    total = sum(sizes)
    mix = np.zeros((total, total))
    start = 0
    for n, rho in zip(sizes, correlations, strict=True):
        mix[start, start] = 1.0
        for s in range(start + 1, start + n):
            mix[s] = rho * mix[s - 1]
            mix[s, s] = np.sqrt(1 - rho**2)
        start += n
    return mix


def _unit_step_gram(
    steps: int, dim: int, rng: np.random.Generator, method: str, mix: np.ndarray | None = None
) -> np.ndarray:
    """The Gram matrix ``[steps, steps]`` of ``steps`` directions on the unit sphere of
    dimension ``dim``: independent and uniform, or, with ``mix`` (:func:`_ar1_mixing`),
    the normalised rows of ``mix @ Xi`` for ``Xi`` of independent normal rows."""
    if method == "walk":
        g = rng.standard_normal((steps, dim))
        if mix is not None:
            g = mix @ g
        w = g @ g.T
    else:
        # Bartlett: W = A A^T, A lower triangular with A_ii^2 ~ chi2(dim - i) (i from 0)
        # and N(0, 1) below the diagonal, is distributed as G G^T for G [steps, dim] of
        # independent N(0, 1): a Wishart matrix, without drawing the dim-wide rows.
        a = np.tril(rng.standard_normal((steps, steps)), -1)
        a[np.diag_indices(steps)] = np.sqrt(rng.chisquare(dim - np.arange(steps)))
        w = a @ a.T
        if mix is not None:
            w = mix @ w @ mix.T  # the Gram matrix of mix @ Xi
    # Normalising g_s to g_s / |g_s| (a uniform direction) is a function of W alone.
    scale = 1.0 / np.sqrt(np.diag(w))
    return w * scale[:, None] * scale[None, :]


def random_walk_explained_variance(
    step_sizes: Any,
    dim: int,
    seed: int,
    n_components: int = 2,
    method: str = "auto",
    correlation: float | Sequence[float] = 0.0,
) -> np.ndarray:
    r"""The PCA explained-variance ratios of a random walk with given step sizes.

    The walk takes steps of exactly the given sizes :math:`r_s` in independent uniformly
    random directions :math:`u_s` of :math:`\mathbb R^{\mathrm{dim}}`, from a shared start:
    :math:`x_t = \sum_{s \le t} r_s u_s`. Its points (the start once, then each walk's
    points, as :func:`pca_plane` takes a trajectory's snapshots) are centred, and the
    ratios are the top eigenvalues of their covariance over its trace:
    :attr:`Plane.explained_variance_ratio` of the walk. Antognini and Sohl-Dickstein
    (2018) show that for equal steps, as the dimension and then the number of steps grow,
    the :math:`k`-th ratio tends to :math:`6/(\pi^2 k^2)`: the first two hold about 76 %
    of the variance of pure noise. A trajectory's ratios mean something only beside
    these.

    The points are :math:`X = M R U` (:math:`M` the centred cumulative sums, :math:`R =
    \operatorname{diag}(r)`, :math:`U` the directions as rows), so their Gram matrix
    :math:`X X^\top = M R\,(U U^\top)\,R M^\top` needs only the ``T x T`` Gram
    matrix of the directions. With :math:`u_s = g_s / \lVert g_s \rVert`, :math:`g_s
    \sim \mathcal N(0, I)`, that is the normalised Wishart matrix :math:`G G^\top`,
    drawn through Bartlett's decomposition in :math:`O(T^3)` instead of :math:`O(T^2\,
    \mathrm{dim})`: the same distribution, exactly, without a ``T x dim`` array.

    With ``correlation`` :math:`\rho \ne 0` the directions are those of an AR(1) chain,
    :math:`g_0 = \xi_0`, :math:`g_s = \rho\, g_{s-1} + \sqrt{1-\rho^2}\, \xi_s`
    (:math:`\xi_s \sim \mathcal N(0, I)`), so that steps :math:`k` apart have a cosine
    near :math:`\rho^k` in many dimensions, as :func:`step_autocorrelation` measures on a
    trajectory. Then :math:`G = L\Xi` and :math:`GG^\top = L\,(\Xi\Xi^\top)\,L^\top`:
    the same draw of the Wishart matrix, mixed.

    Parameters
    ----------
    step_sizes : array-like
        ``[T]`` step sizes of one walk (e.g. the norms of a trajectory's successive
        snapshot differences), or a sequence of them: several walks from one start (as
        :func:`pca_plane` takes several trajectories).
    dim : int
        The dimension of the space (a network's number of parameters).
    seed : int
        Seeds a private ``numpy.random.default_rng(seed)``.
    n_components : int
        How many ratios to return.
    method : {"auto", "gram", "walk"}
        ``"gram"`` draws the directions' Gram matrix (needs ``dim >= T``); ``"walk"``
        draws the ``T x dim`` directions themselves (for checking, or ``dim < T``);
        ``"auto"``: ``"gram"`` when it applies.
    correlation : float or sequence of float
        :math:`\rho \in (-1, 1)`: the AR(1) correlation of successive step directions,
        one for every walk or one per walk. 0 (default): independent directions.

    Returns
    -------
    numpy.ndarray
        ``[n_components]`` ratios, largest first.

    Examples
    --------
    >>> ratios = random_walk_explained_variance(np.ones(300), dim=10**6, seed=0)
    >>> np.round(ratios, 2).tolist()  # 6 / pi^2 = 0.61 and 6 / (4 pi^2) = 0.15
    [0.61, 0.15]
    >>> smooth = random_walk_explained_variance(np.ones(300), 10**6, 0, correlation=0.9)
    >>> bool(smooth[0] > ratios[0])  # correlated steps: a straighter walk
    True
    """
    walks = _as_walks(step_sizes)
    if np.ndim(correlation) > 1 or np.size(correlation) not in (1, len(walks)):
        raise ValueError(
            f"correlation must be one number or one per walk ({len(walks)}), got {correlation!r}."
        )
    rhos = np.broadcast_to(np.asarray(correlation, dtype=np.float64).ravel(), (len(walks),))
    if not np.all(np.isfinite(rhos) & (np.abs(rhos) < 1)):
        raise ValueError(
            f"correlation must be in (-1, 1) (an AR(1) chain's lag-1 correlation), got "
            f"{correlation!r}."
        )
    steps = sum(w.size for w in walks)
    if not (isinstance(dim, int | np.integer) and dim >= 1):
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}.")
    if method not in ("auto", "gram", "walk"):
        raise ValueError(f"method must be 'auto', 'gram' or 'walk', got {method!r}.")
    if method == "auto":
        method = "gram" if dim >= steps else "walk"
    if method == "gram" and dim < steps:
        raise ValueError(
            f"method='gram' needs dim >= the number of steps, got dim {dim} and {steps} "
            "steps; use method='walk' (or 'auto')."
        )
    if not (isinstance(n_components, int) and 1 <= n_components <= steps + 1):
        raise ValueError(
            f"n_components must be an integer from 1 to the {steps + 1} points, got "
            f"{n_components!r}."
        )
    # M: the start (a row of zeros), then each walk's points as sums of its own steps.
    cumulative = np.zeros((steps + 1, steps))
    row = col = 0
    for w in walks:
        block = np.tril(np.ones((w.size, w.size)))
        cumulative[row + 1 : row + 1 + w.size, col : col + w.size] = block
        row, col = row + w.size, col + w.size
    centred = cumulative - cumulative.mean(axis=0)
    r = np.concatenate(walks)
    mix = _ar1_mixing([w.size for w in walks], rhos) if rhos.any() else None
    gram = _unit_step_gram(steps, int(dim), np.random.default_rng(seed), method, mix)
    weighted = centred * r  # M R
    values = np.linalg.eigvalsh(weighted @ gram @ weighted.T)[::-1]
    values = np.clip(values, 0.0, None)
    return values[:n_components] / values.sum()


def step_autocorrelation(trajectory: Any, max_lag: int = 3) -> np.ndarray:
    r"""The mean cosine between a trajectory's steps k apart, for each lag k from 1 to
    ``max_lag``.

    The steps are the differences of successive points, :math:`d_s = \theta_{s+1} -
    \theta_s`; at lag :math:`k` the value is the mean over :math:`s` of
    :math:`\cos(d_s, d_{s+k})` (steps of length zero left out). Independent random
    directions in many dimensions give about 0; an AR(1) chain of directions with
    correlation :math:`\rho` (``correlation`` of :func:`random_walk_explained_variance`)
    gives about :math:`\rho^k`.

    Parameters
    ----------
    trajectory : array-like
        ``[n, P]`` points (e.g. a run's snapshots), ``n >= max_lag + 2``.
    max_lag : int

    Returns
    -------
    numpy.ndarray
        ``[max_lag]`` mean cosines, lag 1 first.

    Examples
    --------
    >>> line = np.outer(np.arange(5.0), [3.0, 4.0])  # every step the same
    >>> step_autocorrelation(line, 2).tolist()
    [1.0, 1.0]
    >>> zigzag = np.array([[0.0, 0], [1, 0], [0, 0], [1, 0], [0, 0]])
    >>> step_autocorrelation(zigzag, 2).tolist()
    [-1.0, 1.0]
    """
    points = _as_2d_array(trajectory, 0).astype(np.float64)
    if not (isinstance(max_lag, int) and max_lag >= 1):
        raise ValueError(f"max_lag must be an integer >= 1, got {max_lag!r}.")
    if len(points) < max_lag + 2:
        raise ValueError(
            f"a trajectory of {len(points)} points has {len(points) - 1} steps, too few "
            f"for lag {max_lag}; give at least {max_lag + 2} points or a smaller max_lag."
        )
    steps = np.diff(points, axis=0)
    norms = np.linalg.norm(steps, axis=1)
    moved = norms > 0
    unit = np.where(moved[:, None], steps / np.where(moved, norms, 1.0)[:, None], 0.0)
    out = []
    for k in range(1, max_lag + 1):
        cos = np.einsum("ij,ij->i", unit[:-k], unit[k:])
        both = moved[:-k] & moved[k:]
        out.append(float(cos[both].mean()) if both.any() else np.nan)
    return np.array(out)
