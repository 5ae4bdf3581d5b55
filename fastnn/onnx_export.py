"""A :class:`fastnn.Network` as a standard ONNX graph, for any ONNX runtime.

The graph is the forward pass and nothing else: one ``Gemm`` per layer
(``Z = A Wᵀ + b``, the weights stored as fastnn holds them, ``(d_l,
d_{l-1})``, with ``transB=1``), each hidden layer's activation, then the
output: probabilities (``Softmax`` over axis 1, or ``Sigmoid``) or, for an
identity output, the values themselves.  Every operator is in the default
ONNX domain and exists unchanged since opset 13, so a runtime that reads the
chosen opset runs the graph; the batch dimension is symbolic (``"batch"``).

onnx is an optional dependency (``pip install "fastnn[onnx]"``), imported
only when a graph is built.  :mod:`fastnn.onnx` uses :func:`forward_graph`
for its skl2onnx converters, so the estimators' graphs are the same.
"""

import numpy as np

from fastnn import codes
from fastnn.files import write_atomically
from fastnn.optional import require

__all__ = ["OPSET", "MIN_OPSET", "INSTALL_HINT", "require_onnx", "forward_graph",
           "network_model", "export_network"]

#: the default opset: every onnxruntime since 1.12 (2022) runs it
OPSET = 17
#: the oldest opset the graph may declare: Softmax's single-axis semantics (13)
#: are what fastnn computes; before 13, Softmax flattened the trailing axes
MIN_OPSET = 13

INSTALL_HINT = 'pip install "fastnn[onnx]"'

#: hidden activation -> (ONNX operator, attributes); identity adds no node
HIDDEN_OPERATORS = {
    "identity": None,
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "logistic": ("Sigmoid", {}),  # scikit-learn's name for the sigmoid
    "tanh": ("Tanh", {}),
    # the slope fastnn's kernels use (reference.activate: z if z > 0 else 0.01 z);
    # ONNX attributes are 32-bit floats, so a float64 graph's slope is
    # float32(0.01), 2e-10 relative off (the standard operator is worth it)
    "leaky_relu": ("LeakyRelu", {"alpha": codes.LEAKY_SLOPE}),
}

#: output -> (ONNX operator, attributes); identity leaves the logits as they are
OUTPUT_OPERATORS = {
    "softmax": ("Softmax", {"axis": 1}),
    "sigmoid": ("Sigmoid", {}),
    "logistic": ("Sigmoid", {}),
    "exp": ("Exp", {}),  # the Poisson mean of MLPRegressor(loss="poisson")
    "identity": None,
}

#: the graph's output name, by output: what a caller reads
OUTPUT_NAMES = {"softmax": "probabilities", "sigmoid": "probabilities",
                "logistic": "probabilities", "identity": "values", "exp": "values"}


def require_onnx():
    """The ``onnx`` module, or an ImportError that says how to install it."""
    return require("onnx", "exporting to ONNX", INSTALL_HINT)


def check_operators(activation, output):
    """Hidden activations and output that have ONNX operators here.

    Parameters
    ----------
    activation : sequence of str, length L - 1
    output : str

    Raises
    ------
    ValueError
        A name without an ONNX equivalent; the message lists the ones there are.
    """
    for i, name in enumerate(activation):
        if name not in HIDDEN_OPERATORS:
            raise ValueError(f"hidden activation {name!r} (layer {i + 1}) has no ONNX "
                             f"equivalent here; expected one of {list(HIDDEN_OPERATORS)}")
    if output not in OUTPUT_OPERATORS:
        raise ValueError(f"output {output!r} has no ONNX equivalent here; expected one of "
                         f"{list(OUTPUT_OPERATORS)}")


