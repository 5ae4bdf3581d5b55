"""fastnn's scikit-learn estimators in skl2onnx: whole pipelines to ONNX.

Importing this module registers :class:`fastnn.sklearn.MLPClassifier` and
:class:`fastnn.sklearn.MLPRegressor` with skl2onnx (a shape calculator and a
converter each), so that a pipeline holding them converts like one holding
scikit-learn's own MLP::

    import fastnn.onnx  # noqa: F401  (registers the converters)
    from skl2onnx import to_onnx
    pipe = make_pipeline(StandardScaler(), MLPClassifier()).fit(X, y)
    model = to_onnx(pipe, X[:1])

The outputs are those of skl2onnx's MLP converters: a classifier gives
``label`` (class labels, shape ``(N,)``; int64 for integer, bool or
integral float classes, strings for string classes; multilabel: 0/1 int64
of shape ``(N, n_labels)``) and ``probabilities`` (shape ``(N, n_classes)``,
columns in the order of ``classes_``, binary ``[1 - p, p]``), the latter
as a list of ``{class: probability}`` maps unless the option
``{"zipmap": False}`` is given; a regressor gives ``variable``, shape
``(N, n_outputs)``.  The graph computes in float64 when the pipeline's input
is float64 (``DoubleTensorType``) and in float32 otherwise, and the network
inside it is the one :meth:`fastnn.Network.to_onnx` writes.

The converters read only the fitted attributes ``coefs_``, ``intercepts_``,
``out_activation_`` (``"softmax"``, ``"sigmoid"`` or ``"logistic"``,
``"identity"``), ``classes_``, ``n_outputs_`` and ``network_.activation``.

skl2onnx, onnx and scikit-learn are optional dependencies
(``pip install "fastnn[onnx]"``).  :meth:`fastnn.Network.to_onnx` needs only
onnx and does not import this module.
"""

import numpy as np

from fastnn.onnx_export import INSTALL_HINT, forward_graph

try:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils import (
        check_input_and_output_numbers,
        check_input_and_output_types,
    )
    from skl2onnx.common.utils_classifier import get_label_classes
    from skl2onnx.proto import onnx_proto
except ImportError as error:
    raise ImportError(f"fastnn.onnx registers fastnn's estimators with skl2onnx, which is not "
                      f"installed ({error}); install it with:  {INSTALL_HINT}") from error

from fastnn.sklearn import MLPClassifier, MLPRegressor

__all__ = ["register", "CLASSIFIER_ALIAS", "REGRESSOR_ALIAS"]

CLASSIFIER_ALIAS = "FastnnMLPClassifier"
REGRESSOR_ALIAS = "FastnnMLPRegressor"

#: the options of skl2onnx's own MLPClassifier converter, with the same meaning
CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "output_class_labels": [False, True],
                      "nocl": [True, False]}

_INPUT_TYPES = [BooleanTensorType, DoubleTensorType, FloatTensorType, Int64TensorType]
_SIGMOID = ("sigmoid", "logistic")  # fastnn's name and scikit-learn's


# ------------------------------------------------------------------ the estimator


def _layers(model):
    """The checked ``(weights, biases, hidden activations, output)`` of a fitted estimator.

    ``weights`` are ``coefs_[l].T``, shape ``(d_l, d_{l-1})``: the layout the
    shared graph (:func:`fastnn.onnx_export.forward_graph`) takes.
    """
    coefs, intercepts = list(model.coefs_), list(model.intercepts_)
    activation = list(model.network_.activation)
    if not (len(coefs) == len(intercepts) == len(activation) + 1):
        raise ValueError(f"{type(model).__name__} has {len(coefs)} weight matrices, "
                         f"{len(intercepts)} bias vectors and {len(activation)} hidden "
                         "activations; expected n, n and n - 1 (is it fitted?)")
    return coefs, intercepts, activation, model.out_activation_


def _is_multilabel(model):
    return model.out_activation_ in _SIGMOID and model.n_outputs_ > 1


def _label_values(classes):
    """Class labels as an ONNX tensor holds them: ``(values, is_string)``.

    skl2onnx's rule: integer, bool and float labels become int64 (the
    estimator's fit admits whole-number floats only, through scikit-learn's
    ``check_classification_targets``), anything else strings (UTF-8).
    """
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf":
        return classes.astype(np.int64), False
    return np.array([str(c).encode("utf-8") for c in classes]), True


def _float_type(operator):
    """The probabilities' tensor type: float64 for a float64 input, else float32."""
    return (DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType)
            else FloatTensorType)


def _proto_dtype(operator):
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        return onnx_proto.TensorProto.DOUBLE, np.float64
    return onnx_proto.TensorProto.FLOAT, np.float32


# ------------------------------------------------------------------ shape calculators


