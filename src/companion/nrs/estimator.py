r"""NRS as a scikit-learn classifier, so it drops into ``cross_val_score``, pipelines and grid search.

``NRSClassifier`` standardizes the features, label-encodes the targets (strings work), builds an
:class:`~companion.nrs.layer.NRSNet` and trains it with :func:`companion.train.fit`, one epoch per
call. With ``early_stopping=True`` a stratified validation split is carved from the *training* data
and the weights of the best validation epoch are kept; the test data never choose an epoch (the
official code picks its best epoch on the test set, which flatters the result).

``MLPBaselineClassifier`` trains the plain MLP the same way, to isolate the NRS layer's effect;
``NRSRegressor`` is NRS for real-valued targets (standardized targets, squared loss).

Weights. ``fit(X, y, sample_weight=w)`` weights each row's loss, and ``class_weight``
(``"balanced"`` or ``{class: weight}``) multiplies it further, as in scikit-learn: the mini-batch
loss is :math:`\sum_i w_i \ell_i / \sum_i w_i` over the rows of the whole training set, so a
weight of 2 counts a row twice *in expectation* (mini-batch training cannot make it count exactly
twice, which is why scikit-learn's exact-equivalence check is the one check it does not pass).

Seeds. ``random_state`` defaults to 0, not ``None``: an unseeded network moves by up to 3 points
of accuracy between two identical calls on small data, which reads like a real difference.
Pass ``random_state=None`` for a fresh draw each time.

Epochs. One epoch is ``ceil(n / batch_size)`` steps on near-equal batches, so every training row
is seen once per epoch (no row is dropped, and no batch of one row breaks BatchNorm).

Book section: *NRS* "A scikit-learn estimator".
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, check_random_state, validate_data
from torch import nn

from .. import train
from ..runtime import torch_threads
from .layer import MLPNet, NRSNet, auto_n_mul


def _cross_entropy(model: nn.Module, batch) -> torch.Tensor:
    r"""Weighted cross-entropy of a batch ``(x, y, w)``: :math:`\sum_i w_i \ell_i / \sum_i w_i`
    with weights normalised to mean 1 over the training set (unit weights: the plain mean)."""
    x, y, w = batch
    return (F.cross_entropy(model(x), y, reduction="none") * w).mean()


def _squared_error(model: nn.Module, batch) -> torch.Tensor:
    """Weighted squared error of a batch ``(x, y (B, T), w)`` on standardized targets."""
    x, y, w = batch
    return (((model(x) - y) ** 2).mean(1) * w).mean()


def epoch_batches(n: int, batch_size: int) -> tuple[int, int]:
    """``(steps, batch)`` for one epoch over ``n`` rows with batches of at most ``batch_size``:
    ``steps = ceil(n / batch_size)`` near-equal batches, so every row is used once per epoch
    (``n // batch_size`` steps with ``drop_last`` would skip up to half of a small training set).

    Book section: *NRS* "A scikit-learn estimator".
    """
    steps = max(1, math.ceil(n / batch_size))
    return steps, math.ceil(n / steps)


class _TorchTabular(BaseEstimator):
    """Shared fit/predict for small torch models on standardized tabular features."""

    _loss = staticmethod(_cross_entropy)

    def _make_module(self, n_features: int, n_classes: int, seed: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def _check_params(self) -> None:
        checks = {
            "hidden_size": (self.hidden_size, 1), "max_epochs": (self.max_epochs, 1),
            "batch_size": (self.batch_size, 2), "n_iter_no_change": (self.n_iter_no_change, 1),
        }
        for name, (value, low) in checks.items():
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.n_hidden, numbers.Integral) or self.n_hidden < 0:
            raise ValueError(f"n_hidden must be a non-negative integer, got {self.n_hidden!r}")
        if not (isinstance(self.lr, numbers.Real) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (isinstance(self.weight_decay, numbers.Real) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a non-negative number, got {self.weight_decay!r}")
        if self.n_threads is not None and (not isinstance(self.n_threads, numbers.Integral) or self.n_threads < 1):
            raise ValueError(f"n_threads must be None or an integer >= 1, got {self.n_threads!r}")
        if not (isinstance(self.validation_fraction, numbers.Real) and 0 < self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")

    def _device(self) -> torch.device:
        if self.device is None:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def fit(self, X, y, sample_weight=None):
        """Standardize ``X``, prepare ``y``, train for ``max_epochs`` (or until early stopping).

        ``sample_weight`` ``(n_samples,)``: non-negative weights of the rows' losses (multiplied by
        ``class_weight`` for classifiers). Raises ``ValueError`` for NaN or infinite features,
        mismatched lengths, negative or all-zero weights, fewer than two classes or a bad
        hyperparameter, as scikit-learn estimators do.
        """
        self._check_params()
        with torch_threads(None if self.n_threads is None else int(self.n_threads)):
            return self._fit(X, y, sample_weight)

    def _targets(self, y, sample_weight):  # pragma: no cover - defined by the subclasses
        raise NotImplementedError

    def _fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], multi_output=self._multi_output)
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if len(X) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 samples to train (BatchNorm), "
                             f"got n_samples={len(X)}")
        y_enc, weights, n_out, stratify_on = self._targets(y, weights)
        if not weights.sum() > 0:
            raise ValueError("sample_weight (times class_weight) sums to zero: no row would be learned from")
        self.scaler_ = StandardScaler().fit(X, sample_weight=weights)
        Xs = self.scaler_.transform(X).astype(np.float32)

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        if self.early_stopping:
            stratify = None
            if stratify_on is not None and np.bincount(stratify_on).min() >= 2:
                stratify = stratify_on
            X_tr, X_val, y_tr, y_val, w_tr, w_val = train_test_split(
                Xs, y_enc, weights, test_size=self.validation_fraction, random_state=seed, stratify=stratify
            )
            if len(y_tr) < 2 or len(y_val) < 1:
                raise ValueError(f"early_stopping needs more samples: {len(y_enc)} cannot be split into train and validation")
        else:
            X_tr, y_tr, w_tr, X_val, y_val, w_val = Xs, y_enc, weights, None, None, None

        device = self._device()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._make_module(X.shape[1], n_out, seed)
        y_dtype = torch.long if self._loss is _cross_entropy else torch.float32
        w_tr = w_tr / w_tr.mean() if w_tr.sum() > 0 else w_tr
        data = (torch.tensor(X_tr), torch.tensor(y_tr, dtype=y_dtype), torch.tensor(w_tr, dtype=torch.float32))
        if device.type != "cpu":
            data = tuple(t.to(device) for t in data)
        val = None
        if X_val is not None:
            val = (torch.tensor(X_val, device=device), torch.tensor(y_val, dtype=y_dtype, device=device),
                   torch.tensor(w_val, dtype=torch.float32, device=device))

        optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps, batch_size = epoch_batches(len(y_tr), int(self.batch_size))
        if len(y_tr) - (steps - 1) * batch_size == 1 and steps > 1:
            steps -= 1  # a last batch of one row breaks BatchNorm: that row waits for the next epoch
        self.loss_curve_, self.validation_scores_ = [], []
        best_score, best_state, best_epoch, stale = -np.inf, None, 0, 0
        saved_rng = train.rng_state()  # fit() seeds the global RNGs; give the caller theirs back
        try:
            for epoch in range(int(self.max_epochs)):
                # one epoch per call: a fresh data order per epoch, the same optimizer throughout
                config = train.FitConfig(
                    steps=steps, batch_size=batch_size, lr=self.lr, optimizer="adamw",
                    weight_decay=self.weight_decay, schedule="constant", seed=seed + epoch, amp=False,
                    progress=False, log_every=10**9, drop_last=False, device=str(device),
                )
                result = train.fit(module, data, self._loss, config, optimizer=optimizer)
                self.loss_curve_.append(result.last("loss"))
                if val is not None:
                    score = self._val_score(module, *val)
                    self.validation_scores_.append(score)
                    if score > best_score:
                        best_score, best_epoch, stale = score, epoch + 1, 0
                        best_state = copy.deepcopy(module.state_dict())
                    else:
                        stale += 1
                        if stale >= self.n_iter_no_change:
                            break
        finally:
            train.set_rng_state(saved_rng)
        self.n_epochs_ = len(self.loss_curve_)
        if best_state is not None:
            module.load_state_dict(best_state)
        self.best_epoch_ = best_epoch if val is not None else self.n_epochs_
        self.module_ = module.eval()
        self.device_ = device
        return self

    @torch.no_grad()
    def _outputs(self, X) -> torch.Tensor:
        """The network's raw outputs for ``X``: ``(n_samples, n_outputs)`` float64 on the CPU."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        x = torch.tensor(self.scaler_.transform(X), dtype=torch.float32)
        out = []
        with torch_threads(None if self.n_threads is None else int(self.n_threads)):
            for chunk in torch.split(x, 8192):
                out.append(self.module_(chunk.to(self.device_)).double().cpu())
        return torch.cat(out)


