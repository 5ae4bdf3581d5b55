"""PyTorch round trip: ``Network.to_torch`` computes ``Network.forward``'s outputs, and
``Network.from_torch`` reads such a Sequential (or a user's) back, weights exactly.

PyTorch is optional (``pip install "fastnn[torch]"``); the tests that need it skip
where it is missing, except the test of the message a missing torch gives.
"""

import sys

import numpy as np
import pytest

from fastnn import Network

from helpers import ACTIVATIONS, DTYPES, OUTPUTS, make_problem, relative_error

#: torch against Network.forward, per dtype
RTOL = {"float32": 1e-5, "float64": 1e-12}
SIZES = [5, 7, 6, 3]


def torch_module():
    return pytest.importorskip("torch", reason='PyTorch interop needs torch: pip install '
                                               '"fastnn[torch]"')


def apply(module, X):
    """``module(X)`` as a NumPy array, without building a graph for gradients."""
    torch = torch_module()
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(X))).numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_to_torch_matches_forward(activation, output, dtype):
    torch = torch_module()
    net = Network(SIZES, activation=activation, output=output, dtype=dtype, seed=1,
                  backend="numpy")
    X = (3 * make_problem(SIZES, output, 40, seed=2)[0]).astype(dtype)
    module = net.to_torch()
    assert {p.dtype for p in module.parameters()} == {getattr(torch, dtype)}
    got = apply(module, X)
    assert got.dtype == np.dtype(dtype) and got.shape == (40, SIZES[-1])
    assert relative_error(got, net.forward(X)) < RTOL[dtype]


def test_module_layout():
    torch = torch_module()
    nn = torch.nn
    net = Network([4, 6, 5, 5, 3], activation=["leaky_relu", "identity", "sigmoid"],
                  output="softmax")
    module = net.to_torch()
    assert [type(m) for m in module] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.Identity,
                                         nn.Linear, nn.Sigmoid, nn.Linear, nn.Softmax]
    assert module[1].negative_slope == 0.01 and module[7].dim == 1
    np.testing.assert_array_equal(module[0].weight.detach().numpy(), net.weights[0])
    np.testing.assert_array_equal(module[6].bias.detach().numpy(), net.biases[3])
    # copies: the module's parameters do not share the network's buffer
    with torch.no_grad():
        module[0].weight.add_(1.0)
    assert not np.array_equal(module[0].weight.detach().numpy(), net.weights[0])
    tanh = Network([3, 2, 4], activation="tanh", output="identity").to_torch()
    assert [type(m) for m in tanh] == [nn.Linear, nn.Tanh, nn.Linear, nn.Identity]


@pytest.mark.parametrize("output, loss", [("softmax", "CrossEntropyLoss"),
                                          ("sigmoid", "BCEWithLogitsLoss"),
                                          ("identity", "MSELoss")])
def test_logits_for_training_in_torch(output, loss):
    """``logits=True`` drops the output module; PyTorch's matching loss on those logits
    is fastnn's loss, and its gradient fastnn's gradient."""
    torch = torch_module()
    net = Network([4, 5, 3], activation="relu", output=output, dtype="float64", seed=3,
                  backend="numpy")
    X, y = make_problem(net.sizes, output, 12, seed=4)
    module = net.to_torch(logits=True)
    assert type(module[-1]) is torch.nn.Linear
    Z = module(torch.from_numpy(X))
    target = torch.from_numpy(y if output == "softmax" else y.astype(np.float64))
    criterion = getattr(torch.nn, loss)(reduction="sum")
    value = criterion(Z, target) / len(X)
    if output == "identity":
        value = value / 2  # fastnn's squared error is ½‖ŷ − y‖²
    value.backward()
    assert value.item() == pytest.approx(net.loss(X, y), rel=1e-12)
    grads = [p.grad.numpy().reshape(-1) for p in module.parameters()]
    theirs = np.concatenate(grads)  # W1, b1, W2, b2: fastnn's flat layout
    assert relative_error(theirs, net.gradient(X, y)) < 1e-12


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(output, dtype):
    torch_module()
    net = Network([4, 6, 5, 3], activation=["tanh", "leaky_relu"], output=output, dtype=dtype,
                  seed=5)
    back = Network.from_torch(net.to_torch(), backend="numpy")
    assert back.architecture == net.architecture
    np.testing.assert_array_equal(back.params, net.params)
    assert back.backend == "numpy"


def test_from_a_users_sequential():
    """A model as PyTorch users write one: logits out of the last Linear (output given),
    a Linear without bias, a Linear straight after a Linear, a nested Sequential."""
    torch = torch_module()
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(),
                           nn.Sequential(nn.Linear(8, 6, bias=False), nn.Tanh()),
                           nn.Linear(6, 5), nn.Linear(5, 3))
    net = Network.from_torch(module, output="softmax", backend="numpy")
    assert net.sizes == (4, 8, 6, 5, 3)
    assert net.activation == ("relu", "tanh", "identity")
    assert net.dtype == np.float32 and net.output == "softmax"
    np.testing.assert_array_equal(net.biases[1], 0)  # no bias: zeros, the same outputs
    X = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    expected = torch.softmax(torch.from_numpy(apply(module, X)), dim=1).numpy()
    assert relative_error(net.forward(X), expected) < RTOL["float32"]


