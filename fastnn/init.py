"""Random initial weights (docs/design.md, section 5): never all-zero, reproducible from a seed.

He for relu/leaky_relu layers, Glorot (Xavier) for sigmoid/tanh/identity layers
and for the output layer, biases 0.  ``"torch"`` reproduces PyTorch's
``nn.Linear`` default, ``U(±1/√fan_in)`` for weights and biases.  Values are drawn
in float64 and rounded to the network's dtype, so a float32 and a float64 network
with the same seed start from the same point.
"""

import numpy as np

from fastnn import codes
from fastnn.layout import parameter_views

SCHEMES = ("auto", "he", "glorot", "torch")


def _he(rng, fan_in, fan_out):
    # normal with variance 2 / fan_in keeps the relu activations' scale
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_out, fan_in))


def _glorot(rng, fan_in, fan_out):
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=(fan_out, fan_in))


def initialize(params, table, hidden, scheme, rng):
    """Fill ``params`` in place.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    table : ndarray of int64, shape (L, 5)
    hidden : sequence of int, length L - 1
        Activation codes: layer ``l``'s scheme follows the activation it feeds.
    scheme : {"auto", "he", "glorot", "torch"}
    rng : numpy.random.Generator
    """
    weights, biases = parameter_views(params, table)
    for l, (W, b) in enumerate(zip(weights, biases)):
        fan_out, fan_in = W.shape
        if scheme == "torch":
            bound = 1.0 / np.sqrt(fan_in)
            W[...] = rng.uniform(-bound, bound, size=W.shape)
            b[...] = rng.uniform(-bound, bound, size=b.shape)
            continue
        feeds_relu = l < len(hidden) and hidden[l] in (codes.RELU, codes.LEAKY_RELU)
        use_he = scheme == "he" or (scheme == "auto" and feeds_relu)
        W[...] = (_he if use_he else _glorot)(rng, fan_in, fan_out)
        b[...] = 0
