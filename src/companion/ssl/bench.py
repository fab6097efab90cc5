"""The shared small-scale SSL benchmark: one data set, encoder, augmentation and per-method recipe that
every self-supervised chapter's quick and study presets start from, chosen so that a few hundred CPU
steps of pretraining measurably beat the same network at random initialization.

- data: scikit-learn's 1,797 handwritten digits (they ship with the library), 1,200 for training and
  pretraining, 597 held out for evaluation, at their native 8 px (or upsampled, e.g. 16 px for a
  "full resolution" against an 8 px "small resolution"); or, with ``dataset="glyphs"``, 1,800 glyphs
  drawn at 32 px (:func:`companion.data.make_glyphs`), whose detail a small resolution does lose;
- encoder: :class:`~companion.ssl.encoders.TinyCNN` of width 8 (32 features);
- augmentation: batched random resized crops of 50-100% of the digit, no flip (a mirrored digit is
  another symbol), no colour (one channel), both views drawn in one call (:func:`bench_views`);
- recipes (:data:`RECIPES`): SGD with the learning rate and heads each method needs, 300 steps of
  batch 64 at both tiers (:data:`STEPS`; the study tier has more seeds);
- evaluation (:func:`bench_evaluate`): weighted kNN (k = 200, tau = 0.1) and a linear probe on
  frozen features, in percent; :func:`sanity_claims` turns per-seed accuracies of the trained and the
  untrained encoder into the ``sanity_knn`` / ``sanity_linear`` claims.

Why digits and not the synthetic scenes: on the scenes, colour, texture and background are shortcuts
that two crops of one image share, so the instance task is solved without learning shape, and no
method beat random initialization in a CPU budget; on digits every method does within 600 steps.

Book sections: *S3L* "Evaluating the features" (and every SSL chapter's "The untrained baseline").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .augment import GPUAugment
from .encoders import TinyCNN
from .evaluate import extract_features, knn_accuracy, linear_probe
from .pretrain import PretrainConfig

#: The methods every SSL chapter compares (the single-branch method is the Efficient-SSL chapter's own).
BENCH_METHODS = ("simsiam", "byol", "moco", "simclr")
#: Pretraining steps of batch 64 per tier (the full tier trains on the paper's data instead). 300 steps
#: were not enough for SimSiam and BYOL (gains of -0.5 to +4 points on seed 0); the tiers differ in seeds.
STEPS = {"quick": 600, "study": 600}
#: Per-method learning rate (SGD, momentum 0.9, weight decay 5e-4, cosine) and head sizes.
#: SimSiam needs lr 0.2 and wide heads: at 0.05 or with 128/32 heads it stays near the random encoder.
RECIPES = {
    "simsiam": {"lr": 0.2, "method_kwargs": {"proj_dim": 512, "pred_dim": 128, "proj_layers": 2}},
    "byol": {"lr": 0.05, "method_kwargs": {"proj_dim": 64, "hidden": 128, "base_momentum": 0.99}},
    "moco": {"lr": 0.05, "method_kwargs": {"dim": 64, "queue_size": 512, "temperature": 0.2, "momentum": 0.99}},
    "simclr": {"lr": 0.05, "method_kwargs": {"dim": 64, "temperature": 0.2}},
}
#: Encoder width (TinyCNN: features = 4 x width), batch size, digit crop scale.
WIDTH, BATCH_SIZE, CROP_SCALE = 8, 64, (0.5, 1.0)
#: Evaluation settings: kNN (InstDisc defaults) and the linear probe's epochs.
KNN_K, KNN_TEMPERATURE, LINEAR_EPOCHS = 200, 0.1, 100
#: Digits: images held out for evaluation come after the first ``N_TRAIN`` of a seeded permutation.
N_TRAIN = 1200
#: The data sets :func:`bench_data` serves; glyphs: how many (the same 1,200 / 600 split) and their size.
DATASETS = ("digits", "glyphs")
GLYPH_N, GLYPH_SIZE = 1800, 32


@dataclass
class BenchData:
    """``train_x`` ``(1200, 1, r, r)`` float in [0, 1] (pretraining and the probes' training set),
    ``train_y``, ``test_x`` ``(597, 1, r, r)``, ``test_y``; the split is fixed (permutation seed 0)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[-1])

    def __iter__(self):  # ``xtr, ytr, xte, yte = bench_data()``
        return iter((self.train_x, self.train_y, self.test_x, self.test_y))


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return value


