r"""Per-episode fine-tuning with stability regularization (SR), adaptability calibration (AC) and
the ensemble (EnSR), plus the nearest-class-mean baseline.

In an episode with support set :math:`S = \{(x_i, y_i)\}_{i=1}^{NK}` the network
:math:`f_\theta` (initialised from the pre-trained :math:`f_0`) and a fresh cosine head :math:`W`
are fine-tuned for ``steps`` SGD steps on

.. math::

    \mathcal{L}(\theta, W) = \underbrace{\frac{1}{NK}\sum_{i} \mathrm{CE}_{\epsilon}\big(W f_\theta(\tilde x_i), y_i\big)}_{\text{support, label smoothing } \epsilon}
    \;-\; \beta\, \underbrace{\frac1B \sum_{b=1}^{B} \cos\big(f_\theta(x_b), f_0(x_b)\big)}_{\text{SR: stay close to } f_0 \text{ on base images}}

where :math:`\tilde x_i` is an augmented support image and :math:`x_1..x_B` are base-class images
drawn with replacement at every step. **AC** lets only the last ``tune_blocks`` blocks and the head
move; the earlier blocks stay frozen in eval mode. **EnSR** fine-tunes :math:`M` members, member
:math:`m` drawing its SR images only from the :math:`m`-th of :math:`M` disjoint parts of the base
set, and averages their softmax outputs :math:`\bar p(y|x) = \frac1M \sum_m p_m(y|x)`.

Many independent fine-tunings run at once: their parameters are stacked on a leading *run* axis
and :func:`torch.func.vmap` runs one copy of the network per run. The training loss is the **sum**
of the runs' losses, so each run's gradient is exactly its own loss's gradient, and SGD with
momentum and weight decay acts element-wise: the runs stay independent, as if done one by one.

Book section: *Worst case* "Fine-tuning in an episode", "Stability regularization",
"Which layers may move: adaptability calibration", "Ensembles".
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from .. import train
from .. import validation as v
from ..validation import check, invalid
from ..tensors import as_tensor
from .model import BlockBackbone, CosineClassifier, split_backbone


@dataclass(frozen=True)
class FineTune:
    """One fine-tuning method. ``beta=0`` turns SR off; ``tune_blocks=None`` tunes every block (no AC);
    ``members > 1`` is the ensemble.

    Defaults follow the paper's code where it is known: 100 SGD steps (lr 0.1, momentum 0.9, weight
    decay 1e-4), label smoothing 0.1, beta 0.1, 256 base images per step, random resized crops
    (scale 0.2-1) and flips of the support images.
    """

    steps: int = 100
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    beta: float = 0.0
    aux_batch: int = 256
    tune_blocks: int | None = None
    members: int = 1
    head_scale: float = 2.0
    learnable_norm: bool = True  # the paper's distLinear: a learnable norm per class (WeightNorm)
    crop_scale: tuple[float, float] | None = (0.2, 1.0)
    flip: bool = True

    def __post_init__(self):
        check(
            self, steps=v.positive_int, lr=v.positive, momentum=v.number(0, 1, high_open=True),
            weight_decay=v.non_negative, label_smoothing=v.number(0, 1, high_open=True), beta=v.non_negative,
            aux_batch=v.non_negative_int, tune_blocks=v.optional(v.positive_int), members=v.positive_int,
            head_scale=v.positive, learnable_norm=v.flag(), crop_scale=v.optional(v.pair(v.number(0, 1, low_open=True))),
            flip=v.flag(),
        )
        if self.beta > 0 and self.aux_batch < 1:
            invalid(self, "aux_batch", "be >= 1 when beta > 0 (SR needs base images)")


def stability_similarity(features: torch.Tensor, frozen: torch.Tensor) -> torch.Tensor:
    r"""The SR term :math:`\frac1B\sum_b \cos(f_\theta(x_b), f_0(x_b))` over the last-but-one axis.

    ``(..., B, d)`` fine-tuned and frozen features -> ``(...)``. It is at most 1, reached when the
    fine-tuned features point the same way as the pre-trained ones (an unchanged model); the loss
    subtracts ``beta`` times it.

    Book section: *Worst case* "Stability regularization".
    """
    if features.shape != frozen.shape:
        raise ValueError(f"features {tuple(features.shape)} and frozen features {tuple(frozen.shape)} differ in shape")
    if features.ndim < 2:
        raise ValueError(f"need (..., batch, dim) features, got shape {tuple(features.shape)}")
    return F.cosine_similarity(features, frozen.to(features.dtype), dim=-1).mean(-1)


def random_resized_crop(images: torch.Tensor, scale: tuple[float, float], flip: bool, ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """A different random resized crop (and horizontal flip) for every image of a ``(B, C, H, W)`` batch.

    torchvision's transforms draw one crop per call, so a batch would share it; this draws per
    image and samples all crops at once with ``affine_grid``/``grid_sample`` (crops stay inside the
    image, area fraction in ``scale``, aspect ratio in ``ratio``).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    b, dev = images.shape[0], images.device
    area = torch.empty(b, device=dev).uniform_(*scale)
    log_r = torch.empty(b, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    w = (area * log_r.exp()).sqrt().clamp(max=1.0)  # crop width / image width
    h = (area / log_r.exp()).sqrt().clamp(max=1.0)
    cx = (torch.rand(b, device=dev) * 2 - 1) * (1 - w)  # centre in [-1, 1] coordinates, crop inside
    cy = (torch.rand(b, device=dev) * 2 - 1) * (1 - h)
    sign = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0) if flip else torch.ones(b, device=dev)
    theta = torch.zeros(b, 2, 3, device=dev, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * sign, cx, h, cy
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class Learner(nn.Module):
    """One run's trainable part: the tail of the backbone and a cosine head; ``z -> (features, logits)``."""

    def __init__(self, tail: nn.Module, head: CosineClassifier):
        super().__init__()
        self.tail, self.head = tail, head

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.tail(z)  # (B, d)
        return f, self.head(f)  # (B, d), (B, N)


class ParallelRuns(nn.Module):
    """``R`` independent copies of a module, parameters and buffers stacked on a leading run axis.

    ``forward(x)`` takes ``(R, B, ...)`` and runs copy ``r`` on ``x[r]`` with :func:`torch.func.vmap`
    (``randomness="different"``: each run draws its own dropout masks). BatchNorm running statistics
    are per run. ``train()``/``eval()`` switch the copies' mode.
    """

    def __init__(self, template: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]):
        super().__init__()
        runs = {t.shape[0] for t in [*params.values(), *buffers.values()]}
        if len(runs) != 1:
            raise ValueError(f"stacked tensors disagree on the number of runs: {sorted(runs)}")
        self.runs = runs.pop()
        self._pnames, self._bnames = list(params), list(buffers)
        for i, name in enumerate(self._pnames):
            self.register_parameter(f"p{i}", nn.Parameter(params[name]))
        for i, name in enumerate(self._bnames):
            self.register_buffer(f"b{i}", buffers[name])
        # a weightless copy gives the structure; a tuple keeps it out of .parameters() and .to()
        self._template = (copy.deepcopy(template).to("meta"),)

    @classmethod
    def replicate(cls, module: nn.Module, runs: int, overrides: dict[str, torch.Tensor] | None = None) -> "ParallelRuns":
        """``runs`` copies of ``module``'s weights; ``overrides[name]`` gives a ``(runs, ...)`` tensor per run."""
        overrides = overrides or {}
        params = {n: overrides.get(n, p.detach().unsqueeze(0).expand(runs, *p.shape)).clone() for n, p in module.named_parameters()}
        buffers = {n: b.detach().unsqueeze(0).expand(runs, *b.shape).clone() for n, b in module.named_buffers()}
        return cls(module, params, buffers)

    def train(self, mode: bool = True):
        super().train(mode)
        self._template[0].train(mode)
        return self

    def forward(self, x: torch.Tensor):
        if x.shape[0] != self.runs:
            raise ValueError(f"input has {x.shape[0]} runs on its first axis, the model has {self.runs}")
        params = {n: getattr(self, f"p{i}") for i, n in enumerate(self._pnames)}
        buffers = {n: getattr(self, f"b{i}") for i, n in enumerate(self._bnames)}
        template = self._template[0]

        def one(p, b, xr):
            return functional_call(template, (p, b), (xr,))

        return vmap(one, randomness="different")(params, buffers, x)


