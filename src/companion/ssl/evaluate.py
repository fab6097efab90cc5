"""Evaluating a frozen encoder: feature extraction, weighted kNN (InstDisc), a linear probe, and the
collapse diagnostic (standard deviation of L2-normalized embeddings).

Book sections: *S3L* "Evaluating the features", *SSQL* "Evaluating at every bit width",
*US3L* "Evaluating every width", *Efficient SSL* "kNN and linear evaluation", *Tobias* "Background swap inside MoCo v2".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..tensors import as_tensor, check_batch_size


def _first(item):
    return item[0] if isinstance(item, (tuple, list)) else item


@torch.no_grad()
def extract_features(
    encoder: nn.Module, data: torch.Tensor | Dataset, batch_size: int = 256, device: str | torch.device | None = None,
    progress: bool = False, num_workers: int = 0,
) -> torch.Tensor:
    """Encode ``data`` (an ``(N, C, H, W)`` tensor, or a Dataset whose items are images or ``(image, label)``)
    in eval mode without gradients; returns ``(N, d)`` float32 features on the CPU.

    The encoder's train/eval mode is restored afterwards. Book section: *S3L* "Evaluating the features".
    """
    check_batch_size(batch_size)
    if torch.is_tensor(data):
        if data.ndim != 4:
            raise ValueError(f"data must be an image batch (N, C, H, W), got shape {tuple(data.shape)}")
        if len(data) == 0:
            raise ValueError("data is empty")
        batches = data.split(batch_size)
    else:
        if len(data) == 0:
            raise ValueError("data is empty")
        batches = (_first(b) for b in DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers))
    if device is None:
        device = next(encoder.parameters()).device
    from tqdm.auto import tqdm

    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        total = -(-len(data) // batch_size)
        for x in tqdm(batches, total=total, disable=not progress, desc="features", leave=False):
            out.append(encoder(x.to(device, non_blocking=True)).float().cpu())  # (B, d)
    finally:
        encoder.train(was_training)
    return torch.cat(out)


def _check_features(train_f, train_y, test_f, test_y=None):
    """``(train_f, test_f)`` checked (:mod:`companion.tensors`: NumPy converted, float64 cast to float32,
    meta, NaN/inf and empty refused)."""
    train_f = as_tensor(train_f, "train_f", ndim=2, shape_hint="(N, d)")
    test_f = as_tensor(test_f, "test_f", ndim=2, shape_hint="(N, d)")
    if train_f.shape[1] != test_f.shape[1]:
        raise ValueError(f"train and test features differ in dimension: {train_f.shape[1]} vs {test_f.shape[1]}")
    if len(train_y) != len(train_f):
        raise ValueError(f"train_y has {len(train_y)} labels for {len(train_f)} features")
    if test_y is not None and len(test_y) != len(test_f):
        raise ValueError(f"test_y has {len(test_y)} labels for {len(test_f)} features")
    return train_f, test_f


def knn_predict(
    train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, k: int = 200, temperature: float = 0.1,
    num_classes: int | None = None, batch_size: int = 1024, return_scores: bool = False,
):
    r"""Weighted kNN on L2-normalized features (InstDisc, Wu et al. 2018).

    For a test feature :math:`f` with neighbours :math:`\mathcal{N}_k(f)` by cosine similarity
    :math:`s_i = \bar f\cdot\bar f_i`, the score of class :math:`c` is

    .. math:: w_c = \sum_{i\in\mathcal{N}_k(f)} e^{s_i/\tau}\,[y_i = c], \qquad \hat y = \arg\max_c w_c

    ``k`` is capped at the number of training features. Returns predictions ``(M,)`` (and the class
    scores ``(M, num_classes)`` when ``return_scores``). Book section: *S3L* "Evaluating the features".
    """
    train_y = torch.as_tensor(train_y).long()
    train_f, test_f = _check_features(train_f, train_y, test_f)
    check_batch_size(batch_size)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if train_y.min() < 0:
        raise ValueError("labels must be non-negative class indices")
    c = int(num_classes) if num_classes is not None else int(train_y.max()) + 1
    k = min(k, len(train_f))
    tr = F.normalize(train_f.float(), dim=1)  # (N, d)
    preds, scores = [], []
    for te in F.normalize(test_f.float(), dim=1).split(batch_size):
        sim, idx = (te @ tr.t()).topk(k, dim=1)  # (B, k)
        w = (sim / temperature).exp()
        s = torch.zeros(len(te), c).scatter_add_(1, train_y[idx], w)  # (B, C)
        preds.append(s.argmax(1))
        scores.append(s)
    pred = torch.cat(preds)
    return (pred, torch.cat(scores)) if return_scores else pred


def knn_accuracy(
    train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor, k: int = 200, temperature: float = 0.1,
) -> float:
    """Top-1 accuracy in [0, 1] of :func:`knn_predict` (InstDisc defaults k = 200, tau = 0.1).

    Book section: *S3L* "Evaluating the features".
    """
    test_y = torch.as_tensor(test_y).long()
    train_f, test_f = _check_features(train_f, torch.as_tensor(train_y), test_f, test_y)
    num_classes = int(max(int(torch.as_tensor(train_y).max()), int(test_y.max()))) + 1
    pred = knn_predict(train_f, train_y, test_f, k=k, temperature=temperature, num_classes=num_classes)
    return float((pred == test_y).float().mean())


def linear_probe(
    train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor, epochs: int = 100,
    lr: float = 3e-2, weight_decay: float = 1e-4, batch_size: int = 1024, standardize: bool = True, seed: int = 0,
    device: str | torch.device | None = None, progress: bool = False, num_threads: int | None = None,
) -> float:
    r"""Top-1 accuracy in [0, 1] of a linear classifier trained on frozen features.

    Features are standardized with the training mean and standard deviation (when ``standardize``), then
    a softmax regression :math:`\hat y = \arg\max(Wf + b)` is trained with AdamW and cross entropy for
    ``epochs`` passes through :func:`companion.train.fit` (cosine schedule). On small feature sets it
    lands close to scikit-learn's ``LogisticRegression``. ``num_threads``: CPU threads while training
    (1 is fastest for small feature sets; None leaves the setting alone).
    Book section: *S3L* "Evaluating the features".
    """
    from ..train import FitConfig, fit

    train_y = torch.as_tensor(train_y).long()
    test_y = torch.as_tensor(test_y).long()
    train_f, test_f = _check_features(train_f, train_y, test_f, test_y)
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    x_tr, x_te = train_f.float(), test_f.float()
    if standardize:
        mu, sd = x_tr.mean(0), x_tr.std(0)
        sd = torch.where(sd > 1e-6, sd, torch.ones_like(sd))  # constant features stay unscaled, as in StandardScaler
        x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    num_classes = int(max(int(train_y.max()), int(test_y.max()))) + 1
    head = nn.Linear(x_tr.shape[1], num_classes)
    bs = min(batch_size, len(x_tr))
    steps_per_epoch = -(-len(x_tr) // bs)
    config = FitConfig(
        steps=epochs * steps_per_epoch, batch_size=bs, lr=lr, weight_decay=weight_decay, optimizer="adamw",
        seed=seed, progress=progress, drop_last=False, device=str(device) if device is not None else "cpu", amp=False,
    )
    from .pretrain import cpu_threads

    with cpu_threads(num_threads if config.device == "cpu" else None):
        fit(head, (x_tr, train_y), lambda m, b: F.cross_entropy(m(b[0]), b[1]), config)
    head.eval()
    with torch.no_grad():
        pred = head(x_te.to(next(head.parameters()).device)).argmax(1).cpu()
    return float((pred == test_y).float().mean())


@torch.no_grad()
def embedding_std(z: torch.Tensor) -> float:
    r"""Collapse diagnostic of SimSiam (Chen & He 2021): the per-dimension standard deviation of
    L2-normalized embeddings, averaged over the d dimensions.

    .. math:: \mathrm{std}(z) = \frac1d\sum_{j=1}^{d} \operatorname{std}_i\Big(\frac{z_{ij}}{\lVert z_i\rVert_2}\Big)

    About :math:`1/\sqrt d` for healthy (spread-out) embeddings, 0 when they collapse to one point.
    Book section: *SSQL* "The SimSiam loss with a quantized branch".
    """
    if not torch.is_tensor(z) or z.ndim != 2 or len(z) < 2:
        raise ValueError(f"z must be a (N, d) tensor with N >= 2, got {getattr(z, 'shape', type(z))}")
    return float(F.normalize(z.detach().float(), dim=1).std(0).mean())
