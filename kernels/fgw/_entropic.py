r"""Entropic FGW by projected gradient with Sinkhorn projections: the reference solver.

POT's ``ot.gromov.entropic_fused_gromov_wasserstein2(..., solver="PGD")``: projected
(mirror) gradient (Peyré et al. 2016),

.. math::
    T_{k+1} = \Phi(T_k) = \arg\min_{T\in\Pi(p,q)} \langle (1-\alpha)M
    + 2\alpha\,(c_{C_1,C_2} - 2\,C_1 T_k C_2^\top), T\rangle - \varepsilon H(T),

iterated to a fixed point (:mod:`kernels.fgw._square_loss` for the terms); the value
returned is the FGW objective :math:`E(T)` of the last projection, without the
entropy. :func:`solve_batch` runs a padded batch of pairs in any array-API
namespace. The projections are Sinkhorn iterations (:class:`SinkhornState`) in
scaling form with absorption of large scalings into log-domain potentials (Schmitzer
2019) and over-relaxation (Thibault et al. 2017), warm-started across outer
iterations, so they neither underflow at small :math:`\varepsilon` nor in float32.
Early projections, whose plans are about to move anyway, are solved to a tolerance
proportional to the last plan change, and near the fixed point the outer iteration
is Anderson-accelerated (Walker & Ni 2011). Neither moves the fixed point; both
loops are bounded and non-convergence is reported, never waited out.

References
----------
Peyré, Cuturi, Solomon. "Gromov-Wasserstein averaging of kernel and distance
matrices", ICML 2016.
Schmitzer. "Stabilized sparse scaling algorithms for entropy regularized transport
problems", SIAM J. Sci. Comput. 2019.
Thibault, Chizat, Dossal, Papadakis. "Overrelaxed Sinkhorn-Knopp algorithm for
regularized optimal transport", 2017.
Walker, Ni. "Anderson acceleration for fixed-point iterations", SIAM J. Numer. Anal. 2011.
Flamary et al. "POT: Python Optimal Transport", JMLR 2021 (``ot.gromov``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from kernels import backend as bk
from kernels.fgw._batch import Batch, FGWResult, store_finished
from kernels.fgw._square_loss import Structure, bdot

SINKHORN_TOL = 1e-9
r"""Inner Sinkhorn stop: :math:`\ell_1` errors of both of the plan's marginals. POT stops its
inner Sinkhorn at a 2-norm column error of 1e-9 (but after at most 1000 iterations); a
marginal error of :math:`\delta` moves the FGW value by :math:`O(\delta)`, so this
keeps values within 1e-8 of an exact projection."""

SINKHORN_MAX_ITER = 1_000
"""Inner Sinkhorn cap per projection (POT's ``numItermax``). Warm-started projections
need a few tens of iterations; the first one from cold potentials a few hundred."""

SINKHORN_FAILURES = 5
"""A pair stops, reported as not converged, once this many of its projections hit the
cap: at small epsilon some costs make Sinkhorn itself crawl (marginal errors still
1e-5 after 20000 iterations), and POT then iterates on plans that miss their
marginals for up to ``max_iter * 1000`` iterations. This bounds the work per pair at
about ``SINKHORN_FAILURES * SINKHORN_MAX_ITER`` slow iterations plus the fast ones."""

SINKHORN_INEXACT = 0.1
"""Inner tolerance as a fraction of the last outer plan change: early projections,
whose plans are about to move anyway, stop sooner. The first projection and those
before a stop are held to the floor tolerance."""

ANDERSON_DEPTH = 3
ANDERSON_START = 1e-4
ANDERSON_RESTART = 10.0
ANDERSON_REG = 1e-10
"""Anderson acceleration of the outer fixed-point iteration: history of 3 residuals,
switched on per pair once the plan change is below 1e-4 (inside the basin of the
fixed point POT's plain iteration reaches), skipped for a step whose change grew
tenfold; the least-squares Gram matrix gets a 1e-10 relative ridge. Halves the outer
iterations on the slow-contracting pairs; switched off when the namespace has no
``linalg``."""

SINKHORN_RETIRE_FRACTION = 0.25
"""Pairs whose projection has converged leave the working set once they are at least
this fraction of it: a retirement copies the working arrays once, so it pays only when
it shrinks them enough."""

SINKHORN_CHECK_EVERY = 5
"""Sinkhorn iterations between convergence checks: each check is a host sync (costly on
a GPU) and a reduction, the cap above is rounded up to a multiple of it."""

FLOAT32_TOL_FLOOR = 1e-6
"""Lowest tolerances used in float32 (outer plan change, inner marginal error): a plan
of total mass 1 carries rounding of about 1e-7 per reduction in float32, so the float64
defaults of 1e-9 would never be met and every float32 call would report non-convergence."""

ABSORB_LOG_THRESHOLD = {"float64": 200.0, "float32": 20.0}
r"""Scalings :math:`u, v` are folded into the potentials once :math:`|\log u|` or
:math:`|\log v|` exceeds this (:math:`e^{200} \approx 10^{87}` of float64's
:math:`10^{308}`, :math:`e^{20} \approx 5 \cdot 10^{8}` of float32's :math:`10^{38}`): a
larger value absorbs less often (each absorption is one exponential pass over the
batch), a smaller one keeps more range in reserve."""


class SinkhornState:
    r"""Warm-startable Sinkhorn projections for a batch, with absorption.

    The plan of a projection is :math:`T = \mathrm{diag}(u)\,K\,\mathrm{diag}(v)` with
    :math:`K = \exp((f \oplus g - C)/\varepsilon)`. The potentials :math:`f, g` carry
    the scale (they persist across outer iterations, which is the warm start); the
    scalings :math:`u, v` stay near 1 and are folded into :math:`f, g` whenever their
    logs exceed ``absorb_at`` (Schmitzer 2019). Updates are over-relaxed,
    :math:`u \leftarrow u^{1-\omega} (p / K v)^{\omega}` with :math:`\omega = 3/2`
    (Thibault et al. 2017): the same fixed point as Sinkhorn in fewer iterations, with
    a square root rather than a power. Pairs that meet their tolerance leave the
    working set. Padded (zero-weight) rows and columns keep scaling 1 and never divide
    by zero: their kernel rows and columns are zero, so they carry no mass.

    Parameters
    ----------
    xp : namespace
    p, q : arrays, shapes (B, N), (B, M)
        The weights (zero on padding).
    epsilon : float
        Regularisation :math:`\varepsilon`.
    float32 : bool
        Whether the arrays are float32 (absorption then comes sooner).
    """

    def __init__(self, xp: ModuleType, p: Any, q: Any, epsilon: float, float32: bool) -> None:
        self.xp = xp
        self.p, self.q = p, q
        rowmask = p > 0
        self.log_p = xp.where(
            rowmask, xp.log(xp.where(rowmask, p, xp.ones_like(p))), xp.full_like(p, -xp.inf)
        )
        self.f, self.g = xp.zeros_like(p), xp.zeros_like(q)
        self.pad_u = xp.astype(~rowmask, p.dtype)
        self.pad_v = xp.astype(~(q > 0), q.dtype)
        self.tiny = float(xp.finfo(p.dtype).smallest_normal)
        self.padded = bool(xp.any(~rowmask)) or bool(xp.any(q <= 0))
        self.epsilon = epsilon
        self.float32 = float32
        self.absorb_at = ABSORB_LOG_THRESHOLD["float32" if float32 else "float64"]

    _PER_PAIR = ("p", "q", "log_p", "f", "g", "pad_u", "pad_v")

    def take(self, idx: Any) -> None:
        xp = self.xp
        for name in self._PER_PAIR:
            setattr(self, name, xp.take(getattr(self, name), idx, axis=0))

    def _kernel(self, w: dict[str, Any]) -> Any:
        r""":math:`K` for the working set ``w`` (scores ``-C/eps``, ``-inf`` off the support).

        float64 takes the plain exponential of :math:`(f \oplus g)/\varepsilon - C/\varepsilon`
        when it is safe (checked: no overflow, no row emptied by underflow); otherwise,
        and always in float32, the log-domain row update renormalises ``f`` first.
        """
        xp, eps = self.xp, self.epsilon
        s = w["neg_cost"] + (w["g"] / eps)[:, None, :]
        if not self.float32:
            K = xp.exp(s + (w["f"] / eps)[:, :, None])
            rows = xp.sum(K, axis=2)
            if bool(xp.all(xp.isfinite(rows) & ((rows > 0) | (w["pad_u"] > 0)))) and self._cols_ok(K, w):
                return K
        K, phi = bk.exp_normalized(s, w["log_p"], xp=xp)
        w["f"] = eps * phi
        if not self._cols_ok(K, w):
            # a column lost to underflow: move its potential up to the row scale
            cols = xp.max(s + phi[:, :, None], axis=1)
            g_fix = xp.where(w["pad_v"] > 0, xp.zeros_like(cols), -cols)
            w["g"] = w["g"] + eps * g_fix
            s = w["neg_cost"] + (w["g"] / eps)[:, None, :]
            K, phi = bk.exp_normalized(s, w["log_p"], xp=xp)
            w["f"] = eps * phi
        return K

    def _cols_ok(self, K: Any, w: dict[str, Any]) -> bool:
        xp = self.xp
        cols = xp.sum(K, axis=1)
        return bool(xp.all((cols > 0) | (w["pad_v"] > 0)))

    def _log(self, x: Any) -> Any:
        """Log of a scaling, clamped to the finite range (a lost row or column shows as a
        large log and is absorbed, not as an infinity that would poison the potentials)."""
        xp = self.xp
        # minimum/maximum rather than clip: array_api_compat's numpy clip broadcasts its
        # bounds to full arrays on every call
        return xp.log(xp.minimum(xp.maximum(x, self.tiny), 1.0 / self.tiny))

    def project(self, neg_cost: Any, tol: np.ndarray) -> tuple[Any, np.ndarray]:
        r"""Project onto the marginals for the scores :math:`-C/\varepsilon`.

        Parameters
        ----------
        neg_cost : array, shape (B, N, M)
            :math:`-C/\varepsilon`, ``-inf`` off the support (padding).
        tol : ndarray, shape (B,), float64
            Per-pair tolerance on the :math:`\ell_1` errors of both marginals.

        Returns
        -------
        plans : array, shape (B, N, M)
        ok : ndarray, shape (B,), bool
            Whether the tolerance was met within :data:`SINKHORN_MAX_ITER` iterations.

        Updates the potentials ``f, g`` (the warm start of the next projection).
        """
        xp, eps, tiny = self.xp, self.epsilon, self.tiny
        w = {name: getattr(self, name) for name in self._PER_PAIR}
        w["neg_cost"] = neg_cost
        rows = np.arange(neg_cost.shape[0])  # batch index of each working pair
        tol = np.asarray(tol, dtype=np.float64)
        K = self._kernel(w)
        u, v = xp.ones_like(w["p"]), xp.ones_like(w["q"])
        ktu = None
        err = np.full(rows.size, np.inf)
        done: list[tuple[np.ndarray, Any, Any, Any, np.ndarray]] = []
        n_blocks = -(-SINKHORN_MAX_ITER // SINKHORN_CHECK_EVERY)
        for block in range(n_blocks + 1):
            kv = xp.matmul(K, v[:, :, None])[:, :, 0]
            if ktu is not None:
                # l1 marginal errors of the current plan diag(u) K diag(v)
                row_err = xp.sum(xp.abs(u * kv - w["p"]), axis=1)
                col_err = xp.sum(xp.abs(v * ktu - w["q"]), axis=1)
                err = np.asarray(bk.to_numpy(xp.maximum(row_err, col_err)), dtype=np.float64)
                ok = err <= tol
                if ok.all() or block == n_blocks:
                    break
                log_u, log_v = self._log(u), self._log(v)
                worst = float(bk.to_numpy(xp.maximum(xp.max(xp.abs(log_u)), xp.max(xp.abs(log_v)))))
                if worst > self.absorb_at:
                    w["f"] = w["f"] + eps * log_u
                    w["g"] = w["g"] + eps * log_v
                    K = self._kernel(w)
                    u, v, ktu = xp.ones_like(u), xp.ones_like(v), None
                    kv = xp.matmul(K, v[:, :, None])[:, :, 0]
                elif ok.sum() >= SINKHORN_RETIRE_FRACTION * ok.size:
                    done.append(self._finish(np.flatnonzero(ok), rows, K, u, v, w, ok))
                    keep = np.flatnonzero(~ok)
                    idx = bk.asarray_on(keep, xp, device=bk.array_device(K))
                    K, u, v, ktu, kv = (xp.take(x, idx, axis=0) for x in (K, u, v, ktu, kv))
                    w = {name: xp.take(x, idx, axis=0) for name, x in w.items()}
                    rows, tol, err = rows[keep], tol[keep], err[keep]
            if self.padded:
                p1, q1 = w["p"] + w["pad_u"], w["q"] + w["pad_v"]
            for step in range(SINKHORN_CHECK_EVERY):
                if step:
                    kv = xp.matmul(K, v[:, :, None])[:, :, 0]
                if self.padded:
                    un = p1 / xp.maximum(kv + w["pad_u"], tiny)
                else:  # kernel rows are positive (checked when built) and v > 0
                    un = w["p"] / kv
                # over-relaxed step u^(1-w) un^w with w = 3/2 (the plain step at the start)
                u = un if ktu is None else un * xp.sqrt(un / u)
                ktu = xp.matmul(u[:, None, :], K)[:, 0, :]
                if self.padded:
                    vn = q1 / xp.maximum(ktu + w["pad_v"], tiny)
                else:
                    vn = w["q"] / ktu
                v = vn * xp.sqrt(vn / v)
        done.append(self._finish(np.arange(rows.size), rows, K, u, v, w, err <= tol))
        if len(done) == 1:
            _, plan, self.f, self.g, ok_all = done[0]
            return plan, ok_all
        order = np.concatenate([d[0] for d in done])
        inverse = bk.asarray_on(np.argsort(order), xp, device=bk.array_device(K))
        plan, self.f, self.g = (
            xp.take(xp.concat([d[i] for d in done], axis=0), inverse, axis=0) for i in (1, 2, 3)
        )
        ok_all = np.concatenate([d[4] for d in done])[np.argsort(order)]
        return plan, ok_all

    def _finish(
        self,
        sel: np.ndarray,
        rows: np.ndarray,
        K: Any,
        u: Any,
        v: Any,
        w: dict[str, Any],
        ok: np.ndarray,
    ) -> tuple[np.ndarray, Any, Any, Any, np.ndarray]:
        """Plans and absorbed potentials of working pairs ``sel``: (batch rows, plan, f, g, ok)."""
        xp, eps = self.xp, self.epsilon
        if sel.size != rows.size:
            idx = bk.asarray_on(sel, xp, device=bk.array_device(K))
            K, u, v = (xp.take(x, idx, axis=0) for x in (K, u, v))
            f, g = xp.take(w["f"], idx, axis=0), xp.take(w["g"], idx, axis=0)
        else:
            f, g = w["f"], w["g"]
        plan = K * (u[:, :, None] * v[:, None, :])
        return rows[sel], plan, f + eps * self._log(u), g + eps * self._log(v), ok[sel]


def solve_batch(
    b: Batch, alpha: float, epsilon: float, max_iter: int, tol: float, return_plan: bool
) -> list[FGWResult]:
    r"""Projected gradient with Sinkhorn projections for a padded batch (POT's PGD).

    Iterates :math:`T_{k+1} = \Phi(T_k)`, :math:`\Phi(T) = \mathrm{Sinkhorn}_\varepsilon(p, q,
    (1-\alpha) M + \alpha \nabla_T \mathrm{GW}(T))` from :math:`T_0 = p q^\top` until
    :math:`\|\Phi(T_k) - T_k\|_F \le` ``tol``, like POT. Two things make it cheaper
    without moving the fixed point: the projections are solved to a tolerance
    proportional to the last plan change (:data:`SINKHORN_INEXACT`; the first one and
    the last ones are tight), and once a pair is within :data:`ANDERSON_START` of its
    fixed point the next input is the Anderson-extrapolated plan (depth
    :data:`ANDERSON_DEPTH`) rather than the last output. Far from a fixed point the
    iteration is POT's plain one, so it settles in the same basin.

    Parameters
    ----------
    b : Batch
        The pairs, padded to ``(B, N, M)`` in the namespace ``b.xp``, float32 or float64.
    alpha : float
        Trade-off in [0, 1].
    epsilon : float
        Entropic regularisation, in the units of ``M``.
    max_iter : int
        Outer iteration (projection) cap.
    tol : float
        Outer stop on the Frobenius norm of the plan's change (floored at
        :data:`FLOAT32_TOL_FLOOR` in float32).
    return_plan : bool
        Keep the plans (in ``b.xp``, without padding).

    Returns
    -------
    list of FGWResult
        In the order of the batch; the value is taken at the last projection
        :math:`\Phi(T_k)`, a plan meeting the marginals, without the entropy term.
        ``converged`` is false for a pair that hit ``max_iter``, whose projections hit
        :data:`SINKHORN_MAX_ITER` :data:`SINKHORN_FAILURES` times, or whose plan
        change is not finite.
    """
    xp = b.xp
    st = Structure(b)
    B = len(b.sizes)
    float32 = str(b.M.dtype).rsplit(".", 1)[-1] == "float32"
    outer_tol = max(tol, FLOAT32_TOL_FLOOR) if float32 else tol
    inner_floor = max(SINKHORN_TOL, FLOAT32_TOL_FLOOR) if float32 else SINKHORN_TOL
    sk = SinkhornState(xp, b.p, b.q, epsilon, float32)
    Mlin = (1.0 - alpha) * b.M
    mask = (b.p > 0)[:, :, None] & (b.q > 0)[:, None, :]
    # -C/eps = base + coef * (L(X) [+ L^T(X)]), with -inf off the support (padding)
    if st.symmetric:
        base = -(Mlin + 2.0 * alpha * st.constC) / epsilon
        coef = 2.0 * alpha / epsilon
    else:
        base = -(Mlin + alpha * (st.constC + st.constCt)) / epsilon
        coef = alpha / epsilon
    base = xp.where(mask, base, xp.full_like(base, -xp.inf))
    X = b.p[:, :, None] * b.q[:, None, :]
    LX = st.tensor_rank1(b.p, b.q)
    if not st.symmetric:
        LX = LX + st.tensor_t_rank1(b.p, b.q)
    flat = X.shape[1] * X.shape[2]
    depth = ANDERSON_DEPTH if hasattr(xp, "linalg") else 0
    hist_r = xp.zeros((B, depth, flat), dtype=X.dtype, device=bk.array_device(X))
    hist_f = xp.zeros_like(hist_r)
    prev_r = prev_f = None
    err_prev = np.zeros(B)  # first projection tight
    failures = np.zeros(B, dtype=np.int64)

    active = np.arange(B)
    results: list[FGWResult | None] = [None] * B
    for it in range(1, max_iter + 1):
        inner_tol = np.maximum(inner_floor, SINKHORN_INEXACT * err_prev)
        F, inner_ok = sk.project(base + coef * LX, inner_tol)
        R = xp.reshape(F - X, (F.shape[0], flat))
        Ff = xp.reshape(F, (F.shape[0], flat))
        err = np.asarray(bk.to_numpy(xp.sqrt(xp.sum(R * R, axis=1))), dtype=np.float64)
        tight = inner_tol <= inner_floor
        failures = failures + ~inner_ok
        stalled = (err <= outer_tol) & tight & ~inner_ok
        done = (err <= outer_tol) & tight & inner_ok
        finished = done | stalled | (failures >= SINKHORN_FAILURES) | (it >= max_iter) | ~np.isfinite(err)
        if depth and prev_r is not None:
            slot = (it - 2) % depth
            hist_r[:, slot, :] = R - prev_r
            hist_f[:, slot, :] = Ff - prev_f
        prev_r, prev_f = R, Ff
        use = (err < ANDERSON_START) & (err <= ANDERSON_RESTART * err_prev) & (it > 1)
        if depth and use.any():
            gram = xp.matmul(hist_r, xp.linalg.matrix_transpose(hist_r))
            reg = ANDERSON_REG * xp.sum(xp.reshape(gram, (gram.shape[0], -1)), axis=1) + 1e-300
            eye = xp.eye(depth, dtype=X.dtype, device=bk.array_device(X))
            gram = gram + reg[:, None, None] * eye
            gamma = xp.linalg.solve(gram, xp.matmul(hist_r, R[:, :, None]))  # (B, depth, 1)
            use_dev = bk.asarray_on(use, xp, device=bk.array_device(X))
            gamma = xp.where(use_dev[:, None, None], gamma, xp.zeros_like(gamma))
            Xf = Ff - xp.matmul(xp.linalg.matrix_transpose(gamma), hist_f)[:, 0, :]
            X = xp.reshape(Xf, F.shape)
        else:
            X = F
        err_prev = np.where(np.isfinite(err), err, 0.0)
        if finished.any():
            rows = np.flatnonzero(finished)
            idx = bk.asarray_on(rows, xp, device=bk.array_device(F))
            if rows.size == len(active):
                Fd, LF, cC, Ml = F, st.tensor(F), st.constC, Mlin
            else:
                Fd = xp.take(F, idx, axis=0)
                LF = xp.matmul(xp.matmul(xp.take(st.C1, idx, axis=0), Fd), xp.take(st.h2t, idx, axis=0))
                cC = xp.take(st.constC, idx, axis=0)
                Ml = xp.take(Mlin, idx, axis=0)
            value = np.asarray(
                bk.to_numpy(bdot(xp, Ml, Fd) + alpha * bdot(xp, cC - LF, Fd)), dtype=np.float64
            )
            store_finished(
                results,
                b,
                active,
                rows,
                value,
                Fd if return_plan else None,
                it,
                done,
                positions=range(len(rows)),
            )
            keep = np.flatnonzero(~finished)
            if keep.size == 0:
                break
            idx = bk.asarray_on(keep, xp, device=bk.array_device(F))
            active, err_prev, failures = active[keep], err_prev[keep], failures[keep]
            X, Mlin, base, hist_r, hist_f, prev_r, prev_f = (
                xp.take(x, idx, axis=0) for x in (X, Mlin, base, hist_r, hist_f, prev_r, prev_f)
            )
            st.take(idx)
            sk.take(idx)
        LX = st.tensor(X)
        if not st.symmetric:
            LX = LX + st.tensor_t(X)
    return results  # type: ignore[return-value]