@torch.no_grad()
def embed(module: nn.Module, images: torch.Tensor, device: torch.device | str, batch: int = 1024) -> torch.Tensor:
    """``module(images)`` in eval mode, in batches, on ``device`` (the module's mode is restored)."""
    was = module.training
    module.eval().to(device)
    out = torch.cat([module(images[i : i + batch].to(device)) for i in range(0, len(images), batch)])
    module.train(was)
    return out


def _check_episode_tensors(support_x, support_y, query_x, n_way):
    """The checked episode tensors ``(support_x, support_y, query_x)`` (NumPy converted, float64 images cast
    to float32, meta refused: :mod:`companion.tensors`)."""
    support_x = as_tensor(support_x, "support_x", finite=False, nonempty=False)
    query_x = as_tensor(query_x, "query_x", finite=False, nonempty=False)
    support_y = as_tensor(support_y, "support_y", dtype=None, nonempty=False)
    if support_y.is_floating_point():
        raise TypeError(f"support_y must hold integer class ids, got {support_y.dtype}")
    if support_x.ndim < 3 or query_x.ndim < 3:
        raise ValueError("support and query images must be (episodes, items, ...) tensors")
    if support_x.shape[0] != query_x.shape[0] or support_y.shape != support_x.shape[:2]:
        raise ValueError(
            f"shapes disagree: support_x {tuple(support_x.shape)}, support_y {tuple(support_y.shape)}, "
            f"query_x {tuple(query_x.shape)}"
        )
    if support_x.shape[2:] != query_x.shape[2:]:
        raise ValueError(f"support images {tuple(support_x.shape[2:])} and query images {tuple(query_x.shape[2:])} differ")
    if support_x.shape[1] < 1 or query_x.shape[1] < 1:
        raise ValueError(f"every episode needs at least one support and one query image, got "
                         f"{support_x.shape[1]} support and {query_x.shape[1]} query images")
    for name, x in (("support", support_x), ("query", query_x)):
        if not torch.isfinite(x).all():
            raise ValueError(f"the {name} images contain NaN or infinity ({name}_x; check the data and its normalisation)")
    if support_y.min() < 0 or support_y.max() >= n_way:
        raise ValueError(f"support labels must be in [0, {n_way}), got [{int(support_y.min())}, {int(support_y.max())}]")
    return support_x, support_y, query_x


