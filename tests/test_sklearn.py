"""The scikit-learn estimators: scikit-learn's own estimator checks, then what
the checks do not cover (accuracy on real data, early stopping, partial_fit,
warm starts, multilabel, Pipeline + GridSearchCV, clone, pickle)."""

import copy
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="fastnn.sklearn needs scikit-learn (pip install "
                                      "'fastnn[sklearn]')")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_digits,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import DataConversionWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastnn import Network, schedules  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# ---------------------------------------------------------------- estimator checks

# scikit-learn fits these a few hundred times; 20 epochs at lr=1e-2 clear its
# accuracy bars (> 0.83 accuracy, R² > 0.5) with a wide margin and keep the
# whole suite to seconds.  The defaults (200 epochs at 1e-3) pass too, slower.
# The float32 instances cover fastnn's fast path against the same checks.
FAST = dict(epochs=20, lr=1e-2, random_state=0)
CHECKED = [MLPClassifier(**FAST), MLPRegressor(**FAST),
           MLPClassifier(**FAST, dtype="float32"), MLPRegressor(**FAST, dtype="float32")]


def expected_failed_checks(estimator):
    """Checks that cannot pass, with the reason (none for the float64 default)."""
    if estimator.dtype != "float32":
        return {}
    failures = {"check_sample_weight_equivalence_on_dense_data":
                "float32 sums in another order agree to ~1e-7, the check asks rtol=1e-7",
                # up to 8 rows go through loops, more through BLAS (kernels/small_matmul.py):
                # the same row predicted alone or in a crowd differs by ~5e-7 in float32
                "check_methods_subset_invariance":
                "float32 products of a few rows and of many round differently (~5e-7)"}
    if isinstance(estimator, MLPRegressor):
        failures["check_regressor_multioutput"] = (
            "a float32 network predicts float32; the check demands float64")
    return failures


@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- data

def classification(n=400, n_classes=3, seed=0, labels=None):
    X, y = make_classification(n_samples=n, n_features=10, n_informative=6,
                               n_classes=n_classes, class_sep=1.5, random_state=seed)
    if labels is not None:
        y = np.asarray(labels, dtype=object)[y]
    return train_test_split(X, y, test_size=0.25, random_state=seed)


def regression(n=400, n_targets=1, seed=0):
    X, y = make_regression(n_samples=n, n_features=8, n_informative=5, n_targets=n_targets,
                           noise=5.0, random_state=seed)
    return train_test_split(X, y / np.std(y, axis=0), test_size=0.25, random_state=seed)


# ---------------------------------------------------------------- accuracy

def test_digits_accuracy():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(64,), lr=1e-2, epochs=30, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.95
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 10
    assert clf.network_.sizes == (64, 64, 10)
    np.testing.assert_array_equal(clf.classes_, np.arange(10))


def test_string_labels_multiclass():
    X_train, X_test, y_train, y_test = classification(labels=["cat", "dog", "emu"])
    clf = MLPClassifier(hidden_layer_sizes=(32,), lr=1e-2, epochs=40, random_state=0)
    clf.fit(X_train, y_train)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    predicted = clf.predict(X_test)
    assert set(predicted) <= {"cat", "dog", "emu"}
    assert clf.score(X_test, y_test) > 0.85
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], predicted)
    np.testing.assert_allclose(clf.predict_log_proba(X_test), np.log(proba))


