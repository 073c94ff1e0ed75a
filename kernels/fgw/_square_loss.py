r"""The square loss's terms for a padded batch, without the 4-way tensor.

For structures :math:`C_1` (``n x n``), :math:`C_2` (``m x m``) and weights
:math:`p, q`, Peyré et al. (2016), Prop. 1, write the Gromov-Wasserstein term of a
coupling :math:`T \in \Pi(p, q)` as

.. math::
    \sum_{ijkl} (C_{1,ik} - C_{2,jl})^2 T_{ij}T_{kl} = \langle c_{C_1,C_2} - L(T), T\rangle,
    \qquad c_{C_1,C_2} = (C_1^{\odot 2} p)\,1^\top + 1\,(C_2^{\odot 2} q)^\top,
    \qquad L(T) = C_1 T (2 C_2)^\top,

so that one evaluation costs two matrix products (the "tensor product"), and the
gradient is :math:`2(c_{C_1,C_2} - L(T))`, or for non-symmetric structures POT's
average of it and the same with :math:`C_1^\top, C_2^\top`. This is POT's
``ot.gromov.init_matrix`` / ``tensor_product`` / ``gwggrad`` for ``loss_fun="square_loss"``,
batched over a leading axis.

References
----------
Peyré, Cuturi, Solomon. "Gromov-Wasserstein averaging of kernel and distance
matrices", ICML 2016.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from kernels.fgw._batch import Batch


class Structure:
    r"""Precomputed square-loss terms of a :class:`~kernels.fgw._batch.Batch`.

    Attributes
    ----------
    constC : array, shape (B, N, M)
        :math:`c_{C_1,C_2}`.
    constCt : array, shape (B, N, M)
        The same for :math:`C_1^\top, C_2^\top` (non-symmetric batches only).
    symmetric : bool
        Whether the batch's structures passed POT's symmetry test.
    """

    def __init__(self, b: Batch) -> None:
        xp = b.xp
        self.xp = xp
        self.symmetric = b.symmetric
        self.C1 = b.C1
        self.h2t = 2.0 * xp.linalg.matrix_transpose(b.C2)  # (hC2)^T with hC2 = 2 C2
        f1 = xp.matmul(b.C1 * b.C1, b.p[..., None])  # (B, N, 1)
        f2 = xp.matmul(b.C2 * b.C2, b.q[..., None])  # (B, M, 1)
        self.constC = f1 + xp.linalg.matrix_transpose(f2)
        if not self.symmetric:
            self.C1t = xp.linalg.matrix_transpose(b.C1)
            self.h2 = 2.0 * b.C2
            f1t = xp.matmul(self.C1t * self.C1t, b.p[..., None])
            c2t = xp.linalg.matrix_transpose(b.C2)
            f2t = xp.matmul(c2t * c2t, b.q[..., None])
            self.constCt = f1t + xp.linalg.matrix_transpose(f2t)

    def take(self, idx: Any) -> None:
        """Keep only the pairs ``idx`` (an index array of ``xp``)."""
        xp = self.xp
        for name in ("C1", "h2t", "constC", "C1t", "h2", "constCt"):
            if hasattr(self, name):
                setattr(self, name, xp.take(getattr(self, name), idx, axis=0))

    def tensor(self, X: Any) -> Any:
        r""":math:`L(X) = C_1 X (2C_2)^\top` for ``X`` ``(B, N, M)``: two batched products."""
        xp = self.xp
        return xp.matmul(xp.matmul(self.C1, X), self.h2t)

    def tensor_t(self, X: Any) -> Any:
        r""":math:`L^\top(X) = C_1^\top X (2C_2)` (non-symmetric structures only)."""
        xp = self.xp
        return xp.matmul(xp.matmul(self.C1t, X), self.h2)

    def tensor_rank1(self, p: Any, q: Any) -> Any:
        r""":math:`L(p q^\top) = (C_1 p)(2 C_2 q)^\top` without forming the product;
        ``p`` ``(B, N)``, ``q`` ``(B, M)``."""
        xp = self.xp
        left = xp.matmul(self.C1, p[..., None])
        right = xp.matmul(q[:, None, :], self.h2t)
        return left * right

    def tensor_t_rank1(self, p: Any, q: Any) -> Any:
        r""":math:`L^\top(p q^\top)` (non-symmetric structures only)."""
        xp = self.xp
        left = xp.matmul(self.C1t, p[..., None])
        right = xp.matmul(q[:, None, :], self.h2)
        return left * right


def bdot(xp: ModuleType, a: Any, b: Any) -> Any:
    """Per-pair Frobenius inner product of two ``(B, N, M)`` stacks, shape ``(B,)``.

    A matmul of ``(B, 1, k)`` by ``(B, k, 1)``: one BLAS dot per pair, where
    array_api_compat's ``vecdot`` for numpy goes through a generic broadcast.
    """
    k = a.shape[1] * a.shape[2]
    out = xp.matmul(xp.reshape(a, (a.shape[0], 1, k)), xp.reshape(b, (b.shape[0], k, 1)))
    return out[:, 0, 0]
