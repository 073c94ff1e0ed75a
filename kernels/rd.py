r"""Rate-distortion curves of attributed graphs under coarsening, and their knee.

Distortion
    For a level ``k`` the graph is coarsened to ``k`` nodes
    (:func:`kernels.graphs.coarsen_levels`, nested Ward clustering) and the
    distortion is the FGW distance (:func:`kernels.fgw.fgw_batch`, all levels of a
    call in one batch) between the graph and its coarsening, with
    :math:`M_{ia} = \|x_i - \bar x_a\|^2`, :math:`C_1 = C`, :math:`C_2 = \bar C`,
    :math:`p` the node weights normalised to sum 1 and :math:`q = W` the summed
    cluster weights.
Variance
    The Gaussian-source formula needs the source variance :math:`\sigma^2` on the
    same scale as the distortion. We take the distortion of the zero-rate code, the
    one-node graph (every node sent to the weighted mean):

    .. math::
        \sigma^2 = (1-\alpha)\sum_i p_i \|x_i - \bar x\|^2
                   + \alpha \sum_{i,j} p_i p_j (C_{ij} - \bar c)^2,
        \qquad \bar x = \sum_i p_i x_i,\; \bar c = p^\top C p,

    i.e. the total weighted feature variance (summed over dimensions) and the
    weighted variance of the structure entries, mixed by the FGW ``alpha``
    (:func:`fused_variance`). Its FGW distance to the graph is exactly
    :math:`\sigma^2` (the only coupling is :math:`p`), so level 1 has rate 0 and
    every level's distortion is measured in the same units.
Rate
    Shannon's rate-distortion function of a Gaussian source,
    :math:`R(D) = \tfrac12 \log_2(\sigma^2 / D)` bits for :math:`0 < D < \sigma^2`,
    else 0 (:func:`rate`). ``D = 0`` (lossless; :math:`R = \infty` in theory) also
    returns 0 by this convention, so lossless points are left out of the knee on
    rate axes.
Knee
    :func:`knee_index` / :func:`knee_point`: the Kneedle point (Satopää et al.
    2011) of a convex decreasing curve on axes normalised to ``[0, 1]``; see
    :func:`knee_index` for the smoothing that keeps it stable under noise.

References
----------
Shannon, "Coding theorems for a discrete source with a fidelity criterion", IRE
Nat. Conv. Rec. 1959; Cover and Thomas, *Elements of Information Theory*, 2nd ed.,
Thm. 10.3.2 (Gaussian source).
Satopää, Albrecht, Irwin, Raghavan, "Finding a 'Kneedle' in a Haystack: Detecting
Knee Points in System Behavior", ICDCS Workshops 2011.
Lawson and Hanson, *Solving Least Squares Problems*, 1974 (NNLS).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.optimize import nnls

from kernels.fgw import fgw_batch
from kernels.graphs import _check_alpha, _check_graph, _check_levels, _coarsen_checked

LOSSLESS_RTOL = 1e-12
"""Distortions at most this fraction of the variance are solver round-off of a
lossless code and are reported as exactly 0 (the FGW of a graph with itself
evaluates to about 1e-17, which would otherwise read as ~25 bits); distortions this
close to the variance are reported as the variance (rate exactly 0)."""

KNEE_CONVEXITY_RTOL = 1e-9
"""Slack, relative to the steepest slope, in the test that a curve is already convex
and non-increasing (a clean curve, taken as is). Covers round-off in the slopes of
piecewise-linear curves; 1% noise breaks convexity by far more."""

KNEE_BASIS_SIZE = 40
"""Decay rates in the completely-monotone smoother (log-spaced from half the
smallest x step to 4x the x range). NNLS on ``n x (KNEE_BASIS_SIZE + 3)``: well
under a millisecond for the few dozen points of an RD sweep."""

KNEE_NOISE_Z = 3.0
"""A point is a knee candidate if its raw distance to the chord is within
``KNEE_NOISE_Z`` noise standard deviations (of a difference) of the raw maximum;
the smoothed knee is moved to the nearest candidate. Lower values trust the raw
maximum more (fails on smooth noisy curves), higher values trust the smoother more
(fails on sharp piecewise-linear elbows)."""

MAD_TO_SIGMA = 1.4826
"""Median absolute deviation to standard deviation for Gaussian noise."""

Axes = Literal["rd", "level"]


@dataclass(frozen=True, slots=True)
class RDPoint:
    """One point of a rate-distortion curve.

    Attributes
    ----------
    level : int
        Number of nodes of the coarsened graph.
    rate : float
        Bits, :func:`rate` of the distortion.
    distortion : float
        FGW distance between the graph and its coarsening.
    """

    level: int
    rate: float
    distortion: float


def rate(distortion: Any, variance: Any) -> Any:
    r"""Rate of a Gaussian source at a given distortion, in bits.

    .. math::
        R(D) = \begin{cases} \tfrac12 \log_2(\sigma^2 / D) & 0 < D < \sigma^2 \\
                             0 & \text{otherwise} \end{cases}

    (Shannon 1959; Cover and Thomas, Thm. 10.3.2). ``D <= 0`` returns 0 by
    convention (the lossless rate is infinite). NaN inputs give NaN.

    Parameters
    ----------
    distortion : float or array-like
        Mean squared error :math:`D`.
    variance : float or array-like
        Source variance :math:`\sigma^2` (broadcast against ``distortion``).

    Returns
    -------
    float or ndarray
        A float for scalar inputs, else an array of the broadcast shape.
    """
    D = np.asarray(distortion, dtype=np.float64)
    s2 = np.asarray(variance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where((D > 0) & (D < s2), 0.5 * np.log2(s2 / D), 0.0)
    r = np.where(np.isnan(D) | np.isnan(s2), np.nan, r)
    return float(r) if r.ndim == 0 else r


def fused_variance(features: Any, structure: Any, weights: Any = None, *, alpha: float = 0.5) -> float:
    r"""Variance of an attributed graph on the FGW distortion scale.

    .. math::
        \sigma^2 = (1-\alpha)\sum_i p_i \|x_i - \bar x\|^2
                   + \alpha \sum_{i,j} p_i p_j (C_{ij} - p^\top C p)^2

    with :math:`p` the weights normalised to sum 1: the FGW distance between the
    graph and its one-node coarsening (the zero-rate distortion).

    Parameters
    ----------
    features : array-like, shape (n, d), or None
    structure : array-like, shape (n, n)
    weights : array-like, shape (n,), optional
        Uniform when ``None``.
    alpha : float
        FGW trade-off in ``[0, 1]``.

    Returns
    -------
    float
    """
    X, C, p = _check_graph(features, structure, weights)
    return _fused_variance(X, C, p / p.sum(), alpha)


def _fused_variance(X: np.ndarray, C: np.ndarray, p: np.ndarray, alpha: float) -> float:
    """:func:`fused_variance` of checked inputs, ``p`` summing to 1."""
    mean = p @ X
    feature_var = float(p @ np.sum((X - mean) ** 2, axis=1))
    c_mean = float(p @ C @ p)
    structure_var = float(p @ ((C - c_mean) ** 2) @ p)
    return (1.0 - alpha) * feature_var + alpha * structure_var


def _sq_euclidean(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    sx = np.einsum("ij,ij->i", X, X)
    sy = np.einsum("ij,ij->i", Y, Y)
    return np.maximum(sx[:, None] + sy[None, :] - 2.0 * (X @ Y.T), 0.0)


def rd_curve(
    features: Any,
    structure: Any,
    levels: Iterable[int],
    *,
    alpha: float = 0.5,
    method: str = "exact",
    backend: Any = "auto",
    weights: Any = None,
    epsilon: float = 1e-2,
    max_iter: int | None = None,
    solver: str = "auto",
) -> list[RDPoint]:
    """Rate-distortion points of a graph at several coarsening levels.

    Parameters
    ----------
    features : array-like, shape (n, d), or None
        Node features (``None``: structure only).
    structure : array-like, shape (n, n)
        Structure matrix, normalised to ``[0, 1]`` (see :mod:`kernels.graphs`).
    levels : iterable of int
        Numbers of coarse nodes, each in ``[1, n]``; duplicates are computed once.
    alpha : float
        FGW trade-off (also used by the clustering embedding and the variance).
    method : {"exact", "entropic"}
        FGW solver (:func:`kernels.fgw.fgw`); entropic distances exclude the entropy.
    backend : str or namespace
        FGW backend (``"numpy"``, ``"torch"``, ``"cupy"``, ``"auto"``).
    weights : array-like, shape (n,), optional
        Node weights, normalised to sum 1 here; uniform when ``None``.
    epsilon, max_iter, solver
        Passed to :func:`kernels.fgw.fgw_batch` (``solver``: ``"auto"``,
        ``"reference"`` or ``"compiled"``; see :mod:`kernels.fgw`).

    Returns
    -------
    list of RDPoint
        Sorted by level. The variance (see the module docstring) depends only on
        the graph, so points from separate calls on the same graph share one curve.
    """
    X, C, p = _check_graph(features, structure, weights)
    p = p / p.sum()
    ks = sorted(set(_check_levels(list(levels), C.shape[0])))
    if not ks:
        return []
    _check_alpha(alpha)
    variance = _fused_variance(X, C, p, alpha)
    coarse = _coarsen_checked(X, C, p, ks, alpha)  # (checked once here, not once per step)
    problems = [(_sq_euclidean(X, c.features), C, c.structure, p, c.weights) for c in coarse]
    results = fgw_batch(
        problems,
        alpha=alpha,
        method=method,
        epsilon=epsilon,
        max_iter=max_iter,
        backend=backend,
        solver=solver,
    )
    distortions = []
    for res in results:
        distortion = float(res.distance)
        if distortion <= LOSSLESS_RTOL * variance:
            distortion = 0.0
        elif abs(distortion - variance) <= LOSSLESS_RTOL * variance:
            distortion = variance  # the zero-rate code, up to round-off
        distortions.append(distortion)
    rates = rate(np.array(distortions), variance).tolist()
    return [RDPoint(level=k, rate=r, distortion=d) for k, r, d in zip(ks, rates, distortions, strict=True)]


# --------------------------------------------------------------------------- knee


def _chord_distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kneedle's difference curve of a decreasing curve, normalised by its endpoints."""
    xn = (x - x[0]) / (x[-1] - x[0])
    yn = (y - y[-1]) / (y[0] - y[-1])
    return (1.0 - yn) - xn