def _check_class_weight(class_weight):
    if class_weight is None or class_weight == "balanced":
        return
    if isinstance(class_weight, dict):
        for c, w in class_weight.items():
            if isinstance(w, bool) or not isinstance(w, (numbers.Real, np.number)):
                raise ValueError(f"class_weight[{c!r}] must be a number >= 0, got {w!r}")
            if math.isnan(w):
                raise ValueError(f"class_weight[{c!r}] is NaN: every class weight must be a finite number >= 0")
            if not (math.isfinite(w) and w >= 0):
                # a negative weight would train the network against that class
                raise ValueError(f"class_weight[{c!r}] = {w!r}: every class weight must be a finite number >= 0")
        return
    raise ValueError(f"class_weight must be None, 'balanced' or a dict {{class: weight}}, got {class_weight!r}")


class _TorchTabularClassifier(ClassifierMixin, _TorchTabular):
    """Classifier side: label encoding, ``class_weight``, probabilities."""

    _multi_output = False

    def _targets(self, y, weights):
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y, but y has only one class: "
                f"{self.classes_[0]!r}"
            )
        _check_class_weight(self.class_weight)
        if self.class_weight is not None:
            if isinstance(self.class_weight, dict):
                unknown = set(self.class_weight) - set(self.classes_.tolist())
                if unknown:
                    raise ValueError(f"class_weight names classes not in y: {sorted(map(str, unknown))}")
            weights = weights * compute_sample_weight(self.class_weight, y)
        y_enc = encoder.transform(y)
        return y_enc, weights, len(self.classes_), y_enc

    @staticmethod
    @torch.no_grad()
    def _val_score(module: nn.Module, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
        """Weighted validation accuracy (higher is better)."""
        module.eval()
        right = (module(x).argmax(1) == y).float()
        module.train()
        return float((right * w).sum() / w.sum().clamp_min(1e-12))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        p = torch.softmax(self._outputs(X), dim=1).numpy()
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, as a label from ``classes_``."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class _NRSParams:
    """Parameter checks and the network shared by the NRS classifier and regressor."""

    def _check_params(self) -> None:
        super()._check_params()
        if not (self.n_mul == "auto" or (isinstance(self.n_mul, numbers.Integral) and not isinstance(self.n_mul, bool)
                                          and self.n_mul >= 1)):
            raise ValueError(f"n_mul must be 'auto' or an integer >= 1, got {self.n_mul!r}")
        k = self.subspace_size
        if not isinstance(k, numbers.Integral) or k < 1 or k % 2 == 0:
            raise ValueError(f"subspace_size (k) must be a positive odd integer, got {k!r}")

    def _make_module(self, n_features: int, n_outputs: int, seed: int) -> nn.Module:
        n_mul = auto_n_mul(n_features) if self.n_mul == "auto" else int(self.n_mul)
        return NRSNet(n_features, n_outputs, k=int(self.subspace_size), n_mul=n_mul, n_per_group=int(self.n_per_group),
                      hidden=int(self.hidden_size), n_hidden=int(self.n_hidden), seed=seed)


class NRSClassifier(_NRSParams, _TorchTabularClassifier):
    """Neural random subspace classifier for tabular data (a scikit-learn estimator).

    Parameters
    ----------
    n_mul : int or "auto"
        Copies of ``d`` subspaces: the NRS layer has ``C = d * n_mul`` channels. ``"auto"`` takes the
        smallest ``n_mul`` with ``C >= 256``.
    subspace_size : int
        ``k``: each subspace is a ``k x k`` grid of features (odd; the paper uses 3).
    n_per_group : int
        Subspaces mixed by each output channel of the grouped conv (the paper's tabular runs use 1).
    hidden_size, n_hidden : int
        The aggregating MLP: ``n_hidden`` Linear-BN-ReLU blocks of width ``hidden_size`` (paper: 2 x 256).
    max_epochs, batch_size, lr, weight_decay :
        Adam(W) training; the paper uses Adam at ``lr=1e-4`` with no schedule and no weight decay.
    early_stopping : bool
        Carve a stratified ``validation_fraction`` of the training data, stop after
        ``n_iter_no_change`` epochs without a better validation accuracy, keep the best epoch.
    device : str or None
        ``"cpu"``, ``"cuda"``...; ``None`` picks CUDA when available.
    n_threads : int or None
        torch's CPU threads during fit and predict (``None`` leaves torch's setting). Tabular
        batches are tiny, so one thread is fastest; more threads mostly wait on each other.
    random_state : int, RandomState or None
        Seeds the subspaces, the initialization, the data order and the validation split.
        Default 0, so two identical calls give the same model; ``None`` draws a fresh seed.
    class_weight : None, "balanced" or dict
        Multiplies each row's loss by its class's weight (``"balanced"``: ``n / (n_classes *
        count)``), on top of ``fit``'s ``sample_weight``.

    Attributes: ``classes_``, ``n_features_in_``, ``module_`` (the trained :class:`NRSNet`),
    ``scaler_``, ``loss_curve_`` (the last mini-batch loss of each epoch), ``validation_scores_``
    (validation accuracy per epoch, with early stopping), ``n_epochs_``, ``best_epoch_``.

    Book section: *NRS* "A scikit-learn estimator".
    """

    def __init__(self, n_mul="auto", subspace_size=3, n_per_group=1, hidden_size=256, n_hidden=2,
                 max_epochs=50, batch_size=128, lr=1e-3, weight_decay=0.0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, device=None, n_threads=1, random_state=0,
                 class_weight=None):
        self.class_weight = class_weight
        self.n_mul = n_mul
        self.subspace_size = subspace_size
        self.n_per_group = n_per_group
        self.hidden_size = hidden_size
        self.n_hidden = n_hidden
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

class NRSRegressor(_NRSParams, RegressorMixin, _TorchTabular):
    """Neural random subspace regressor (a scikit-learn estimator): NRS with a squared loss.

    The targets are standardized (per output) before training and mapped back on predict;
    ``y`` may be ``(n_samples,)`` or ``(n_samples, n_outputs)``. ``sample_weight`` weights each
    row's squared error. The parameters are those of :class:`NRSClassifier` (no
    ``class_weight``); with ``early_stopping`` the validation score is the weighted :math:`R^2`.

    Attributes: ``n_features_in_``, ``module_``, ``scaler_``, ``y_mean_``, ``y_scale_``,
    ``loss_curve_``, ``validation_scores_``, ``n_epochs_``, ``best_epoch_``.

    Book section: *NRS* "A scikit-learn estimator".
    """

    _loss = staticmethod(_squared_error)
    _multi_output = True

    def __init__(self, n_mul="auto", subspace_size=3, n_per_group=1, hidden_size=256, n_hidden=2,
                 max_epochs=50, batch_size=128, lr=1e-3, weight_decay=0.0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, device=None, n_threads=1, random_state=0):
        self.n_mul = n_mul
        self.subspace_size = subspace_size
        self.n_per_group = n_per_group
        self.hidden_size = hidden_size
        self.n_hidden = n_hidden
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _targets(self, y, weights):
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        with np.errstate(over="ignore", invalid="ignore"):
            self.y_mean_ = np.average(y2, axis=0, weights=weights) if weights.sum() > 0 else y2.mean(0)
            scale = np.sqrt(np.average((y2 - self.y_mean_) ** 2, axis=0, weights=weights)) if weights.sum() > 0 \
                else y2.std(0)
            if not np.all(np.isfinite(scale)):
                # targets near 1e154 or more: the squares overflow; the same spread computed on y / max|y - mean|
                span = np.abs(y2 - self.y_mean_).max(0)
                span = np.where(span > 0, span, 1.0)
                unit = (y2 - self.y_mean_) / span
                scale = span * (np.sqrt(np.average(unit**2, axis=0, weights=weights)) if weights.sum() > 0
                                else unit.std(0))
            self.y_scale_ = np.where(scale > 0, scale, 1.0)
            standard = (y2 - self.y_mean_) / self.y_scale_
        if not (np.all(np.isfinite(self.y_mean_)) and np.all(np.isfinite(standard))):
            raise ValueError(f"the targets y (|y| up to {np.abs(y2).max():.3g}) cannot be standardized in float64: "
                             "rescale them (e.g. divide by a power of ten) before fitting")
        return standard, weights, y2.shape[1], None

    @staticmethod
    @torch.no_grad()
    def _val_score(module: nn.Module, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
        """Weighted :math:`R^2` on the standardized validation targets (higher is better)."""
        module.eval()
        pred = module(x)
        module.train()
        res = (((pred - y) ** 2).sum(1) * w).sum()
        mean = (y * w[:, None]).sum(0) / w.sum().clamp_min(1e-12)
        tot = (((y - mean) ** 2).sum(1) * w).sum().clamp_min(1e-12)
        return float(1 - res / tot)

    def predict(self, X) -> np.ndarray:
        """Predicted targets: ``(n_samples,)``, or ``(n_samples, n_outputs)`` when fitted on 2-D ``y``."""
        out = self._outputs(X).numpy() * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_1d else out


class MLPBaselineClassifier(_TorchTabularClassifier):
    """The paper's plain MLP baseline (BatchNorm MLP on the raw features), trained like NRS.

    Same standardization, optimizer, epochs and early stopping as :class:`NRSClassifier`; only the
    NRS layer is missing, so the difference between the two is the layer's effect.

    Book section: *NRS* "Quick run".
    """

    def __init__(self, hidden_size=256, n_hidden=3, max_epochs=50, batch_size=128, lr=1e-3, weight_decay=0.0,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, device=None, n_threads=1,
                 random_state=0, class_weight=None):
        self.class_weight = class_weight
        self.hidden_size = hidden_size
        self.n_hidden = n_hidden
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    def _make_module(self, n_features: int, n_classes: int, seed: int) -> nn.Module:
        return MLPNet(n_features, n_classes, hidden=int(self.hidden_size), n_hidden=int(self.n_hidden))