def test_binary_has_one_sigmoid_unit_and_two_probability_columns():
    X_train, X_test, y_train, y_test = classification(n_classes=2, labels=["no", "yes"])
    clf = MLPClassifier(hidden_layer_sizes=(16,), lr=1e-2, epochs=30, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.out_activation_ == "sigmoid" and clf.n_outputs_ == 1
    p = clf.network_.forward(X_test)[:, 0]
    proba = clf.predict_proba(X_test)
    np.testing.assert_array_equal(proba, np.column_stack([1 - p, p]))
    np.testing.assert_array_equal(clf.predict(X_test), np.where(p > 0.5, "yes", "no"))
    assert clf.score(X_test, y_test) > 0.85


def test_regression_r2_single_and_multi_target():
    X_train, X_test, y_train, y_test = regression()
    reg = MLPRegressor(hidden_layer_sizes=(32,), lr=1e-2, epochs=100, random_state=0)
    reg.fit(X_train, y_train)
    assert reg.predict(X_test).shape == (len(X_test),)
    assert reg.score(X_test, y_test) > 0.95
    assert reg.out_activation_ == "identity" and reg.n_outputs_ == 1

    X_train, X_test, y_train, y_test = regression(n_targets=3)
    reg = MLPRegressor(hidden_layer_sizes=(32,), lr=1e-2, epochs=100, random_state=0)
    reg.fit(X_train, y_train)
    assert reg.predict(X_test).shape == (len(X_test), 3)
    assert reg.n_outputs_ == 3 and reg.network_.sizes == (8, 32, 3)
    assert reg.score(X_test, y_test) > 0.9


def test_column_vector_target_warns_and_predicts_1d():
    X_train, X_test, y_train, _ = regression(n=100)
    with pytest.warns(DataConversionWarning):
        reg = MLPRegressor(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(
            X_train, y_train[:, None])
    assert reg.predict(X_test).shape == (len(X_test),)


def test_multilabel_uses_sigmoid_outputs():
    X, Y = make_multilabel_classification(n_samples=400, n_features=10, n_classes=4,
                                          random_state=0)
    X_train, X_test, Y_train, Y_test = train_test_split(X, Y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    clf = MLPClassifier(hidden_layer_sizes=(32,), lr=1e-2, epochs=50, random_state=0)
    clf.fit(scaler.transform(X_train), Y_train)
    assert clf.out_activation_ == "sigmoid" and clf.n_outputs_ == 4
    np.testing.assert_array_equal(clf.classes_, np.arange(4))
    predicted = clf.predict(scaler.transform(X_test))
    assert predicted.shape == Y_test.shape and predicted.dtype == Y_test.dtype
    proba = clf.predict_proba(scaler.transform(X_test))
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(Y_test.dtype))
    # a hard problem: always guessing each label's majority scores 0.55 per label;
    # scikit-learn's MLPClassifier at these settings 0.77 per label, 0.41 per row
    assert (predicted == Y_test).mean() > 0.7
    assert clf.score(scaler.transform(X_test), Y_test) > 0.3  # every label of a row right


# ---------------------------------------------------------------- early stopping

def test_early_stopping_records_validation_and_restores_best():
    X_train, _, y_train, _ = classification(n=600)
    clf = MLPClassifier(hidden_layer_sizes=(64,), lr=3e-2, epochs=300, early_stopping=True,
                        patience=4, validation_fraction=0.2, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.n_iter_ < 300  # it stopped early
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert len(clf.loss_curve_) == clf.n_iter_
    assert all(0.0 <= score <= 1.0 for score in clf.validation_scores_)
    best = int(np.argmin(clf.validation_loss_curve_))
    # the epoch with the lowest validation loss is the one restored, `patience` before the end
    assert best == clf.n_iter_ - 1 - 4
    assert clf.best_validation_score_ == clf.validation_scores_[best]
    assert clf.best_loss_ is None
    assert clf.t_ == clf.n_iter_ * int(round(len(X_train) * 0.8))

    plain = MLPClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0).fit(X_train, y_train)
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None
    assert plain.best_loss_ == min(plain.loss_curve_)


def test_early_stopping_regressor_scores_are_r2():
    X_train, _, y_train, _ = regression()
    reg = MLPRegressor(hidden_layer_sizes=(16,), lr=1e-2, epochs=30, early_stopping=True,
                       random_state=0).fit(X_train, y_train)
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.validation_scores_[-1] > 0.8


def test_early_stopping_split_is_stratified():
    # sorted labels: a split taking the last rows would hold out one class only
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3, n_classes=2,
                               random_state=0)
    order = np.argsort(y, kind="stable")
    clf = MLPClassifier(hidden_layer_sizes=(8,), epochs=2, early_stopping=True,
                        validation_fraction=0.2, random_state=0)
    seen = []
    original_fit = Network.fit

    def spy(network, X, y, *args, **kwargs):
        seen.append(np.asarray(kwargs["validation_data"][1]))
        return original_fit(network, X, y, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Network, "fit", spy)
        clf.fit(X[order], y[order])
    assert np.bincount(seen[0].astype(int).ravel()).tolist() == [20, 20]


# ---------------------------------------------------------------- incremental

def test_partial_fit_needs_classes_then_matches_fit():
    X_train, X_test, y_train, y_test = classification(labels=["a", "b", "c"])
    clf = MLPClassifier(hidden_layer_sizes=(16,), lr=1e-2, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_train, y_train)

    # a first batch without class "c": classes= tells the estimator it exists
    first = y_train != "c"
    clf.partial_fit(X_train[first], y_train[first], classes=["a", "b", "c"])
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    assert clf.n_outputs_ == 3 and clf.n_iter_ == 1
    for _ in range(20):
        clf.partial_fit(X_train, y_train)
    assert len(clf.loss_curve_) == 21 and clf.n_iter_ == 1
    assert clf.t_ == first.sum() + 20 * len(X_train)
    assert clf.score(X_test, y_test) > 0.8
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X_train[:5], np.array(["a", "b", "z", "a", "b"], dtype=object))
    with pytest.raises(ValueError, match="early_stopping"):
        clone(clf).set_params(early_stopping=True).partial_fit(X_train, y_train,
                                                                classes=["a", "b", "c"])


