"""The :class:`Architecture`: what a network is, apart from the values of its parameters.

Everything the training code, the model files, the distributed run and the
scikit-learn estimators need to know about a network's shape passes through
this one object: the checked layer sizes, activations, output and dtype, the
codes and the layer table the kernels take, the conversion of inputs and
targets, and the workspace allocator (docs/design.md, "The interface between
the network and the training code").
"""


from fastnn import codes
from fastnn.aligned import aligned_zeros
from fastnn.layout import layer_table, n_params, n_units
from fastnn.validation import (
    as_features,
    as_sparse_features,
    as_targets,
    check_activation,
    check_dtype,
    check_output,
    check_sizes,
    is_sparse,
)
from fastnn.workspace import Workspace


class Architecture:
    """The checked description of a fully connected network.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``d_0, ..., d_L``.
    activation : str or sequence of str, default "relu"
        One hidden activation for every hidden layer, or one per hidden layer.
    output : {"softmax", "sigmoid", "identity", "exp"}, default "softmax"
        The output and its loss (docs/design.md, section 2); identity and exp
        (Poisson) are the regression outputs, ``codes.REGRESSION_OUTPUTS``.
    dtype : {"float32", "float64"}, default "float32"

    Attributes
    ----------
    sizes : tuple of int, length L + 1
    activation : tuple of str, length L - 1
    output : str
    dtype : numpy.dtype
    table : ndarray of int64, shape (L, 5)
        Where each layer's ``W`` and ``b`` live in the flat buffers and where its
        block lives in a workspace (:func:`fastnn.layout.layer_table`).
    hidden : ndarray of int64, shape (L - 1,)
        The activation code of each hidden layer (:mod:`fastnn.codes`).
    output_code : int
        The output's code; it fixes the loss.
    n_params : int
        Length of the flat parameter buffer.
    n_units : int
        Units in layers 1..L: a workspace holds this many values per row.

    Raises
    ------
    ValueError, TypeError
        A size, name or dtype is not one the kernels support.
    """

    def __init__(self, sizes, activation="relu", output="softmax", dtype="float32"):
        self.sizes = check_sizes(sizes)
        self.activation, self.hidden = check_activation(activation, len(self.sizes) - 2)
        self.output = check_output(output, self.sizes[-1])
        self.dtype = check_dtype(dtype)
        self.output_code = codes.OUTPUTS[self.output]
        self.table = layer_table(self.sizes)
        self.n_params = int(n_params(self.table))
        self.n_units = int(n_units(self.table))

    # ------------------------------------------------------------ conversions

    def features(self, X, name="X"):
        """Checked inputs, shape (n, d_0): a C-contiguous, writable ndarray of the dtype, or,
        for any scipy.sparse ``X``, the kernels' ``csr_array`` (never densified)."""
        if is_sparse(X):
            return as_sparse_features(X, self.sizes[0], self.dtype, name=name)
        return as_features(X, self.sizes[0], self.dtype, name=name)

    def targets(self, y, n_rows):
        """Checked dense targets of the dtype, shape (n_rows, d_L) (see ``Network.fit``)."""
        return as_targets(y, self.output, self.sizes[-1], n_rows, self.dtype)

    def workspace(self, rows, *, deltas=True, gather=False, sparse=False):
        """The buffers one pass of the kernels writes, for batches of up to ``rows`` rows.

        See :class:`fastnn.workspace.Workspace`.
        """
        return Workspace(self, rows, deltas=deltas, gather=gather, sparse=sparse)

    def new_params(self):
        """A zeroed flat parameter buffer, shape (n_params,), of the dtype."""
        return aligned_zeros(self.n_params, self.dtype)

    # ------------------------------------------------------------ identity

    def fields(self):
        """The description as plain values (JSON-ready): sizes, activation, output, dtype."""
        return {"sizes": list(self.sizes), "activation": list(self.activation),
                "output": self.output, "dtype": self.dtype.name}

    def describe(self):
        """``784-200-10 relu/softmax`` (``784-10 softmax`` without hidden layers)."""
        names = list(dict.fromkeys(self.activation))
        hidden = ((names[0] if len(names) == 1 else ",".join(self.activation)) + "/"
                  if names else "")
        return f"{'-'.join(map(str, self.sizes))} {hidden}{self.output}"

    def __eq__(self, other):
        if not isinstance(other, Architecture):
            return NotImplemented
        return self.fields() == other.fields()

    def __hash__(self):
        return hash((self.sizes, self.activation, self.output, self.dtype.name))

    def __repr__(self):
        return (f"Architecture({list(self.sizes)}, activation={list(self.activation)!r}, "
                f"output={self.output!r}, dtype={self.dtype.name!r})")