def classifier_shapes(operator):
    """Output types of a classifier: labels ``(N,)`` (multilabel ``(N, n_labels)``) and
    probabilities ``(N, n_classes)`` in the input's float type."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=2)
    check_input_and_output_types(operator, good_input_types=_INPUT_TYPES)
    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    classes = get_label_classes(operator.scope_inst, model)  # honours the nocl option
    if _is_multilabel(model):
        operator.outputs[0].set_type(Int64TensorType([n, model.n_outputs_]))
    else:
        is_string = _label_values(classes)[1]
        operator.outputs[0].set_type((StringTensorType if is_string else Int64TensorType)([n]))
    operator.outputs[1].set_type(_float_type(operator)([n, len(classes)]))


def regressor_shapes(operator):
    """Output type of a regressor: values ``(N, n_outputs)`` in the input's float type."""
    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    check_input_and_output_types(operator, good_input_types=_INPUT_TYPES)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].set_type(_float_type(operator)([n, operator.raw_operator.n_outputs_]))


# ------------------------------------------------------------------ converters


def _add_forward(scope, operator, container, output_name):
    """Cast the input to the graph's float type, then the network's forward pass."""
    proto, dtype = _proto_dtype(operator)
    coefs, intercepts, activation, output = _layers(operator.raw_operator)
    cast = scope.get_unique_variable_name("cast_input")
    # an int64 or bool input (a pipeline's earlier step may give one) computes in float
    container.add_node("Cast", operator.inputs[0].full_name, cast, to=proto,
                       name=scope.get_unique_operator_name("Cast"))
    initializers, nodes = forward_graph(
        [np.asarray(W, dtype=dtype).T for W in coefs],
        [np.asarray(b, dtype=dtype) for b in intercepts],
        activation, output, cast, output_name, scope.get_unique_variable_name)
    for name, values in initializers:
        container.add_initializer(name, proto, list(values.shape), values.ravel())
    for op, inputs, out, attributes in nodes:
        container.add_node(op, inputs, out, name=scope.get_unique_operator_name(op),
                           **attributes)
    return proto


def convert_classifier(scope, operator, container):
    """Labels and probabilities of a fitted :class:`fastnn.sklearn.MLPClassifier`,
    as skl2onnx's MLPClassifier converter gives them."""
    model = operator.raw_operator
    label_name, proba_name = operator.outputs[0].full_name, operator.outputs[1].full_name
    binary = model.n_outputs_ == 1
    scores = scope.get_unique_variable_name("positive_proba") if binary else proba_name
    proto = _add_forward(scope, operator, container, scores)
    if binary:
        # one sigmoid unit p: the columns [1 - p, p], as predict_proba returns them
        one, negative = scope.get_unique_variable_name("one"), scope.get_unique_variable_name(
            "negative_proba")
        container.add_initializer(one, proto, [], [1.0])
        container.add_node("Sub", [one, scores], negative,
                           name=scope.get_unique_operator_name("Sub"))
        container.add_node("Concat", [negative, scores], proba_name, axis=1,
                           name=scope.get_unique_operator_name("Concat"))

    if _is_multilabel(model):
        # predict: p > 0.5 for each label (Greater, not ai.onnx.ml's Binarizer,
        # which onnxruntime runs in float32 only)
        half, above = scope.get_unique_variable_name("half"), scope.get_unique_variable_name(
            "above_half")
        container.add_initializer(half, proto, [], [0.5])
        container.add_node("Greater", [proba_name, half], above,
                           name=scope.get_unique_operator_name("Greater"))
        container.add_node("Cast", above, label_name, to=onnx_proto.TensorProto.INT64,
                           name=scope.get_unique_operator_name("Cast"))
        return

    # predict: the class of the largest probability (binary: p > 0.5, ties to classes_[0])
    values, is_string = _label_values(get_label_classes(scope, model))
    classes, index = scope.get_unique_variable_name("classes"), scope.get_unique_variable_name(
        "argmax")
    container.add_initializer(classes, onnx_proto.TensorProto.STRING if is_string
                              else onnx_proto.TensorProto.INT64, list(values.shape),
                              values.tolist())
    container.add_node("ArgMax", proba_name, index, axis=1, keepdims=0,
                       name=scope.get_unique_operator_name("ArgMax"))
    container.add_node("Gather", [classes, index], label_name, axis=0,
                       name=scope.get_unique_operator_name("Gather"))


def convert_regressor(scope, operator, container):
    """Predicted values ``(N, n_outputs)`` of a fitted :class:`fastnn.sklearn.MLPRegressor`."""
    _add_forward(scope, operator, container, operator.outputs[0].full_name)


# ------------------------------------------------------------------ registration


def register():
    """Register both estimators with skl2onnx (done on import; calling again is harmless)."""
    update_registered_converter(MLPClassifier, CLASSIFIER_ALIAS, classifier_shapes,
                                convert_classifier, options=CLASSIFIER_OPTIONS)
    update_registered_converter(MLPRegressor, REGRESSOR_ALIAS, regressor_shapes,
                                convert_regressor)


register()