def test_partial_fit_keeps_optimizer_state():
    # k partial_fit calls = one fit of k epochs: same Adam moments, same shuffles
    X_train, _, y_train, _ = classification()
    fitted = MLPClassifier(hidden_layer_sizes=(16,), epochs=4, random_state=0).fit(
        X_train, y_train)
    stepped = MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    for _ in range(4):
        stepped.partial_fit(X_train, y_train, classes=np.unique(y_train))
    np.testing.assert_array_equal(stepped.network_.params, fitted.network_.params)
    assert stepped.loss_curve_ == fitted.loss_curve_

    reg = MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
    X_train, _, y_train, _ = regression(n=100)
    reg.partial_fit(X_train, y_train).partial_fit(X_train, y_train)
    assert len(reg.loss_curve_) == 2 and reg.n_iter_ == 1


def test_warm_start_continues_and_cold_start_reinitialises():
    X_train, _, y_train, _ = classification()
    five = MLPClassifier(hidden_layer_sizes=(16,), epochs=5, random_state=0).fit(
        X_train, y_train)
    warm = MLPClassifier(hidden_layer_sizes=(16,), epochs=3, warm_start=True, random_state=0)
    warm.fit(X_train, y_train)
    network = warm.network_
    warm.set_params(epochs=2).fit(X_train, y_train)
    assert warm.network_ is network
    np.testing.assert_array_equal(warm.network_.params, five.network_.params)
    assert warm.loss_curve_ == five.loss_curve_ and warm.n_iter_ == 2 and warm.t_ == five.t_

    cold = MLPClassifier(hidden_layer_sizes=(16,), epochs=3, random_state=0).fit(
        X_train, y_train)
    before = cold.network_
    cold.set_params(epochs=5).fit(X_train, y_train)
    assert cold.network_ is not before
    np.testing.assert_array_equal(cold.network_.params, five.network_.params)

    warm.set_params(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match="warm_start=False"):
        warm.fit(X_train, y_train)


# ---------------------------------------------------------------- composition

def test_pipeline_and_grid_search():
    X_train, X_test, y_train, y_test = classification(n=300)
    X_train, X_test = X_train * 50 + 3, X_test * 50 + 3  # unscaled: the pipeline scales
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier(epochs=30, random_state=0))])
    grid = GridSearchCV(pipe, {"mlp__hidden_layer_sizes": [(8,), (32,)],
                               "mlp__lr": [1e-3, 1e-2]}, cv=3)
    grid.fit(X_train, y_train)
    assert grid.best_params_["mlp__hidden_layer_sizes"] in [(8,), (32,)]
    assert grid.best_params_["mlp__lr"] in [1e-3, 1e-2]
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert grid.best_score_ > 0.75
    assert grid.score(X_test, y_test) > 0.75
    fitted = grid.best_estimator_.named_steps["mlp"]
    assert fitted.network_.sizes[1] == grid.best_params_["mlp__hidden_layer_sizes"][0]


