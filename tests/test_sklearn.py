"""The scikit-learn estimators: scikit-learn's own estimator checks, then what
the checks do not cover (accuracy on real data, early stopping, partial_fit,
warm starts, multilabel, Pipeline + GridSearchCV, clone, pickle, sparse inputs
and the text and one-hot pipelines that make them)."""

import copy
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse

pytest.importorskip("sklearn", reason="fastnn.sklearn needs scikit-learn (pip install "
                                      "'fastnn[sklearn]')")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_digits,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import (  # noqa: E402
    ConvergenceWarning,
    DataConversionWarning,
    NotFittedError,
)
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastnn import Network, schedules  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

import helpers  # noqa: E402

# ---------------------------------------------------------------- estimator checks

# scikit-learn fits these a few hundred times; 20 epochs at learning_rate_init=1e-2 clear its
# accuracy bars (> 0.83 accuracy, R² > 0.5) with a wide margin and keep the
# whole suite to seconds.  The defaults (200 epochs at 1e-3) pass too, slower.
# The float32 instances cover fastnn's fast path against the same checks.
FAST = dict(max_iter=20, learning_rate_init=1e-2, random_state=0)
CHECKED = [MLPClassifier(**FAST), MLPRegressor(**FAST),
           MLPClassifier(**FAST, dtype="float32"), MLPRegressor(**FAST, dtype="float32")]


def expected_failed_checks(estimator):
    """Checks that cannot pass, with the reason (none for the float64 default)."""
    if estimator.dtype != "float32":
        return {}
    failures = {"check_sample_weight_equivalence_on_dense_data":
                "float32 sums in another order agree to ~1e-7, the check asks rtol=1e-7",
                "check_sample_weight_equivalence_on_sparse_data":
                "float32 sums in another order agree to ~1e-6, the check asks rtol=1e-7",
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
    clf = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=1e-2, max_iter=30,
                        random_state=0)
    clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.95
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 10
    assert clf.network_.sizes == (64, 64, 10)
    np.testing.assert_array_equal(clf.classes_, np.arange(10))


def test_string_labels_multiclass():
    X_train, X_test, y_train, y_test = classification(labels=["cat", "dog", "emu"])
    clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=40,
                        random_state=0)
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
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=30,
                        random_state=0)
    clf.fit(X_train, y_train)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    p = clf.network_.forward(X_test)[:, 0]
    proba = clf.predict_proba(X_test)
    np.testing.assert_array_equal(proba, np.column_stack([1 - p, p]))
    np.testing.assert_array_equal(clf.predict(X_test), np.where(p > 0.5, "yes", "no"))
    assert clf.score(X_test, y_test) > 0.85


def test_regression_r2_single_and_multi_target():
    X_train, X_test, y_train, y_test = regression()
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=100,
                       random_state=0)
    reg.fit(X_train, y_train)
    assert reg.predict(X_test).shape == (len(X_test),)
    assert reg.score(X_test, y_test) > 0.95
    assert reg.out_activation_ == "identity" and reg.n_outputs_ == 1

    X_train, X_test, y_train, y_test = regression(n_targets=3)
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=100,
                       random_state=0)
    reg.fit(X_train, y_train)
    assert reg.predict(X_test).shape == (len(X_test), 3)
    assert reg.n_outputs_ == 3 and reg.network_.sizes == (8, 32, 3)
    assert reg.score(X_test, y_test) > 0.9


def test_column_vector_target_warns_and_predicts_1d():
    X_train, X_test, y_train, _ = regression(n=100)
    with pytest.warns(DataConversionWarning):
        reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(
            X_train, y_train[:, None])
    assert reg.predict(X_test).shape == (len(X_test),)


def test_multilabel_uses_sigmoid_outputs():
    X, Y = make_multilabel_classification(n_samples=400, n_features=10, n_classes=4,
                                          random_state=0)
    X_train, X_test, Y_train, Y_test = train_test_split(X, Y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=50,
                        random_state=0)
    clf.fit(scaler.transform(X_train), Y_train)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
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
    tol, patience = 1e-3, 4
    clf = MLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=3e-2, max_iter=300,
                        early_stopping=True, n_iter_no_change=patience, tol=tol,
                        validation_fraction=0.2, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.n_iter_ < 300  # it stopped early
    scores = clf.validation_scores_
    assert len(scores) == len(clf.loss_curve_) == clf.n_iter_
    assert all(0.0 <= score <= 1.0 for score in scores)
    # scikit-learn's rule: the last patience + 1 epochs all fell short of best + tol
    assert clf.best_validation_score_ == max(scores)
    assert all(score < clf.best_validation_score_ + tol for score in scores[-patience - 1:])
    assert clf.best_loss_ is None
    n_held = int(np.ceil(0.2 * len(X_train)))
    assert clf.t_ == clf.n_iter_ * (len(X_train) - n_held)
    # the weights kept are the best epoch's: a refit stopped there scores the same
    best = int(np.argmax(scores))
    again = clone(clf).set_params(early_stopping=True, n_iter_no_change=10 ** 6,
                                  max_iter=best + 1)
    with pytest.warns(ConvergenceWarning):
        again.fit(X_train, y_train)
    np.testing.assert_array_equal(again.network_.params, clf.network_.params)

    plain = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        plain.fit(X_train, y_train)
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None
    assert plain.best_loss_ == min(plain.loss_curve_)