def test_from_torch_keeps_the_modules_dtype_and_trains_on():
    torch = torch_module()
    nn = torch.nn
    torch.manual_seed(1)
    module = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid()).double()
    net = Network.from_torch(module, seed=7, backend="numpy")
    assert net.dtype == np.float64 and net.output == "sigmoid" and net.seed == 7
    X = np.random.default_rng(2).standard_normal((30, 3))
    assert relative_error(net.forward(X), apply(module, X)) < RTOL["float64"]
    before = net.loss(X, X[:, 0] > 0)
    net.fit(X, X[:, 0] > 0, epochs=20, lr=0.5)
    assert net.loss(X, X[:, 0] > 0) < before


def test_to_torch_leaves_torchs_generator_alone():
    """No random initialisation of the Linear layers whose weights are overwritten."""
    torch = torch_module()
    state = torch.get_rng_state()
    Network([4, 5, 2], output="softmax").to_torch()
    assert torch.equal(torch.get_rng_state(), state)


#: (id, build(nn) -> module, from_torch's arguments, exception, message pattern);
#: builders take ``torch.nn`` so that collecting the table needs no torch
BAD_MODULES = [
    ("not-sequential", lambda nn: nn.Linear(4, 2), {}, TypeError,
     "module must be a torch.nn.Sequential of Linear layers .* got Linear"),
    ("dropout", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Dropout(0.5),
                                         nn.Linear(5, 2)), {},
     ValueError, r"module 2 is Dropout, which fastnn cannot read; fastnn has no dropout"),
    ("batchnorm", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5),
                                           nn.Linear(5, 2)), {},
     ValueError, r"module 1 is BatchNorm1d, which fastnn cannot read; expected Linear "
                 r"layers alternating with the activations ReLU"),
    ("nested-conv", lambda nn: nn.Sequential(nn.Sequential(nn.Conv1d(1, 1, 3))), {},
     ValueError, r"module 0\.0 is Conv1d"),
    ("log-softmax", lambda nn: nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(dim=1)), {},
     ValueError, "LogSoftmax, .* leave it out and pass output='softmax'"),
    ("leaky-slope", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.LeakyReLU(0.2),
                                             nn.Linear(5, 2)), {},
     ValueError, r"LeakyReLU\(negative_slope=0.2\); fastnn's leaky_relu has slope 0.01"),
    ("softmax-dim", lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0)), {},
     ValueError, r"Softmax\(dim=0\); .* expected Softmax\(dim=1\)"),
    ("two-activations", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Tanh(),
                                                 nn.Linear(5, 2)), {},
     ValueError, r"modules 1 \(relu\) and 2 \(Tanh\) are two activations in a row"),
    ("activation-first", lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(4, 2)), {},
     ValueError, r"module 0 \(ReLU\) comes before any Linear layer"),
    ("empty", lambda nn: nn.Sequential(), {}, ValueError, "holds no Linear layer"),
    ("sizes", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(6, 2)), {},
     ValueError, r"module 2 is Linear\(6, 2\) after a layer of 5 units; expected "
                 "in_features=5"),
    ("logits-no-output", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.ReLU(),
                                                  nn.Linear(5, 3)), {},
     ValueError, r"ends with a Linear layer \(logits\).*pass output='softmax'"),
    ("unknown-output", lambda nn: nn.Sequential(nn.Linear(4, 3)), {"output": "softplus"},
     ValueError, r"unknown output 'softplus'; expected one of \['identity', 'sigmoid', "
                 r"'softmax', 'exp'\]"),
    ("output-last-relu", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.ReLU()), {},
     ValueError, "the last module, 1, is relu, which is not a fastnn output"),
    ("output-conflict", lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)),
     {"output": "sigmoid"}, ValueError,
     r"output='sigmoid' disagrees with the module's last module, 1 \(softmax\)"),
    ("hidden-softmax", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.Softmax(dim=1),
                                                nn.Linear(5, 2)), {},
     ValueError, r"module 1 \(Softmax\) follows the hidden layer 0; a softmax is only an "
                 "output"),
    ("softmax-one-unit", lambda nn: nn.Sequential(nn.Linear(4, 1), nn.Softmax(dim=1)), {},
     ValueError, "a softmax output needs at least 2 units"),
    ("mixed-dtypes", lambda nn: nn.Sequential(nn.Linear(4, 5), nn.ReLU(),
                                              nn.Linear(5, 2).double()), {},
     ValueError, r"parameters are float32, float64; expected float32 or float64 "
                 r"throughout \(convert with module.float\(\) or module.double\(\)\)"),
    ("float16", lambda nn: nn.Sequential(nn.Linear(4, 2)).half(), {"output": "identity"},
     ValueError, "parameters are float16; expected float32 or float64"),
    ("bad-seed", lambda nn: nn.Sequential(nn.Linear(4, 2)), {"output": "identity", "seed": -1},
     ValueError, "seed must be an integer >= 0"),
]


@pytest.mark.parametrize("build, kwargs, error, pattern", [case[1:] for case in BAD_MODULES],
                         ids=[case[0] for case in BAD_MODULES])
def test_from_torch_bad_modules(build, kwargs, error, pattern):
    torch = torch_module()
    with pytest.raises(error, match=pattern):
        Network.from_torch(build(torch.nn), **kwargs)


def test_bad_logits_flag():
    torch_module()
    with pytest.raises(TypeError, match="logits must be True or False"):
        Network([3, 2], output="softmax").to_torch(logits="yes")


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    net = Network([3, 2], output="softmax")
    pattern = r'needs the torch package, which is not installed.*pip install "fastnn\[torch\]"'
    with pytest.raises(ImportError, match=pattern):
        net.to_torch()
    with pytest.raises(ImportError, match=pattern):
        Network.from_torch(object(), output="softmax")