def test_clone_copies_hyperparameters_not_fitted_state():
    schedule = schedules.StepLR(5, gamma=0.5)
    clf = MLPClassifier(hidden_layer_sizes=(8, 4), lr_schedule=schedule, epochs=2,
                        random_state=3)
    X_train, _, y_train, _ = classification(n=100)
    clf.fit(X_train, y_train)
    twin = clone(clf)
    assert twin.get_params()["hidden_layer_sizes"] == (8, 4)
    assert twin.random_state == 3 and twin.lr_schedule is not schedule
    assert not hasattr(twin, "network_") and not hasattr(twin, "classes_")
    with pytest.raises(NotFittedError):
        twin.predict(X_train)
    twin.fit(X_train, y_train)
    np.testing.assert_array_equal(twin.network_.params, clf.network_.params)


@pytest.mark.parametrize("copier", [lambda est: pickle.loads(pickle.dumps(est)),
                                    copy.deepcopy], ids=["pickle", "deepcopy"])
def test_pickle_round_trip_keeps_training_state(copier):
    X_train, X_test, y_train, _ = classification(labels=["x", "y", "z"])
    clf = MLPClassifier(hidden_layer_sizes=(16,), epochs=3, warm_start=True, random_state=0)
    clf.fit(X_train, y_train)
    restored = copier(clf)
    np.testing.assert_array_equal(restored.predict_proba(X_test), clf.predict_proba(X_test))
    np.testing.assert_array_equal(restored.classes_, clf.classes_)
    # the weights are views of the restored parameters again, not stale copies
    assert all(np.shares_memory(w, restored.network_.params) for w in restored.network_.weights)
    # optimizer moments and shuffle state survive: continuing gives the same numbers
    clf.fit(X_train, y_train)
    restored.fit(X_train, y_train)
    np.testing.assert_array_equal(restored.network_.params, clf.network_.params)
    assert restored.loss_curve_ == clf.loss_curve_

    reg = MLPRegressor(hidden_layer_sizes=(4,), epochs=2, random_state=0)
    X_train, X_test, y_train, _ = regression(n=60)
    reg.fit(X_train, y_train)
    np.testing.assert_array_equal(copier(reg).predict(X_test), reg.predict(X_test))


# ---------------------------------------------------------------- parameters

def test_random_state_semantics():
    X_train, _, y_train, _ = classification(n=100)
    small = dict(hidden_layer_sizes=(8,), epochs=1)
    clf = MLPClassifier(**small, random_state=7).fit(X_train, y_train)
    assert clf.network_.seed == 7
    # an int seed is Network's seed: the same initial weights, the same shuffles
    same = Network([10, 8, 3], dtype="float64", seed=7)
    same.fit(X_train, y_train, epochs=1, batch_size=200, lr=1e-3, optimizer="adam")
    np.testing.assert_array_equal(clf.network_.params, same.params)

    a = MLPClassifier(**small, random_state=np.random.RandomState(0)).fit(X_train, y_train)
    b = MLPClassifier(**small, random_state=np.random.RandomState(0)).fit(X_train, y_train)
    np.testing.assert_array_equal(a.network_.params, b.network_.params)
    first = a.network_.params.copy()
    a.fit(X_train, y_train)  # the RandomState moved on: another seed
    assert not np.array_equal(a.network_.params, first)

    fresh = MLPClassifier(**small).fit(X_train, y_train)
    assert fresh.network_.seed != MLPClassifier(**small).fit(X_train, y_train).network_.seed


@pytest.mark.parametrize("params, error, match", [
    (dict(hidden_layer_sizes=(0,)), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes="wide"), TypeError, "hidden_layer_sizes"),
    (dict(optimizer="rmsprop"), ValueError, "optimizer"),
    (dict(batch_size="big"), TypeError, "batch_size"),
    (dict(epochs=0), ValueError, "epochs"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(activation="swish"), ValueError, "activation"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction"),
    (dict(random_state="seed"), ValueError, "random_state"),
    (dict(class_weight="even"), ValueError, "class_weight"),
])
def test_bad_hyperparameters_raise_in_fit_not_init(params, error, match):
    clf = MLPClassifier(**params)  # scikit-learn's rule: __init__ only stores
    X_train, _, y_train, _ = classification(n=60)
    with pytest.raises(error, match=match):
        clf.fit(X_train, y_train)
    assert not hasattr(clf, "network_")