def test_early_stopping_regressor_scores_are_r2():
    X_train, _, y_train, _ = regression()
    reg = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=30,
                       early_stopping=True,
                       random_state=0).fit(X_train, y_train)
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.validation_scores_[-1] > 0.8


def test_early_stopping_split_is_stratified():
    # sorted labels: a split taking the last rows would hold out one class only
    X, y = make_classification(n_samples=200, n_features=5, n_informative=3, n_classes=2,
                               random_state=0)
    order = np.argsort(y, kind="stable")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, early_stopping=True,
                        validation_fraction=0.2, random_state=0)
    seen = []
    original_fit = Network.fit

    def spy(network, X, y, *args, **kwargs):
        seen.append(np.asarray(y))
        return original_fit(network, X, y, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch, pytest.warns(ConvergenceWarning):
        patch.setattr(Network, "fit", spy)
        clf.fit(X[order], y[order])
    # a fifth of each class held out, as scikit-learn's stratified train_test_split does
    held_out = np.bincount(y) - np.bincount(seen[0].astype(int).ravel())
    assert np.all(np.abs(held_out - 0.2 * np.bincount(y)) <= 1)


# ---------------------------------------------------------------- incremental

def test_partial_fit_needs_classes_then_matches_fit():
    X_train, X_test, y_train, y_test = classification(labels=["a", "b", "c"])
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=1e-2, random_state=0)
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
    with pytest.raises(ValueError, match="Expected only labels in classes_"):
        clf.partial_fit(X_train[:5], np.array(["a", "b", "z", "a", "b"], dtype=object))
    with pytest.raises(ValueError, match="early_stopping"):
        clone(clf).set_params(early_stopping=True).partial_fit(X_train, y_train,
                                                                classes=["a", "b", "c"])


def test_partial_fit_keeps_optimizer_state():
    # k partial_fit calls = one fit of k epochs: same Adam moments, same shuffles
    X_train, _, y_train, _ = classification()
    fitted = MLPClassifier(hidden_layer_sizes=(16,), max_iter=4, random_state=0).fit(
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
    five = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(
        X_train, y_train)
    warm = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, warm_start=True, random_state=0)
    warm.fit(X_train, y_train)
    network, after_three = warm.network_, warm.network_.params.copy()
    warm.set_params(max_iter=2).fit(X_train, y_train)
    # the same network goes on from its weights; scikit-learn's rule: a fresh optimizer
    assert warm.network_ is network
    assert not np.array_equal(warm.network_.params, after_three)
    assert len(warm.loss_curve_) == 5 and warm.n_iter_ == 2 and warm.t_ == five.t_

    cold = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(
        X_train, y_train)
    before = cold.network_
    cold.set_params(max_iter=5).fit(X_train, y_train)
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
                     ("mlp", MLPClassifier(max_iter=30, random_state=0))])
    grid = GridSearchCV(pipe, {"mlp__hidden_layer_sizes": [(8,), (32,)],
                               "mlp__learning_rate_init": [1e-3, 1e-2]}, cv=3)
    grid.fit(X_train, y_train)
    assert grid.best_params_["mlp__hidden_layer_sizes"] in [(8,), (32,)]
    assert grid.best_params_["mlp__learning_rate_init"] in [1e-3, 1e-2]
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert grid.best_score_ > 0.75
    assert grid.score(X_test, y_test) > 0.75
    fitted = grid.best_estimator_.named_steps["mlp"]
    assert fitted.network_.sizes[1] == grid.best_params_["mlp__hidden_layer_sizes"][0]