def _is_convex_nonincreasing(x: np.ndarray, y: np.ndarray) -> bool:
    slopes = np.diff(y) / np.diff(x)
    slack = KNEE_CONVEXITY_RTOL * float(np.max(np.abs(slopes)))
    return bool(np.all(slopes <= slack) and np.all(np.diff(slopes) >= -slack))


def _completely_monotone_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""Least-squares fit :math:`c + \beta_0 (1 - x) + \sum_j \beta_j e^{-x/\tau_j}`, ``beta >= 0``.

    Sums of decaying exponentials with non-negative weights are completely
    monotone (convex, decreasing, smooth); they represent exponentials, powers
    :math:`x^{-a}`, :math:`1/x` and :math:`-\log x` (Laplace transforms of
    non-negative measures) with small bias while averaging the noise over the whole
    curve rather than a window.
    """
    xn = (x - x[0]) / (x[-1] - x[0])
    taus = np.geomspace(float(np.min(np.diff(xn))) / 2.0, 4.0, KNEE_BASIS_SIZE)
    ones = np.ones_like(xn)
    basis = np.column_stack([np.exp(-xn[:, None] / taus[None, :]), 1.0 - xn, ones, -ones])
    scale = y[0] - y[-1]
    target = (y - y[-1]) / scale
    coef, _ = nnls(basis, target, maxiter=50 * basis.shape[1])
    return basis @ coef * scale + y[-1]


def knee_index(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> int | None:
    r"""Index of the knee of a convex, decreasing curve.

    The Kneedle point (Satopää et al. 2011): on axes normalised to ``[0, 1]`` by
    the curve's endpoints, the point farthest below the chord joining the first and
    last points,

    .. math::
        i^\star = \arg\max_i \; d_i, \qquad d_i = (1 - \hat y_i) - \hat x_i .

    Geometrically :math:`d_i` is proportional to the area of the triangle formed by
    point ``i`` and the two endpoints, the numerator of that triangle's Menger
    curvature :math:`4\,\mathrm{Area}/(|AP||PB||AB|)`: the curvature is *anchored* at
    the endpoints instead of taken over successive points (successive-point Menger
    curvature amplifies noise by :math:`1/h^2`). Maximising the anchored Menger
    curvature itself would also divide by :math:`|AP||PB|` and drift towards the
    endpoints, so the area is maximised, which is what kneed computes.

    Robustness: a curve that is already convex and non-increasing (up to
    ``KNEE_CONVEXITY_RTOL``) is used as is, so clean curves give exactly kneed's
    ``KneeLocator(x, y, curve="convex", direction="decreasing").knee`` (on ties the
    last of equal maxima, as kneed). Otherwise the points are noisy; they are fitted
    by a completely-monotone curve (:func:`_completely_monotone_fit`), whose Kneedle
    point is then moved to the nearest point that the raw data cannot rule out:
    raw :math:`d_i` within ``KNEE_NOISE_Z`` standard deviations of the raw maximum,
    the noise level estimated from the median absolute second difference. The
    smoother removes the jitter that makes the raw arg-max jump on smooth curves;
    the raw-data constraint keeps sharp elbows (which no smooth fit bends into)
    where they are.

    Parameters
    ----------
    x : array-like, shape (n,)
        Strictly increasing abscissae (any spacing).
    y : array-like, shape (n,)
        Ordinates of a (noisy) convex decreasing curve.

    Returns
    -------
    int or None
        ``None`` with fewer than 3 points, when ``y`` does not decrease from the
        first to the last point, or when no point lies below the chord (a straight
        line has no knee).
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got {xa.shape}, {ya.shape}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("x and y must be finite")
    if xa.size < 3:
        return None
    if np.any(np.diff(xa) <= 0):
        raise ValueError("x must be strictly increasing")
    if not ya[0] > ya[-1]:
        return None
    d_raw = _chord_distance(xa, ya)
    if _is_convex_nonincreasing(xa, ya):
        if not d_raw.max() > 0:
            return None
        return int(xa.size - 1 - np.argmax(d_raw[::-1]))
    smooth = _completely_monotone_fit(xa, ya)
    if smooth[0] > smooth[-1]:
        d_smooth = _chord_distance(xa, smooth)
        centre = int(np.argmax(d_smooth))
    else:  # the fit is flat: nothing to add to the raw data
        centre = int(np.argmax(d_raw))
    yn = ya / (ya[0] - ya[-1])
    noise = MAD_TO_SIGMA * float(np.median(np.abs(np.diff(yn, 2)))) / math.sqrt(6.0)
    candidates = np.flatnonzero(d_raw >= d_raw.max() - KNEE_NOISE_Z * math.sqrt(2.0) * noise)
    nearest = candidates[np.abs(candidates - centre) == np.min(np.abs(candidates - centre))]
    best = int(nearest[np.argmax(d_raw[nearest])])
    if not d_raw[best] > 0:
        return None
    return best


