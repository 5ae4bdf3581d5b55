"""A :class:`fastnn.Network` as a ``torch.nn.Sequential``, and back.

:func:`to_sequential` builds ``Linear, activation, Linear, ..., Linear,
output`` with the network's weights and dtype: the hidden activations as
``ReLU``, ``Sigmoid``, ``Tanh``, ``LeakyReLU(0.01)`` or ``Identity``, and the
output as a last module, ``Softmax(dim=1)``, ``Sigmoid`` or ``Identity`` (so
that the module's outputs are :meth:`fastnn.Network.forward`'s and a round
trip needs no arguments).  ``logits=True`` leaves the output module off, for
training on in PyTorch with ``CrossEntropyLoss``, ``BCEWithLogitsLoss`` or
``MSELoss``, which take the logits.

:func:`from_sequential` reads such a module: Linear layers alternating with
those activations (a Linear followed directly by a Linear is an identity
hidden layer; nested Sequentials are read in order), optionally ending in an
output module.  A Linear without a bias reads as a zero bias (fastnn's
layers always have one; the outputs are the same).  The dtype is the
module's: float32 or float64, one for all parameters.  Anything else is
refused with a message naming the module and what was expected.

PyTorch is an optional dependency (``pip install "fastnn[torch]"``), imported
only by these functions.
"""

import numpy as np

from fastnn import codes
from fastnn.optional import require
from fastnn.validation import check_choice

__all__ = ["INSTALL_HINT", "require_torch", "to_sequential", "from_sequential"]

INSTALL_HINT = 'pip install "fastnn[torch]"'

_SUPPORTED = ("Linear layers alternating with the activations ReLU, LeakyReLU(0.01), Sigmoid, "
              "Tanh or Identity, optionally ending in Softmax(dim=1), Sigmoid or Identity")


def require_torch():
    """The ``torch`` module, or an ImportError that says how to install it."""
    return require("torch", "converting to and from PyTorch", INSTALL_HINT)


def _hidden_modules(torch):
    nn = torch.nn
    return {"identity": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
            "leaky_relu": lambda: nn.LeakyReLU(codes.LEAKY_SLOPE)}


def _exp_class(torch):
    """``Exp``: the exp output (Poisson regression) as a module; PyTorch has none.

    Defined on first use (torch is optional) as this module's ``Exp``, so that
    a Sequential holding it pickles.
    """
    global Exp
    if Exp is None:
        class Exp(torch.nn.Module):
            """``exp(x)``, elementwise: fastnn's exp output (the Poisson mean)."""

            def forward(self, x):
                return torch.exp(x)

        Exp.__module__, Exp.__qualname__ = __name__, "Exp"
    return Exp


#: the exp output's module class, once torch has been imported (see _exp_class)
Exp = None


def _output_modules(torch):
    nn = torch.nn
    return {"softmax": lambda: nn.Softmax(dim=1), "sigmoid": nn.Sigmoid,
            "identity": nn.Identity, "exp": _exp_class(torch)}


def to_sequential(network, logits=False):
    """``network`` as a ``torch.nn.Sequential`` with the same outputs.

    Parameters
    ----------
    network : fastnn.Network
    logits : bool
        Leave off the output module (the module then returns the logits ``Z_L``).

    Returns
    -------
    torch.nn.Sequential
        ``Linear(d_{l-1}, d_l)`` layers holding copies of ``W_l`` ``(d_l,
        d_{l-1})`` and ``b_l`` ``(d_l,)``, of the network's dtype, on the CPU;
        called on ``(n, d_0)`` it returns ``(n, d_L)``.
    """
    torch = require_torch()
    dtype = torch.float64 if network.dtype == np.float64 else torch.float32
    hidden = _hidden_modules(torch)
    modules = []
    for l, (W, b) in enumerate(zip(network.weights, network.biases)):
        # skip_init: no random initialisation, which would draw from (and move)
        # torch's global generator only for the values to be overwritten
        linear = torch.nn.utils.skip_init(torch.nn.Linear, W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
        modules.append(linear)
        if l < len(network.activation):
            modules.append(hidden[network.activation[l]]())
    if not logits:
        modules.append(_output_modules(torch)[network.output]())
    return torch.nn.Sequential(*modules)


def _flatten(torch, module, prefix=""):
    """``(name, child)`` of a Sequential in order, nested Sequentials expanded."""
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, torch.nn.Sequential):
            yield from _flatten(torch, child, full + ".")
        else:
            yield full, child