@torch.no_grad()
def prototype_scores(
    backbone: nn.Module, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, n_way: int,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    r"""Nearest class mean on frozen features: ``(E, NK, ...)``, ``(E, NK)``, ``(E, NQ, ...)`` -> ``(E, NQ, N)``.

    With :math:`\hat f = f_0(x)/\lVert f_0(x)\rVert`, the prototype of class :math:`c` is
    :math:`\mu_c = \frac1K\sum_{y_i=c} \hat f(x_i)`, and the score of a query is
    :math:`\cos(\hat f(x), \mu_c)`; the largest score wins. No training at all.

    Book section: *Worst case* "Two baselines".
    """
    support_x, support_y, query_x = _check_episode_tensors(support_x, support_y, query_x, n_way)
    e, nk = support_y.shape
    fs = F.normalize(embed(backbone, support_x.flatten(0, 1), device), dim=-1).view(e, nk, -1)  # (E, NK, d)
    fq = F.normalize(embed(backbone, query_x.flatten(0, 1), device), dim=-1).view(e, query_x.shape[1], -1)
    onehot = F.one_hot(support_y.to(fs.device), n_way).float()  # (E, NK, N)
    protos = onehot.transpose(1, 2) @ fs / onehot.sum(1).clamp(min=1).unsqueeze(-1)  # (E, N, d)
    return fq @ F.normalize(protos, dim=-1).transpose(1, 2)  # (E, NQ, N) cosine scores


class EpisodeFineTuner:
    """Fine-tunes a pre-trained backbone in many episodes with one :class:`FineTune` method.

    What is the same for every episode is computed once here: the frozen prefix and the trainable
    tail (:func:`~companion.fewshot.model.split_backbone`), the frozen features :math:`f_0(x_b)` of
    every base image, the prefix's output for every base image (the tail's input for SR), and the
    split of the base set into ``members`` disjoint parts. Call it on a batch of episodes.

    Book section: *Worst case* "Fine-tuning in an episode".
    """

    def __init__(self, backbone: BlockBackbone, base_images: torch.Tensor | None, method: FineTune, n_way: int,
                 device: torch.device | str = "cpu", seed: int = 0):
        self.method, self.n_way, self.device, self.seed = method, n_way, torch.device(device), seed
        self.prefix, self.tail = split_backbone(backbone, method.tune_blocks)
        self.prefix.to(self.device)
        self.feature_dim = backbone.feature_dim
        self.base_f0 = self.base_z = self.parts = None
        if method.beta > 0:
            if base_images is None or len(base_images) < method.members:
                raise ValueError("SR needs base images (at least one per ensemble member)")
            if not torch.isfinite(base_images).all():
                raise ValueError("the base images contain NaN or infinity (check the data and its normalisation)")
            self.base_f0 = embed(backbone, base_images, self.device)  # (Nb, d) f_0(x_b), frozen
            self.base_z = embed(self.prefix, base_images, self.device)  # (Nb, ...) tail input
            g = torch.Generator().manual_seed(seed)
            perm = torch.randperm(len(base_images), generator=g)
            size = len(base_images) // method.members
            self.parts = perm[: size * method.members].view(method.members, size).to(self.device)  # (M, Nb/M)

    def _heads(self, run_seeds: list[int]) -> torch.Tensor:
        """A fresh random cosine head per run, ``(R, N, d)``, from that run's own seed (nn.Linear's init)."""
        d = self.feature_dim
        return torch.stack([
            (torch.rand(self.n_way, d, generator=torch.Generator().manual_seed(s)) * 2 - 1) / math.sqrt(d)
            for s in run_seeds
        ])

    def __call__(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                 run_seeds: list[int], seed: int = 0) -> tuple[torch.Tensor, train.FitResult]:
        """Fine-tune on ``E`` episodes at once and score their queries.

        ``support_x (E, NK, ...)``, ``support_y (E, NK)`` in ``[0, N)``, ``query_x (E, NQ, ...)``;
        ``run_seeds``: ``E * members`` seeds for the heads, episode-major (member ``m`` of episode
        ``e`` is ``e * members + m``). Returns the softmax ``(E, NQ, N)``, averaged over members,
        and the :class:`~companion.train.FitResult` of the shared training loop.
        """
        m = self.method
        support_x, support_y, query_x = _check_episode_tensors(support_x, support_y, query_x, self.n_way)
        e, nk = support_y.shape
        runs = e * m.members
        if len(run_seeds) != runs:
            raise ValueError(f"need {runs} run seeds ({e} episodes x {m.members} members), got {len(run_seeds)}")
        head = CosineClassifier(self.feature_dim, self.n_way, m.head_scale, m.learnable_norm)
        weights = self._heads(run_seeds)  # (R, N, d)
        overrides = {"head.weight": weights}
        if m.learnable_norm:
            overrides["head.norm"] = weights.norm(dim=-1)  # (R, N): WeightNorm's g starts at |v_c|
        model = ParallelRuns.replicate(Learner(self.tail, head), runs, overrides)
        member_of_run = torch.arange(runs, device=self.device) % m.members  # (R,)

        # the support set of every run, slot-major so that fit's batch (all N*K slots) is one step
        xs = support_x.repeat_interleave(m.members, 0).transpose(0, 1).contiguous()  # (NK, R, ...)
        ys = support_y.repeat_interleave(m.members, 0).transpose(0, 1).contiguous()  # (NK, R)

        def step(model, batch):
            x, y = batch[0].transpose(0, 1), batch[1].transpose(0, 1)  # (R, NK, ...), (R, NK)
            flat = x.flatten(0, 1)
            if m.crop_scale is not None:
                flat = random_resized_crop(flat, m.crop_scale, m.flip)
            with torch.no_grad():
                z = self.prefix(flat)  # frozen blocks, eval mode
            _, logits = model(z.view(runs, nk, *z.shape[1:]))  # (R, NK, N)
            ce = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), label_smoothing=m.label_smoothing,
                                 reduction="none").view(runs, nk).mean(1)  # (R,)
            logs = {"ce": ce.mean().detach()}
            loss = ce
            if m.beta > 0:
                parts = self.parts[member_of_run]  # (R, Nb/M) each run's own base images
                pick = torch.randint(parts.shape[1], (runs, m.aux_batch), device=self.device)
                idx = parts.gather(1, pick)  # (R, B) with replacement
                f, _ = model(self.base_z[idx])  # (R, B, d)
                sim = stability_similarity(f, self.base_f0[idx])  # (R,)
                loss = ce - m.beta * sim
                logs["sr"] = sim.mean().detach()
            logs["loss"] = loss.sum()  # sum: each run gets exactly its own gradient
            return logs

        config = train.FitConfig(
            steps=m.steps, batch_size=nk, lr=m.lr, optimizer="sgd", momentum=m.momentum,
            weight_decay=m.weight_decay, schedule="constant", seed=seed, progress=False,
            log_every=m.steps, device=str(self.device),
            amp=False,  # per-run batch norm in the batched episodes needs float32 statistics; the runs are small
        )
        result = train.fit(model, (xs.to(self.device), ys.to(self.device)), step, config)

        model.eval()
        with torch.no_grad():
            zq = embed(self.prefix, query_x.flatten(0, 1), self.device)
            zq = zq.view(e, query_x.shape[1], *zq.shape[1:]).repeat_interleave(m.members, 0)  # (R, NQ, ...)
            _, logits = model(zq)
            probs = logits.float().softmax(-1).view(e, m.members, query_x.shape[1], self.n_way).mean(1)
        return probs, result