def bench_data(resolution: int = 8, n_train: int = N_TRAIN, dataset: str = "digits") -> BenchData:
    """The benchmark's digits at ``resolution`` px (8 = native; larger sizes are bilinear upsamplings),
    or with ``dataset="glyphs"`` :data:`GLYPH_N` glyphs (:func:`companion.data.make_glyphs`, seed 0)
    drawn at 32 px and resized (antialiased bilinear) to ``resolution``: data with detail at 32 px.

    The train/test split is the same for every resolution, so an 8 px and a 16 px run see the same
    images. Book section: *S3L* "Evaluating the features".
    """
    from ..data import load_digits_images

    _check_int("resolution", resolution, 8)
    _check_int("n_train", n_train, 1)
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if dataset == "glyphs":
        x, y = _glyph_images(resolution)
    else:
        x, y = load_digits_images(None if resolution == 8 else resolution)
    if n_train >= len(x):
        raise ValueError(f"n_train must be below {len(x)} (the number of {dataset}) to leave a test set, got {n_train}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:n_train], perm[n_train:]
    return BenchData(x[tr].contiguous(), y[tr], x[te].contiguous(), y[te])


def _glyph_images(resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch.nn.functional as F

    from ..data import make_glyphs

    g = make_glyphs(GLYPH_N, size=GLYPH_SIZE, seed=0)
    x = g.images
    if resolution != GLYPH_SIZE:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0.0, 1.0), g.labels


def bench_encoder(seed: int = 0, width: int = WIDTH, in_channels: int = 1) -> TinyCNN:
    """The benchmark's encoder, built after ``seed_everything(seed)``: the untrained baseline of seed s
    and the network every method pretrains at seed s start from the same weights.

    Book section: *S3L* "Evaluating the features".
    """
    from ..runtime import seed_everything

    _check_int("seed", seed, 0)
    seed_everything(seed)
    return TinyCNN(in_channels=in_channels, width=width)


def bench_augment(resolution: int = 8) -> dict:
    """Keyword arguments of :class:`~companion.ssl.augment.GPUAugment` / ``PretrainConfig.augment``:
    crops of 50-100% of the image, no flip, no blur (a 3x3 blur erases an 8 px digit)."""
    _check_int("resolution", resolution, 8)
    return {"scale": CROP_SCALE, "p_flip": 0.0}


class PairViews:
    """``(batch, aug) -> (v1, v2)``: both views of a batch from one :class:`GPUAugment` call on ``[x; x]``
    (half the small-tensor calls of two separate draws; the draws for the two halves are independent).
    It has the signature of ``pretrain(..., views=...)``; its own ``augment`` replaces ``aug``.

    Book section: *S3L* "Evaluating the features".
    """

    def __init__(self, augment: GPUAugment):
        if not isinstance(augment, GPUAugment):
            raise TypeError(f"augment must be a GPUAugment, got {type(augment).__name__}")
        self.augment = augment

    def __call__(self, batch, aug=None) -> tuple[torch.Tensor, torch.Tensor]:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch  # fit's batch tuple, or the images
        v = self.augment(torch.cat([x, x]))  # (2N, C, r, r)
        return v[: len(x)], v[len(x) :]

    def __repr__(self) -> str:
        return f"PairViews({self.augment!r})"


def bench_views(resolution: int = 8, **augment) -> PairViews:
    """The benchmark's view pair at ``resolution`` px (for ``pretrain(..., views=...)``); ``augment``
    overrides :func:`bench_augment`. Book section: *S3L* "Evaluating the features"."""
    kw = {**bench_augment(resolution), **augment}
    return PairViews(GPUAugment(resolution, blur=False, **kw))


def bench_config(method: str, tier: str = "quick", seed: int = 0, *, steps: int | None = None,
                 resolution: int = 8, **overrides) -> PretrainConfig:
    """The :class:`PretrainConfig` of ``method`` on the benchmark: :data:`RECIPES`, :data:`STEPS` of
    ``tier`` (or ``steps``), batch 64, one CPU thread, crops of :func:`bench_augment`.
    ``overrides`` replace any field. Book section: *S3L* "Evaluating the features".
    """
    if method not in RECIPES:
        raise ValueError(f"method must be one of {sorted(RECIPES)}, got {method!r}")
    if steps is None:
        if tier not in STEPS:
            raise ValueError(f"tier must be one of {sorted(STEPS)} (or pass steps=...), got {tier!r}")
        steps = STEPS[tier]
    _check_int("steps", steps, 1)
    recipe = RECIPES[method]
    base = dict(
        method=method, encoder="tiny", encoder_kwargs={"width": WIDTH}, resolution=resolution, steps=steps,
        batch_size=BATCH_SIZE, lr=recipe["lr"], weight_decay=5e-4, optimizer="sgd", seed=seed,
        method_kwargs=dict(recipe["method_kwargs"]), augment=bench_augment(resolution), blur=False,
        gpu_augment=True, progress=False, device="cpu", num_threads=1,
    )
    base.update(overrides)
    return PretrainConfig(**base)


def bench_pretrain(method: str, tier: str = "quick", seed: int = 0, data: BenchData | None = None, **kw):
    """Pretrain the benchmark encoder of ``seed`` with ``method``: ``(method_module, fit_result)``.

    ``kw`` go to :func:`bench_config`. Book section: *S3L* "Evaluating the features".
    """
    from .pretrain import pretrain

    data = data if data is not None else bench_data(kw.get("resolution", 8))
    cfg = bench_config(method, tier, seed, **kw)
    encoder = bench_encoder(seed, width=cfg.encoder_kwargs.get("width", WIDTH), in_channels=data.train_x.shape[1])
    return pretrain(method, encoder, data.train_x, cfg, views=bench_views(cfg.resolution, **cfg.augment))


def bench_evaluate(encoder: torch.nn.Module, data: BenchData, *, linear: bool = True, seed: int = 0) -> dict:
    """``{"knn": %, "linear": %}`` of the frozen ``encoder`` on ``data`` (kNN k = 200, tau = 0.1; a
    linear probe of 100 epochs, one CPU thread). Book section: *S3L* "Evaluating the features"."""
    if not isinstance(data, BenchData):
        raise TypeError(f"data must be a BenchData (from bench_data), got {type(data).__name__}")
    ftr, fte = extract_features(encoder, data.train_x), extract_features(encoder, data.test_x)
    out = {"knn": 100 * knn_accuracy(ftr, data.train_y, fte, data.test_y, k=KNN_K, temperature=KNN_TEMPERATURE)}
    if linear:
        out["linear"] = 100 * linear_probe(ftr, data.train_y, fte, data.test_y, epochs=LINEAR_EPOCHS, seed=seed,
                                           num_threads=1)
    return out


def sanity_claims(tier: str, trained: dict, untrained: dict, what: str = "the pretrained encoder",
                  where: str = "digits") -> list[dict]:
    """The ``sanity_knn`` and ``sanity_linear`` claims: ``trained[metric]`` minus ``untrained[metric]``
    per seed (paired, t interval), for metric ``knn`` and ``linear`` (lists of percentages, one per seed).

    Book section: *S3L* "Evaluating the features".
    """
    from .. import results

    out = []
    for metric, cid, probe in (("knn", "sanity_knn", "kNN"), ("linear", "sanity_linear", "linear-probe")):
        a, b = trained.get(metric), untrained.get(metric)
        if a is None or b is None:
            raise ValueError(f"trained and untrained need a per-seed list under {metric!r}")
        if len(a) != len(b):
            raise ValueError(f"{metric}: {len(a)} trained values against {len(b)} untrained (pair them by seed)")
        out.append(results.claim(
            cid, f"Self-supervised pretraining improves {what} over the same network at random initialization",
            f"{probe} accuracy on {where}, pretrained minus untrained, paired by seed", tier, list(a), list(b),
        ))
    return out