def test_clone_copies_hyperparameters_not_fitted_state():
    schedule = schedules.StepLR(5, gamma=0.5)
    clf = MLPClassifier(hidden_layer_sizes=(8, 4), lr_schedule=schedule, max_iter=2,
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
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, warm_start=True, random_state=0)
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

    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    X_train, X_test, y_train, _ = regression(n=60)
    reg.fit(X_train, y_train)
    np.testing.assert_array_equal(copier(reg).predict(X_test), reg.predict(X_test))


# ---------------------------------------------------------------- parameters

def test_random_state_semantics():
    from sklearn.neural_network import MLPClassifier as ScikitLearnMLP

    X_train, _, y_train, _ = classification(n=100)
    # an int gives scikit-learn's initial weights: with a vanishing rate both stay there
    tiny = dict(hidden_layer_sizes=(8,), max_iter=1, solver="sgd", learning_rate_init=1e-12,
                random_state=7)
    with pytest.warns(ConvergenceWarning):
        ours = MLPClassifier(**tiny).fit(X_train, y_train)
        theirs = ScikitLearnMLP(**tiny).fit(X_train, y_train)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)

    small = dict(hidden_layer_sizes=(8,), max_iter=1)
    with pytest.warns(ConvergenceWarning):
        a = MLPClassifier(**small, random_state=np.random.RandomState(0)).fit(X_train, y_train)
        b = MLPClassifier(**small, random_state=np.random.RandomState(0)).fit(X_train, y_train)
        np.testing.assert_array_equal(a.network_.params, b.network_.params)
        first = a.network_.params.copy()
        a.fit(X_train, y_train)  # the RandomState moved on: other initial weights
        assert not np.array_equal(a.network_.params, first)
        fresh = MLPClassifier(**small).fit(X_train, y_train).network_.params
        assert not np.array_equal(fresh, MLPClassifier(**small).fit(X_train, y_train)
                                  .network_.params)


@pytest.mark.parametrize("params, error, match", [
    (dict(hidden_layer_sizes=(0,)), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes="wide"), TypeError, "hidden_layer_sizes"),
    (dict(solver="rmsprop"), ValueError, "solver"),
    (dict(batch_size="big"), TypeError, "batch_size"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(learning_rate_init=-1.0), ValueError, "learning_rate_init"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change"),
    (dict(learning_rate="cyclic"), ValueError, "learning_rate"),
    (dict(activation="swish"), ValueError, "activation"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction"),
    (dict(random_state="seed"), ValueError, "seed"),
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
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, momentum=0.5).fit(X_train, y_train)
    # nesterov=True (the default) needs momentum > 0 and is dropped without it
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, solver="sgd", momentum=0.0).fit(
        X_train, y_train)
    sgd = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, solver="sgd", learning_rate_init=0.1,
                        random_state=0).fit(X_train, y_train)
    adamw = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, solver="adamw",
                          alpha=1e-2, random_state=0).fit(X_train, y_train)
    assert sgd.network_.training_state.optimizer == "sgd"
    assert adamw.network_.training_state.optimizer == "adamw"


def test_class_weight_uses_labels():
    X_train, X_test, y_train, _ = classification(n=300, labels=["a", "b", "c"])
    clf = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=20,
                        random_state=0,
                        class_weight={"a": 1000.0, "b": 1e-4, "c": 1e-4})
    assert (clf.fit(X_train, y_train).predict(X_test) == "a").mean() > 0.9
    balanced = clone(clf).set_params(class_weight="balanced").fit(X_train, y_train)
    assert balanced.score(X_train, y_train) > 0.8
    with pytest.raises(ValueError, match="partial_fit"):
        clone(balanced).partial_fit(X_train, y_train, classes=["a", "b", "c"])


def test_one_class_is_learnt_as_scikit_learn_does():
    X_train, X_test, _, _ = classification(n=100, n_classes=2)
    with pytest.warns(ConvergenceWarning):
        clf = MLPClassifier(max_iter=2).fit(X_train, np.full(len(X_train), "only"))
    np.testing.assert_array_equal(clf.classes_, ["only"])
    assert (clf.predict(X_test) == "only").all()


def test_float32_and_runtime_settings():
    X_train, X_test, y_train, _ = classification(n=200)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, dtype="float32",
                        random_state=0).fit(X_train, y_train)
    assert clf.network_.dtype == np.float32
    assert clf.predict_proba(X_test).dtype == np.float32
    wide = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(
        X_train, y_train)
    expected = wide.predict_proba(X_test)
    # backend and n_threads are read at every call
    wide.set_params(backend="numpy", n_threads=1)
    np.testing.assert_allclose(wide.predict_proba(X_test), expected, rtol=1e-10)
    assert wide.network_.backend == "numpy" and wide.network_.n_threads == 1


