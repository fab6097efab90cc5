r"""Evaluating a pretrained encoder after post-training quantization (PTQ) at many ``(w, a)`` pairs.

For each pair: wrap the frozen encoder in a :class:`~companion.quant.QuantizedModel` (first conv
pinned to 8/8), calibrate activation ranges with MinMax observers on a fixed number of training
images in eval mode, extract features of the train and test sets at that bit-width, and score them
with a kNN classifier and/or a linear probe (the classifier itself stays full precision).
The pair ``(0, 0)`` ("FP") is the untouched full-precision encoder.

Book section: *SSQL* "Evaluating at every bit width".
"""

from __future__ import annotations

import torch
from torch import nn

from ..quant import QuantizedModel, check_bits, check_weight_bits
from ..ssl.evaluate import extract_features, knn_accuracy

#: the SSQL code's linear evaluation (configs/cifar/resnet18_linear_eval_cifar.yaml): SGD, momentum 0.9,
#: lr 30, no weight decay, the rate divided by 10 at 60% and 80% of the epochs (60 and 80 of 100)
PROBE_LR, PROBE_MOMENTUM, PROBE_MILESTONES, PROBE_BATCH = 30.0, 0.9, (0.6, 0.8), 128


def sgd_linear_probe(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                     epochs: int = 100, *, lr: float = PROBE_LR, momentum: float = PROBE_MOMENTUM,
                     milestones=PROBE_MILESTONES, batch_size: int = PROBE_BATCH, seed: int = 0) -> float:
    """Top-1 accuracy in [0, 1] of a linear classifier on frozen, unstandardized features, trained as
    the SSQL code trains it: SGD (``momentum``, no weight decay) at ``lr``, divided by 10 at each
    fraction of ``epochs`` in ``milestones``, shuffled batches of ``batch_size``.
    Book section: *SSQL* "Evaluating at every bit width".
    """
    from ..ssl.evaluate import _check_features

    train_y, test_y = torch.as_tensor(train_y).long(), torch.as_tensor(test_y).long()
    train_f, test_f = _check_features(train_f, train_y, test_f, test_y)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not all(isinstance(m, float) and 0 < m < 1 for m in milestones):
        raise ValueError(f"milestones must be fractions of the epochs in (0, 1), got {milestones!r}")
    x_tr, x_te = train_f.float(), test_f.float()
    gen = torch.Generator().manual_seed(seed)
    num_classes = int(max(int(train_y.max()), int(test_y.max()))) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(x_tr.shape[1], num_classes)
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum, weight_decay=0.0)
    steps = [round(m * epochs) for m in milestones]  # epochs at which the rate drops
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr * 0.1 ** sum(epoch >= s for s in steps)
        for idx in torch.randperm(len(x_tr), generator=gen).split(batch_size):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(head(x_tr[idx]), train_y[idx]).backward()
            opt.step()
    with torch.no_grad():
        pred = head(x_te).argmax(1)
    return float((pred == test_y).float().mean())


def pair_name(w_bits, a_bits) -> str:
    """``"2w4f"`` (the paper's notation: w-bit weights, f-bit features), ``"FP"`` for ``(0, 0)``."""
    w, a = check_weight_bits(w_bits, "w_bits"), check_bits(a_bits, "a_bits")
    if w == 0 and a == 0:
        return "FP"
    return f"{w or 'FP'}w{a or 'FP'}f"


def at_bits(encoder: nn.Module, w_bits, a_bits, calibration: torch.Tensor, *, convention: str = "ssql",
            first: tuple[int, int] | None = (8, 8), batch_size: int = 256) -> nn.Module:
    """The encoder post-training-quantized to ``(w_bits, a_bits)``, calibrated on ``calibration`` images.

    ``(0, 0)`` returns the encoder itself. Calibration runs in eval mode (BN uses running statistics).
    Book section: *SSQL* "Evaluating at every bit width".
    """
    w, a = check_weight_bits(w_bits, "w_bits"), check_bits(a_bits, "a_bits")
    if w == 0 and a == 0:
        return encoder
    if not torch.is_tensor(calibration) or calibration.ndim != 4 or len(calibration) == 0:
        raise ValueError(f"calibration must be a non-empty image batch (N, C, H, W), got {getattr(calibration, 'shape', type(calibration))}")
    q = QuantizedModel(encoder, w, a, convention=convention, first=first)
    was_training = encoder.training
    encoder.eval()
    try:
        q.calibrate(calibration.split(batch_size))
    finally:
        encoder.train(was_training)
    return q


def ptq_grid(encoder: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
             test_y: torch.Tensor, pairs, *, linear_pairs=(), calibration_images: int = 256,
             convention: str = "ssql", knn_k: int = 20, linear_epochs: int = 100, batch_size: int = 256,
             features=None) -> dict[str, dict[str, float]]:
    r"""Accuracy (percent) of ``encoder`` after PTQ at every ``(w, a)`` in ``pairs``.

    Returns ``{"knn": {pair: acc}, "linear": {pair: acc}, "feature_sqnr": {pair: dB}}``: a kNN
    probe at every pair, a linear probe (:func:`sgd_linear_probe`, the SSQL code's recipe, on
    features extracted once) at the pairs also listed in ``linear_pairs``, and the SQNR of
    the quantized test features against the full-precision ones,
    $10\log_{10}\big(\sum f^2/\sum (f - f_q)^2\big)$, which is what SSQL's extra loss term pushes up.
    The first ``calibration_images`` training images calibrate the ranges (the SSQL code's
    evaluation, through a counting slip, uses one batch per process; here the number is explicit).
    ``features``: ``None`` or a callable ``(model, x) -> (N, d)`` (default
    :func:`companion.ssl.extract_features`). Book section: *SSQL* "Evaluating at every bit width".
    """
    from ..quant import sqnr_db

    pairs = [(check_weight_bits(w, "w_bits"), check_bits(a, "a_bits")) for w, a in pairs]
    linear_pairs = {(check_weight_bits(w, "w_bits"), check_bits(a, "a_bits")) for w, a in linear_pairs}
    if not pairs:
        raise ValueError("pairs is empty: give at least one (w_bits, a_bits) pair, (0, 0) for full precision")
    if not isinstance(calibration_images, int) or calibration_images <= 0:
        raise ValueError(f"calibration_images must be a positive integer, got {calibration_images!r}")
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError(f"images and labels differ in number: train {len(train_x)} vs {len(train_y)}, "
                         f"test {len(test_x)} vs {len(test_y)}")
    extract = features or (lambda m, x: extract_features(m, x, batch_size=batch_size))
    out: dict[str, dict[str, float]] = {"knn": {}, "linear": {}, "feature_sqnr": {}}
    fp_test = extract(encoder, test_x)  # (M, d)
    for w, a in pairs:
        model = at_bits(encoder, w, a, train_x[:calibration_images], convention=convention, batch_size=batch_size)
        f_tr, f_te = extract(model, train_x), extract(model, test_x)  # (N, d), (M, d)
        name = pair_name(w, a)
        if (w, a) != (0, 0):
            out["feature_sqnr"][name] = sqnr_db(fp_test, f_te)
        out["knn"][name] = 100 * knn_accuracy(f_tr, train_y, f_te, test_y, k=knn_k)
        if (w, a) in linear_pairs:
            out["linear"][name] = 100 * sgd_linear_probe(f_tr, train_y, f_te, test_y, epochs=linear_epochs)
    return out