def forward_graph(weights, biases, activation, output, input_name, output_name, new_name):
    """The nodes and initializers of the forward pass, independent of who assembles them.

    Parameters
    ----------
    weights : list of ndarray, length L
        ``W_l`` of shape ``(d_l, d_{l-1})``, already of the graph's dtype.
    biases : list of ndarray, length L
        ``b_l`` of shape ``(d_l,)``, of the same dtype.
    activation : sequence of str, length L - 1
        Hidden activations (fastnn's names; ``"logistic"`` is accepted as the sigmoid).
    output : {"softmax", "sigmoid", "logistic", "identity"}
    input_name, output_name : str
        The graph's input ``(batch, d_0)`` and the tensor ``(batch, d_L)`` the
        last node writes.
    new_name : callable
        ``new_name(prefix) -> str``, a name not used elsewhere in the graph
        (skl2onnx's ``scope.get_unique_variable_name``, or a counter).

    Returns
    -------
    initializers : list of (str, ndarray)
    nodes : list of (str, list of str, str, dict)
        ``(operator, inputs, output, attributes)`` in order of execution.
    """
    check_operators(activation, output)
    steps = [HIDDEN_OPERATORS[name] for name in activation] + [OUTPUT_OPERATORS[output]]
    initializers, nodes = [], []
    current = input_name
    for l, (W, b, step) in enumerate(zip(weights, biases, steps), start=1):
        last = l == len(weights)
        weight, bias = new_name(f"W{l}"), new_name(f"b{l}")
        initializers += [(weight, W), (bias, b)]
        logits = output_name if last and step is None else new_name(f"Z{l}")
        # transB=1: W stays in fastnn's (and PyTorch's) (d_out, d_in) layout
        nodes.append(("Gemm", [current, weight, bias], logits, {"transB": 1}))
        current = logits
        if step is not None:
            activated = output_name if last else new_name(f"A{l}")
            nodes.append((step[0], [current], activated, dict(step[1])))
            current = activated
    return initializers, nodes


def _tensor_type(dtype):
    from onnx import TensorProto

    return TensorProto.DOUBLE if np.dtype(dtype) == np.float64 else TensorProto.FLOAT


def network_model(network, dtype=None, opset=OPSET):
    """The ONNX model of ``network``'s forward pass.

    Parameters
    ----------
    network : fastnn.Network
    dtype : numpy.dtype, optional
        float32 or float64 (checked by the caller); the network's own by default.
    opset : int
        Checked by the caller to be at least :data:`MIN_OPSET`.

    Returns
    -------
    onnx.ModelProto
        Input ``"input"`` of shape ``("batch", d_0)``; output ``"probabilities"``
        (softmax, sigmoid) or ``"values"`` (identity) of shape ``("batch", d_L)``;
        both of ``dtype``.

    Raises
    ------
    ValueError
        ``opset`` is newer than the installed onnx package knows.
    ImportError
        onnx is not installed.
    """
    onnx = require_onnx()
    from onnx import helper, numpy_helper

    newest = onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ValueError(f"opset {opset} is newer than the installed onnx {onnx.__version__} "
                         f"knows (at most {newest}); expected an opset in {MIN_OPSET}..{newest}")
    dtype = network.dtype if dtype is None else np.dtype(dtype)
    output_name = OUTPUT_NAMES[network.output]
    used = {}

    def new_name(prefix):
        # names such as W1, b1, Z1, A1: readable in a graph viewer, unique per layer
        used[prefix] = used.get(prefix, 0) + 1
        return prefix if used[prefix] == 1 else f"{prefix}_{used[prefix]}"

    # copies in the graph's dtype: the network's buffer is never handed out
    weights = [np.array(W, dtype=dtype) for W in network.weights]
    biases = [np.array(b, dtype=dtype) for b in network.biases]
    initializers, steps = forward_graph(weights, biases, network.activation, network.output,
                                        "input", output_name, new_name)
    element = _tensor_type(dtype)
    graph = helper.make_graph(
        [helper.make_node(op, inputs, [out], name=f"{op}_{i}", **attributes)
         for i, (op, inputs, out, attributes) in enumerate(steps)],
        "fastnn_" + network.architecture.describe().replace(" ", "_").replace("/", "_"),
        [helper.make_tensor_value_info("input", element, ["batch", network.sizes[0]])],
        [helper.make_tensor_value_info(output_name, element, ["batch", network.sizes[-1]])],
        [numpy_helper.from_array(values, name) for name, values in initializers],
    )
    opsets = [helper.make_opsetid("", opset)]
    from fastnn import __version__

    model = helper.make_model(graph, opset_imports=opsets, producer_name="fastnn",
                              producer_version=__version__,
                              doc_string=f"fastnn {network.architecture.describe()}, "
                                         f"{dtype.name}")
    # the oldest IR version that can carry this opset: make_model stamps the
    # newest the onnx package knows, which older runtimes refuse to load
    model.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(model)
    return model


def export_network(network, path, dtype=None, opset=OPSET):
    """Write :func:`network_model` to ``path`` (atomically) when a path is given.

    Returns
    -------
    onnx.ModelProto
    """
    model = network_model(network, dtype, opset)
    if path is not None:
        data = model.SerializeToString()
        write_atomically(path, lambda file: file.write(data))
    return model