def _curve(points: Iterable[Any], axes: Axes) -> tuple[list[Any], np.ndarray, np.ndarray]:
    pts = list(points)
    if axes == "rd":
        usable = [
            pt for pt in pts if math.isfinite(pt.distortion) and math.isfinite(pt.rate) and pt.distortion > 0
        ]
        usable.sort(key=lambda pt: (pt.distortion, pt.level))
        kept: list[Any] = []
        for pt in usable:  # equal distortion: keep the smallest level reaching it
            if not kept or pt.distortion > kept[-1].distortion:
                kept.append(pt)
        return kept, np.array([pt.distortion for pt in kept]), np.array([pt.rate for pt in kept])
    if axes == "level":
        usable = sorted((pt for pt in pts if math.isfinite(pt.distortion)), key=lambda pt: pt.level)
        kept = []
        for pt in usable:
            if not kept or pt.level > kept[-1].level:
                kept.append(pt)
        return kept, np.array([float(pt.level) for pt in kept]), np.array([pt.distortion for pt in kept])
    raise ValueError(f"axes must be 'rd' or 'level', not {axes!r}")


def knee_point(points: Iterable[Any], *, axes: Axes = "rd") -> RDPoint | None:
    """The knee of a rate-distortion curve (:func:`knee_index`).

    Parameters
    ----------
    points : iterable of RDPoint
        In any order (anything with ``level``, ``rate`` and ``distortion``).
    axes : {"rd", "level"}
        ``"rd"`` (default): the rate-distortion curve itself, ``x`` = distortion,
        ``y`` = rate, which is convex and decreasing (Cover and Thomas, Lemma
        10.4.1). Points with distortion 0 (lossless, rate reported 0 by convention)
        are left out; of points with equal distortion the smallest level is kept.
        ``"level"``: ``x`` = level, ``y`` = distortion (the elbow of distortion
        against the number of nodes).

    Returns
    -------
    RDPoint or None
        The knee point (the caller's object), or ``None`` with fewer than 3 usable
        points or no knee.
    """
    kept, x, y = _curve(points, axes)
    index = knee_index(x, y) if len(kept) >= 3 else None
    return None if index is None else kept[index]


