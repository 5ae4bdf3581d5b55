"""The full-batch objective and its gradient in one pass, for quasi-Newton solvers.

``scipy.optimize.minimize(..., jac=True)`` wants ``f(θ) -> (J, ∇J)``.  One
call here is one forward pass, the output deltas (whose kernel returns the
loss total as it writes them) and one backward pass: no second forward pass
for the loss.  The workspace and the gradient buffer are allocated once, for
every evaluation of a fit.
"""

import numpy as np

from fastnn.aligned import aligned_zeros_like


def loss_and_gradient(network, X, Y, weights, weight_decay, workspace, grad):
    """One forward and one backward pass over all rows; returns ``Σ w_i L_i``.

    Parameters
    ----------
    network : fastnn.Network
    X : ndarray, shape (n, d_0); Y : ndarray, shape (n, d_L); weights : ndarray, shape (n,)
        Converted rows (dense, or the kernels' CSR), dense targets and row weights, of
        the network's dtype.
    weight_decay : float
        ``λ``: ``grad`` is the gradient of ``Σ w_i L_i / Σ w_i + (λ/2) Σ‖W_l‖²``.
    workspace : fastnn.workspace.Workspace
        For ``n`` rows.
    grad : ndarray, shape (n_params,)
        Written.

    Returns
    -------
    float
        The weighted loss total (the output deltas' kernel returns it as it writes
        them: no second forward pass).  Call it inside ``network.thread_scope()``.
    """
    architecture, kernels = network.architecture, network.kernels
    n = X.shape[0]
    kernels.forward(network.params, architecture.table, architecture.hidden, X, workspace.acts)
    total = kernels.output_delta(architecture.output_code, workspace.logits(n), Y, weights,
                                 network.dtype.type(1.0 / weights.sum(dtype=np.float64)),
                                 workspace.output_deltas(n))
    kernels.backward(network.params, architecture.table, architecture.hidden, X,
                     workspace.acts, workspace.deltas, network.dtype.type(weight_decay), grad)
    return total


def weight_squares(network):
    """``Σ‖W_l‖²`` over the weight matrices (not the biases), in float64."""
    return sum(float(np.einsum("ij,ij->", W, W, dtype=np.float64)) for W in network.weights)


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
    X : ndarray or scipy.sparse.csr_array, shape (n, d_0), of the network's dtype
        Converted as :meth:`fastnn.architecture.Architecture.features` converts them.
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
        self.grad = aligned_zeros_like(network.params)
        self.total = float(weights.sum(dtype=np.float64))
        self.factor = float(factor)
        # fastnn's λ (on the mean loss): scikit-learn's α / Σw
        self.decay = float(alpha) / self.total

    def __call__(self, theta):
        """``(J, ∇J)`` at ``theta`` (float64, shape (n_params,)), both float64.

        Call it inside ``network.thread_scope()``.
        """
        network = self.network
        network.params = theta  # cast into the network's buffer
        loss_total = loss_and_gradient(network, self.X, self.Y, self.weights, self.decay,
                                       self.workspace, self.grad)
        loss = (self.factor * loss_total / self.total
                + 0.5 * self.decay * weight_squares(network))
        return loss, self.grad.astype(np.float64)
