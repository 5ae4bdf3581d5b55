"""Every compiled kernel is compiled once per dtype, whatever the fit.

Numba compiles a function again for every new combination of argument types,
and a literal argument (``f(x, 0)`` or ``f(x, True)`` in compiled code) is a
type of its own: each such call would add seconds to a cold first fit
(docs/design.md, rules 4 and 7).  So after fits along every path (each
optimizer, clipping, per-sample SGD, a tiny last batch, prediction, the
gradient) in both dtypes, no compiled function of ``fastnn.kernels`` may hold
more than one signature per dtype.
"""

import json
import subprocess
import sys

_CHILD = r"""
import importlib, json, logging, pkgutil
logging.disable(logging.WARNING)
import numpy as np
from numba.core.registry import CPUDispatcher
import fastnn.kernels as kernels
from fastnn import Network

rng = np.random.default_rng(0)
X = rng.standard_normal((61, 9)); y = rng.integers(0, 3, 61)
for dtype in ("float32", "float64"):
    for activation, output in (("relu", "softmax"), ("tanh", "identity")):
        target = y if output == "softmax" else X[:, :3]
        for options in (dict(), dict(momentum=0.9, nesterov=True), dict(optimizer="adam"),
                        dict(optimizer="adamw", weight_decay=0.1), dict(clip_norm=0.5),
                        dict(batch_size=1), dict(batch_size=30)):
            net = Network([9, 7, 5, 3], activation=activation, output=output, dtype=dtype)
            net.fit(X, target, epochs=1, **{"batch_size": 8, **options})
        net.predict(X[:1]); net.predict(X); net.loss(X, target); net.gradient(X, target)

signatures = {}
for info in pkgutil.iter_modules(kernels.__path__):
    module = importlib.import_module("fastnn.kernels." + info.name)
    for name, obj in vars(module).items():
        if isinstance(obj, CPUDispatcher):
            key = f"{obj.py_func.__module__}.{obj.py_func.__name__}"
            signatures[key] = [str(s) for s in obj.signatures]
print(json.dumps(signatures))
"""


def test_one_signature_per_dtype():
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    signatures = json.loads(done.stdout.strip().splitlines()[-1])
    compiled = {name: sigs for name, sigs in signatures.items() if sigs}
    assert "fastnn.kernels.layer_steps.forward_step" in compiled  # the check saw the kernels
    too_many = {name: sigs for name, sigs in compiled.items() if len(sigs) > 2}
    assert not too_many, "compiled more than once per dtype:\n" + json.dumps(too_many, indent=1)
    for name, sigs in compiled.items():
        # two signatures must be the two dtypes, not two layouts or literals
        assert len(sigs) == 1 or sigs[0].count("float32") != sigs[1].count("float32"), (
            name, sigs)