def test_coefs_are_views_in_scikit_learn_layout():
    X_train, X_test, y_train, _ = classification(n=100)
    clf = MLPClassifier(hidden_layer_sizes=(8, 4), max_iter=1, random_state=0).fit(
        X_train, y_train)
    assert [c.shape for c in clf.coefs_] == [(10, 8), (8, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (4,), (3,)]
    clf.intercepts_[-1][:] = [0.0, 0.0, 1e6]  # writes go to the network
    assert (clf.predict(X_test) == clf.classes_[2]).all()


def test_feature_names_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    X_train, X_test, y_train, _ = classification(n=100)
    columns = [f"f{i}" for i in range(10)]
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    clf.fit(pd.DataFrame(X_train, columns=columns), y_train)
    np.testing.assert_array_equal(clf.feature_names_in_, columns)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X_test)


def test_import_fastnn_does_not_import_scikit_learn():
    code = "import sys, fastnn; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression-3", "poisson"])
def test_losses_and_lbfgs_agree_with_scikit_learn(kind):
    """The same initial weights (an int random_state) and scikit-learn's loss
    conventions (the squared error averaged over outputs, the penalty α/2‖W‖²
    over the batch's rows): the first epoch's loss, measured before the
    weights move, is scikit-learn's; and lbfgs, deterministic, lands where
    scikit-learn's lands."""
    from sklearn import neural_network

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6))
    if kind == "binary":
        # noisy labels: no perfect fit, whose log-loss scikit-learn's clipping would change
        y, cls = (X[:, 0] + rng.normal(size=120) > 0).astype(int), "MLPClassifier"
    elif kind == "multiclass":
        y, cls = np.argmax(X[:, :3] + rng.normal(size=(120, 3)), axis=1), "MLPClassifier"
    elif kind == "regression-3":
        y, cls = X[:, :3] @ rng.normal(size=(3, 3)), "MLPRegressor"
    else:
        y, cls = rng.poisson(np.exp(0.3 * X[:, 0])), "MLPRegressor"
    extra = {"loss": "poisson"} if kind == "poisson" else {}
    ours_cls = MLPClassifier if cls == "MLPClassifier" else MLPRegressor
    theirs_cls = getattr(neural_network, cls)
    frozen = dict(hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=1e-12, alpha=0.5,
                  max_iter=1, batch_size=40, random_state=3, **extra)
    with pytest.warns(ConvergenceWarning):
        ours = ours_cls(**frozen).fit(X, y)
        theirs = theirs_cls(**frozen).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)

    lbfgs = dict(hidden_layer_sizes=(5,), solver="lbfgs", alpha=1e-3, max_iter=30,
                 random_state=3, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(**lbfgs).fit(X, y)
        theirs = theirs_cls(**lbfgs).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- sparse inputs

SPARSE_BACKENDS = ["numba", "numpy"]


def two_topic_documents(n, seed=0):
    """``n`` short documents on two topics (0: space, 1: cooking) and their labels: words of
    the document's topic, a few of the other's, common words and a rare-word tail of a
    thousand made-up words, so that the tf-idf matrix is wide and sparse."""
    rng = np.random.default_rng(seed)
    topics = ["orbit rocket planet star galaxy moon launch telescope comet".split(),
              "oven flour butter recipe garlic simmer pepper dough sauce".split()]
    common = "the a of and to in is it that with for on this".split()
    labels = rng.integers(0, 2, n)
    documents = []
    for label in labels:
        words = (list(rng.choice(topics[label], 4)) + list(rng.choice(topics[1 - label], 1))
                 + list(rng.choice(common, 8)) + [f"w{k}" for k in rng.integers(0, 1000, 3)])
        rng.shuffle(words)
        documents.append(" ".join(words))
    return documents, labels


def sparse_and_dense_fits(estimator, X, y, backend, **fit):
    """The estimator fitted on the sparse ``X`` and, cloned, on ``X.toarray()``."""
    sparse = clone(estimator).set_params(backend=backend).fit(X, y, **fit)
    dense = clone(estimator).set_params(backend=backend).fit(X.toarray(), y, **fit)
    return sparse, dense


def assert_same_fit(sparse, dense, rtol=1e-9):
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
    # lbfgs keeps no loss curve, only its final loss
    curves = [getattr(fit, "loss_curve_", [fit.loss_]) for fit in (sparse, dense)]
    np.testing.assert_allclose(*curves, rtol=rtol)


@pytest.mark.parametrize("solver, extra", [
    ("adam", {}), ("sgd", {"momentum": 0.9, "learning_rate_init": 0.3}),
    ("adam", {"early_stopping": True}), ("lbfgs", {})],
    ids=["adam", "sgd", "early-stopping", "lbfgs"])
@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
def test_estimators_fit_sparse_X_as_its_dense_twin(backend, solver, extra):
    """Classifier and regressor; early stopping's train_test_split holds out the same
    CSR rows as dense ones; lbfgs runs the full-batch objective on CSR rows."""
    X, y = helpers.sparse_problem(n=200)
    w = np.random.default_rng(1).uniform(0.5, 1.5, X.shape[0])
    options = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=30, random_state=0,
                   **({"learning_rate_init": 1e-2} | extra))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sparse, dense = sparse_and_dense_fits(MLPClassifier(**options), X, y, backend,
                                              sample_weight=w)
        assert_same_fit(sparse, dense)
        np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X.toarray()),
                                   rtol=1e-9)
        assert sparse.score(X, y) == dense.score(X.toarray(), y)
        if extra.get("early_stopping"):
            np.testing.assert_allclose(sparse.validation_scores_, dense.validation_scores_)
            assert sparse.n_iter_ == dense.n_iter_ < 30, "it stopped early"
        else:
            assert sparse.score(X, y) > 0.7

        target = np.asarray(X @ np.linspace(-1.0, 1.0, X.shape[1]))
        sparse, dense = sparse_and_dense_fits(MLPRegressor(**options), X, target, backend)
        assert_same_fit(sparse, dense)
        np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), rtol=1e-9)


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
def test_partial_fit_and_every_sparse_format(backend):
    """partial_fit on CSR pieces as on dense ones; CSC passes validate_data as it is,
    COO, LIL and DOK become CSR (scikit-learn's conversions), with the same predictions."""
    X, y = helpers.sparse_problem(n=200)
    sparse = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, backend=backend)
    dense = clone(sparse)
    for rows in (slice(0, 100), slice(100, 200)):
        sparse.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        dense.partial_fit(X[rows].toarray(), y[rows], classes=[0, 1, 2])
    assert_same_fit(sparse, dense)
    expected = dense.predict_proba(X.toarray())
    for fmt in ("csr", "csc", "coo", "lil", "dok"):
        given = X.asformat(fmt)
        np.testing.assert_allclose(sparse.predict_proba(given), expected, rtol=1e-9)
        np.testing.assert_array_equal(sparse.predict(given), dense.predict(X.toarray()))
    csc = clone(sparse).partial_fit(X.tocsc(), y, classes=[0, 1, 2])
    csr = clone(sparse).partial_fit(X, y, classes=[0, 1, 2])
    for a, b in zip(csc.coefs_, csr.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9)


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
def test_tfidf_pipeline_learns_sparse_text_features(backend):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    documents, labels = two_topic_documents(400)
    train, test = slice(0, 300), slice(300, 400)
    model = make_pipeline(TfidfVectorizer(),
                          MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=1e-2,
                                        max_iter=20, random_state=0, backend=backend))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(documents[train], labels[train])
    features = model[0].transform(documents[test])
    assert scipy.sparse.issparse(features) and features.shape[1] > 500
    assert features.nnz < 0.05 * np.prod(features.shape)
    assert model.score(documents[test], labels[test]) > 0.9
    # the same network on the dense tf-idf matrix predicts the same probabilities
    dense = clone(model[1]).fit(model[0].transform(documents[train]).toarray(), labels[train])
    np.testing.assert_allclose(model.predict_proba(documents[test]),
                               dense.predict_proba(features.toarray()), rtol=1e-9)


@pytest.mark.parametrize("backend", SPARSE_BACKENDS)
def test_one_hot_pipeline_equals_the_dense_one_hot_pipeline(backend):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    colours = np.array(["red", "green", "blue", "grey"])
    X = np.column_stack([rng.choice(colours, 300), rng.choice(["s", "m", "l"], 300),
                         rng.integers(0, 20, 300).astype(str)])
    y = ((X[:, 0] == "red") | (X[:, 1] == "l")).astype(int)
    mlp = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=1e-2, max_iter=30,
                        random_state=0, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sparse = make_pipeline(OneHotEncoder(), clone(mlp)).fit(X, y)
        dense = make_pipeline(OneHotEncoder(sparse_output=False), clone(mlp)).fit(X, y)
    assert scipy.sparse.issparse(sparse[0].transform(X))
    assert sparse.score(X, y) > 0.95
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X), rtol=1e-9)