class RDTracker:
    """Refinement points added one at a time, sorted by level, with the current knee.

    Adding a point at a level already present replaces it (a refined measurement).
    The knee is recomputed lazily and equals :func:`knee_point` of :attr:`points`.

    Parameters
    ----------
    points : iterable of RDPoint, optional
        Initial points.
    axes : {"rd", "level"}
        Passed to :func:`knee_point`.
    """

    def __init__(self, points: Iterable[RDPoint] = (), *, axes: Axes = "rd") -> None:
        self._levels: list[int] = []
        self._points: list[RDPoint] = []
        self._axes: Axes = axes
        self._knee: RDPoint | None = None
        self._stale = False
        for point in points:
            self.add(point)

    def add(self, point: RDPoint) -> RDPoint | None:
        """Insert ``point`` (replacing one at the same level); return the new knee."""
        at = bisect.bisect_left(self._levels, point.level)
        if at < len(self._levels) and self._levels[at] == point.level:
            self._points[at] = point
        else:
            self._levels.insert(at, point.level)
            self._points.insert(at, point)
        self._stale = True
        return self.knee

    @property
    def points(self) -> tuple[RDPoint, ...]:
        """The points, sorted by level."""
        return tuple(self._points)

    @property
    def knee(self) -> RDPoint | None:
        """The current knee, or ``None`` with fewer than 3 usable points."""
        if self._stale:
            self._knee = knee_point(self._points, axes=self._axes)
            self._stale = False
        return self._knee

    def __len__(self) -> int:
        return len(self._points)
