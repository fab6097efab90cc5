"""NRS as a scikit-learn classifier, so it drops into ``cross_val_score``, pipelines and grid search.

``NRSClassifier`` standardizes the features, label-encodes the targets (strings work), builds an
:class:`~companion.nrs.layer.NRSNet` and trains it with :func:`companion.train.fit`, one epoch per
call. With ``early_stopping=True`` a stratified validation split is carved from the *training* data
and the weights of the best validation epoch are kept; the test data never choose an epoch (the
official code picks its best epoch on the test set, which flatters the result).

``MLPBaselineClassifier`` trains the plain MLP the same way, to isolate the NRS layer's effect.

Book section: *NRS* "A scikit-learn estimator".
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data
from torch import nn

from .. import train
from ..runtime import torch_threads
from .layer import MLPNet, NRSNet, auto_n_mul


def _cross_entropy(model: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


class _TorchTabularClassifier(ClassifierMixin, BaseEstimator):
    """Shared fit/predict for small torch classifiers on standardized tabular features."""

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

    def fit(self, X, y):
        """Standardize ``X``, encode ``y``, train for ``max_epochs`` (or until early stopping).

        Raises ``ValueError`` for NaN or infinite features, mismatched lengths, fewer than two
        classes or a bad hyperparameter, as scikit-learn estimators do.
        """
        self._check_params()
        with torch_threads(None if self.n_threads is None else int(self.n_threads)):
            return self._fit(X, y)

    def _fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y, but y has only one class: "
                f"{self.classes_[0]!r}"
            )
        y_enc = encoder.transform(y)
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X).astype(np.float32)

        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        if self.early_stopping:
            counts = np.bincount(y_enc)
            stratify = y_enc if counts.min() >= 2 else None
            X_tr, X_val, y_tr, y_val = train_test_split(
                Xs, y_enc, test_size=self.validation_fraction, random_state=seed, stratify=stratify
            )
            if len(y_tr) < 2 or len(y_val) < 1:
                raise ValueError(f"early_stopping needs more samples: {len(y_enc)} cannot be split into train and validation")
        else:
            X_tr, y_tr, X_val, y_val = Xs, y_enc, None, None

        device = self._device()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = self._make_module(X.shape[1], len(self.classes_), seed)
        data = (torch.tensor(X_tr), torch.tensor(y_tr, dtype=torch.long))
        if device.type != "cpu":
            data = tuple(t.to(device) for t in data)
        val = None
        if X_val is not None:
            val = (torch.tensor(X_val, device=device), torch.tensor(y_val, dtype=torch.long, device=device))

        optimizer = torch.optim.AdamW(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        batch_size = int(min(self.batch_size, len(y_tr)))
        self.loss_curve_, self.validation_scores_ = [], []
        best_score, best_state, best_epoch, stale = -np.inf, None, 0, 0
        saved_rng = train.rng_state()  # fit() seeds the global RNGs; give the caller theirs back
        try:
            for epoch in range(int(self.max_epochs)):
                # one epoch per call: a fresh data order per epoch, the same optimizer throughout
                config = train.FitConfig(
                    steps=len(y_tr) // batch_size, batch_size=batch_size, lr=self.lr, optimizer="adamw",
                    weight_decay=self.weight_decay, schedule="constant", seed=seed + epoch, amp=False,
                    progress=False, log_every=10**9, drop_last=True, device=str(device),
                )
                result = train.fit(module, data, _cross_entropy, config, optimizer=optimizer)
                self.loss_curve_.append(result.last("loss"))
                if val is not None:
                    score = self._accuracy(module, *val)
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

    @staticmethod
    @torch.no_grad()
    def _accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        module.eval()
        acc = (module(x).argmax(1) == y).float().mean().item()
        module.train()
        return acc

    @torch.no_grad()
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        x = torch.tensor(self.scaler_.transform(X), dtype=torch.float32)
        logits = []
        with torch_threads(None if self.n_threads is None else int(self.n_threads)):
            for chunk in torch.split(x, 8192):
                logits.append(self.module_(chunk.to(self.device_)).double().cpu())
        p = torch.softmax(torch.cat(logits), dim=1).numpy()
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, as a label from ``classes_``."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class NRSClassifier(_TorchTabularClassifier):
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

    Attributes: ``classes_``, ``n_features_in_``, ``module_`` (the trained :class:`NRSNet`),
    ``scaler_``, ``loss_curve_`` (the last mini-batch loss of each epoch), ``validation_scores_``
    (validation accuracy per epoch, with early stopping), ``n_epochs_``, ``best_epoch_``.

    Book section: *NRS* "A scikit-learn estimator".
    """

    def __init__(self, n_mul="auto", subspace_size=3, n_per_group=1, hidden_size=256, n_hidden=2,
                 max_epochs=50, batch_size=128, lr=1e-3, weight_decay=0.0, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, device=None, n_threads=1, random_state=None):
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

    def _check_params(self) -> None:
        super()._check_params()
        if not (self.n_mul == "auto" or (isinstance(self.n_mul, numbers.Integral) and not isinstance(self.n_mul, bool)
                                          and self.n_mul >= 1)):
            raise ValueError(f"n_mul must be 'auto' or an integer >= 1, got {self.n_mul!r}")
        k = self.subspace_size
        if not isinstance(k, numbers.Integral) or k < 1 or k % 2 == 0:
            raise ValueError(f"subspace_size (k) must be a positive odd integer, got {k!r}")

    def _make_module(self, n_features: int, n_classes: int, seed: int) -> nn.Module:
        n_mul = auto_n_mul(n_features) if self.n_mul == "auto" else int(self.n_mul)
        return NRSNet(n_features, n_classes, k=int(self.subspace_size), n_mul=n_mul, n_per_group=int(self.n_per_group),
                      hidden=int(self.hidden_size), n_hidden=int(self.n_hidden), seed=seed)


class MLPBaselineClassifier(_TorchTabularClassifier):
    """The paper's plain MLP baseline (BatchNorm MLP on the raw features), trained like NRS.

    Same standardization, optimizer, epochs and early stopping as :class:`NRSClassifier`; only the
    NRS layer is missing, so the difference between the two is the layer's effect.

    Book section: *NRS* "Quick run".
    """

    def __init__(self, hidden_size=256, n_hidden=3, max_epochs=50, batch_size=128, lr=1e-3, weight_decay=0.0,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, device=None, n_threads=1,
                 random_state=None):
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
