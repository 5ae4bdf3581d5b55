"""Integer codes shared by the Numba kernels and the NumPy reference.

The kernels cannot take strings cheaply, so the API turns activation and output
names into these codes once, at the boundary.  Numba reads module-level integers
as compile-time constants.
"""

IDENTITY = 0
RELU = 1
SIGMOID = 2
TANH = 3
LEAKY_RELU = 4

#: hidden-layer activation names -> codes
ACTIVATIONS = {
    "identity": IDENTITY,
    "relu": RELU,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "leaky_relu": LEAKY_RELU,
}

#: slope of leaky_relu for negative inputs
LEAKY_SLOPE = 0.01

OUT_IDENTITY = 0
OUT_SIGMOID = 1
OUT_SOFTMAX = 2
OUT_EXP = 3

#: output names -> codes; each output is paired with its loss (docs/design.md, section 2)
OUTPUTS = {
    "identity": OUT_IDENTITY,
    "sigmoid": OUT_SIGMOID,
    "softmax": OUT_SOFTMAX,
    "exp": OUT_EXP,
}

#: the outputs that predict values rather than classes: no error rate, no class
#: weights, no ``predict_proba``; scored by R² (as scikit-learn's MLPRegressor,
#: whose ``loss="poisson"`` is the exp output)
REGRESSION_OUTPUTS = ("identity", "exp")

SGD = 0
ADAM = 1
ADAMW = 2

#: optimizer names -> codes (docs/design.md, section 4; PyTorch's formulas)
OPTIMIZERS = {
    "sgd": SGD,
    "adam": ADAM,
    "adamw": ADAMW,
}