def test_optimizer_specific_settings():
    X_train, _, y_train, _ = classification(n=100)
    # momentum and nesterov belong to SGD; with Adam they are ignored (scikit-learn's rule)
    MLPClassifier(hidden_layer_sizes=(4,), epochs=1, momentum=0.5).fit(X_train, y_train)
    # nesterov=True (the default) needs momentum > 0 and is dropped without it
    MLPClassifier(hidden_layer_sizes=(4,), epochs=1, optimizer="sgd", momentum=0.0).fit(
        X_train, y_train)
    sgd = MLPClassifier(hidden_layer_sizes=(4,), epochs=2, optimizer="sgd", lr=0.1,
                        random_state=0).fit(X_train, y_train)
    adamw = MLPClassifier(hidden_layer_sizes=(4,), epochs=2, optimizer="adamw",
                          weight_decay=1e-2, random_state=0).fit(X_train, y_train)
    assert sgd.network_.training_state.optimizer == "sgd"
    assert adamw.network_.training_state.optimizer == "adamw"


def test_class_weight_uses_labels():
    X_train, X_test, y_train, _ = classification(n=300, labels=["a", "b", "c"])
    clf = MLPClassifier(hidden_layer_sizes=(16,), lr=1e-2, epochs=20, random_state=0,
                        class_weight={"a": 1000.0, "b": 1e-4, "c": 1e-4})
    assert (clf.fit(X_train, y_train).predict(X_test) == "a").mean() > 0.9
    balanced = clone(clf).set_params(class_weight="balanced").fit(X_train, y_train)
    assert balanced.score(X_train, y_train) > 0.8
    with pytest.raises(ValueError, match="partial_fit"):
        clone(balanced).partial_fit(X_train, y_train, classes=["a", "b", "c"])


def test_one_effective_class_is_an_error():
    X_train, _, y_train, _ = classification(n=100, n_classes=2)
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier(epochs=1).fit(X_train, np.zeros(len(X_train)))
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier(epochs=1).fit(X_train, y_train, sample_weight=(y_train == 1) * 1.0)


def test_float32_and_runtime_settings():
    X_train, X_test, y_train, _ = classification(n=200)
    clf = MLPClassifier(hidden_layer_sizes=(16,), epochs=3, dtype="float32",
                        random_state=0).fit(X_train, y_train)
    assert clf.network_.dtype == np.float32
    assert clf.predict_proba(X_test).dtype == np.float32
    wide = MLPClassifier(hidden_layer_sizes=(16,), epochs=3, random_state=0).fit(
        X_train, y_train)
    expected = wide.predict_proba(X_test)
    # backend and n_threads are read at every call
    wide.set_params(backend="numpy", n_threads=1)
    np.testing.assert_allclose(wide.predict_proba(X_test), expected, rtol=1e-10)
    assert wide.network_.backend == "numpy" and wide.network_.n_threads == 1


def test_coefs_are_views_in_scikit_learn_layout():
    X_train, X_test, y_train, _ = classification(n=100)
    clf = MLPClassifier(hidden_layer_sizes=(8, 4), epochs=1, random_state=0).fit(
        X_train, y_train)
    assert [c.shape for c in clf.coefs_] == [(10, 8), (8, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (4,), (3,)]
    clf.intercepts_[-1][:] = [0.0, 0.0, 1e6]  # writes go to the network
    assert (clf.predict(X_test) == clf.classes_[2]).all()


def test_feature_names_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    X_train, X_test, y_train, _ = classification(n=100)
    columns = [f"f{i}" for i in range(10)]
    clf = MLPClassifier(hidden_layer_sizes=(4,), epochs=1, random_state=0)
    clf.fit(pd.DataFrame(X_train, columns=columns), y_train)
    np.testing.assert_array_equal(clf.feature_names_in_, columns)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X_test)


def test_import_fastnn_does_not_import_scikit_learn():
    code = "import sys, fastnn; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