def _activation_name(torch, name, child):
    """fastnn's name of an activation module (``"softmax"`` for Softmax), or None if
    ``child`` is not one fastnn has."""
    nn = torch.nn
    if isinstance(child, nn.LeakyReLU):
        if child.negative_slope != codes.LEAKY_SLOPE:
            raise ValueError(f"module {name} is LeakyReLU(negative_slope="
                             f"{child.negative_slope}); fastnn's leaky_relu has slope "
                             f"{codes.LEAKY_SLOPE}")
        return "leaky_relu"
    if isinstance(child, nn.Softmax):
        if child.dim not in (1, -1):
            raise ValueError(f"module {name} is Softmax(dim={child.dim}); fastnn's softmax is "
                             "over the units of each row: expected Softmax(dim=1)")
        return "softmax"
    for kind, fastnn_name in ((nn.ReLU, "relu"), (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"),
                              (nn.Identity, "identity"), (_exp_class(torch), "exp")):
        if isinstance(child, kind):
            return fastnn_name
    return None


def _unsupported(name, child):
    kind = type(child).__name__
    hint = ""
    if kind.startswith("Dropout"):
        hint = ("; fastnn has no dropout, and at inference it is the identity: leave it out, "
                "e.g. Sequential(*[m for m in module if not isinstance(m, nn.Dropout)])")
    elif kind == "LogSoftmax":
        hint = ("; fastnn's softmax output gives probabilities: leave it out and pass "
                "output='softmax'")
    return ValueError(f"module {name} is {kind}, which fastnn cannot read{hint}; expected "
                      f"{_SUPPORTED}")


def _layout(torch, module):
    """The module's Linear layers, each with the activation module after it (or None)."""
    layers = []  # [name, Linear, activation name or None, activation's module name]
    for name, child in _flatten(torch, module):
        if isinstance(child, torch.nn.Linear):
            if layers and child.in_features != layers[-1][1].out_features:
                raise ValueError(f"module {name} is Linear({child.in_features}, "
                                 f"{child.out_features}) after a layer of "
                                 f"{layers[-1][1].out_features} units; expected "
                                 f"in_features={layers[-1][1].out_features}")
            layers.append([name, child, None, None])
            continue
        activation = _activation_name(torch, name, child)
        if activation is None:
            raise _unsupported(name, child)
        if not layers:
            raise ValueError(f"module {name} ({type(child).__name__}) comes before any "
                             f"Linear layer; expected {_SUPPORTED}")
        if layers[-1][2] is not None:
            raise ValueError(f"modules {layers[-1][3]} ({layers[-1][2]}) and {name} "
                             f"({type(child).__name__}) are two activations in a row; "
                             f"expected one between Linear layers ({_SUPPORTED})")
        layers[-1][2:] = [activation, name]
    if not layers:
        raise ValueError(f"the Sequential holds no Linear layer; expected {_SUPPORTED}")
    return layers


def _output_of(layers, output):
    """The output: from the last module, or ``output`` when the module ends in a Linear."""
    last, module_name = layers[-1][2], layers[-1][3]
    options = tuple(codes.OUTPUTS)
    if output is not None:
        check_choice("output", output, options)
    if last is None:
        if output is None:
            raise ValueError("the Sequential ends with a Linear layer (logits), so its output "
                             "is not known: pass output='softmax' (trained with "
                             "CrossEntropyLoss), 'sigmoid' (BCEWithLogitsLoss) or 'identity' "
                             "(MSELoss)")
        return output
    if last not in options:
        raise ValueError(f"the last module, {module_name}, is {last}, which is not a fastnn "
                         "output; expected Softmax(dim=1), Sigmoid or Identity there, or a "
                         "final Linear layer with output=...")
    if output is not None and output != last:
        raise ValueError(f"output={output!r} disagrees with the module's last module, "
                         f"{module_name} ({last}); pass output={last!r} or leave it out")
    return last


def _dtype(torch, layers):
    dtypes = {p.dtype for _, linear, _, _ in layers for p in linear.parameters()}
    names = {torch.float32: "float32", torch.float64: "float64"}
    if len(dtypes) > 1 or not dtypes <= set(names):
        found = ", ".join(sorted(str(d).replace("torch.", "") for d in dtypes))
        raise ValueError(f"the Linear layers' parameters are {found}; expected float32 or "
                         "float64 throughout (convert with module.float() or module.double())")
    return names[dtypes.pop()]


def from_sequential(module, output=None, network_class=None, **settings):
    """A :class:`fastnn.Network` with the layers and weights of a ``torch.nn.Sequential``.

    Parameters
    ----------
    module : torch.nn.Sequential
        ``Linear(d_0, d_1), g_1, ..., Linear(d_{L-1}, d_L)[, o]`` (see the module
        docstring for what is read).
    output : {"softmax", "sigmoid", "identity"}, optional
        Required when the module ends with a Linear layer (its logits); else
        read from the last module, and checked against it when given.
    network_class : type, optional
        The class to build (``fastnn.Network`` by default).
    **settings
        ``seed``, ``backend``, ``n_threads``: passed to the network.

    Returns
    -------
    fastnn.Network
        Of the module's dtype, with ``weights[l]`` ``(d_l, d_{l-1})`` and
        ``biases[l]`` ``(d_l,)`` copied from the Linear layers (zeros without a bias).

    Raises
    ------
    TypeError
        ``module`` is not a ``torch.nn.Sequential``.
    ValueError
        A module fastnn cannot read, a layout that is not Linear/activation
        alternation, an unknown or conflicting output, or unsupported dtypes.
    """
    torch = require_torch()
    if not isinstance(module, torch.nn.Sequential):
        raise TypeError(f"module must be a torch.nn.Sequential of {_SUPPORTED}; got "
                        f"{type(module).__name__}")
    # what the module holds first, then what is asked of it (the output)
    layers = _layout(torch, module)
    hidden = []
    for name, _, activation, activation_module in layers[:-1]:
        if activation == "softmax":
            raise ValueError(f"module {activation_module} (Softmax) follows the hidden layer "
                             f"{name}; a softmax is only an output in fastnn")
        hidden.append(activation or "identity")  # Linear then Linear: nothing between
    dtype = _dtype(torch, layers)
    output = _output_of(layers, output)
    if network_class is None:
        from fastnn.network import Network as network_class
    sizes = [layers[0][1].in_features] + [linear.out_features for _, linear, _, _ in layers]
    network = network_class(sizes, activation=hidden, output=output, dtype=dtype, **settings)
    with torch.no_grad():
        for (_, linear, _, _), W, b in zip(layers, network.weights, network.biases):
            W[...] = linear.weight.detach().cpu().numpy()
            b[...] = 0 if linear.bias is None else linear.bias.detach().cpu().numpy()
    return network
