"""The full-batch objective and its gradient in one pass, for quasi-Newton solvers.

``scipy.optimize.minimize(..., jac=True)`` wants ``f(θ) -> (J, ∇J)``.  One
call here is one forward pass, the output deltas (whose kernel returns the
loss total as it writes them) and one backward pass: no second forward pass
for the loss.  The workspace and the gradient buffer are allocated once, for
every evaluation of a fit.
"""

import numpy as np


class FullBatchObjective:
    """``J(θ) = factor · (Σ w_i L_i / Σ w_i) + (α / 2) Σ‖W_l‖² / Σ w_i`` over all rows.

    scikit-learn's objective for ``solver="lbfgs"``; biases are not
    penalised.  ``factor`` is ``1 / d_L`` for its squared error, which
    averages the loss over the outputs; its gradient, though, is that of the
    loss summed over the outputs (its output delta is ``ŷ - y``, not divided
    by ``d_L``), and so is the gradient returned here (``factor`` 1 in it):
    the pair scikit-learn hands to L-BFGS-B, kept so that a fit takes its path.

    Parameters
    ----------
    network : fastnn.Network
        Its parameters are overwritten by every evaluation.
    X : ndarray, shape (n, d_0), of the network's dtype
    Y : ndarray, shape (n, d_L), of the network's dtype
        Dense targets, as :meth:`fastnn.Network.fit` converts them.
    weights : ndarray, shape (n,), of the network's dtype
        Row weights ``w_i`` (ones for the plain mean).
    alpha : float
        scikit-learn's L2 penalty ``α``.
    factor : float
        Scale of the data term.
    """

    def __init__(self, network, X, Y, weights, alpha, factor):
        self.network, self.X, self.Y, self.weights = network, X, Y, weights
        architecture = network.architecture
        self.workspace = architecture.workspace(X.shape[0])
        self.grad = np.empty_like(network.params)
        total = float(weights.sum(dtype=np.float64))
        self.scale = network.dtype.type(1.0 / total)
        self.factor = float(factor)
        # fastnn's λ (on the mean loss): scikit-learn's α / Σw
        self.decay = float(alpha) / total
        self.evaluations = 0

    def __call__(self, theta):
        """``(J, ∇J)`` at ``theta`` (float64, shape (n_params,)), both float64.

        Call it inside ``network.thread_scope()``.
        """
        network, workspace = self.network, self.workspace
        architecture, kernels = network.architecture, network.kernels
        network.params = theta  # cast into the network's buffer
        n = self.X.shape[0]
        kernels.forward(network.params, architecture.table, architecture.hidden, self.X,
                        workspace.acts)
        loss_total = kernels.output_delta(architecture.output_code, workspace.logits(n), self.Y,
                                          self.weights, self.scale, workspace.output_deltas(n))
        kernels.backward(network.params, architecture.table, architecture.hidden, self.X,
                         workspace.acts, workspace.deltas, network.dtype.type(self.decay),
                         self.grad)
        squares = sum(float(np.einsum("ij,ij->", W, W, dtype=np.float64)) for W in network.weights)
        loss = self.factor * loss_total * float(self.scale) + 0.5 * self.decay * squares
        self.evaluations += 1
        return loss, self.grad.astype(np.float64)
