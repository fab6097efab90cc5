r"""Multi-stage resolution schedules: pretrain at a low resolution, then continue at higher ones.

A schedule is a list of stages :math:`(r_1, T_1), (r_2, T_2), \dots` with :math:`r_1 < r_2 < \dots`.
Stage :math:`s` trains the same network for :math:`T_s` steps on views cropped and resized to
:math:`r_s \times r_s`; it starts from every weight the previous stage ended with (both encoders, the
heads, the batch-norm statistics and, for MoCo, the queue) and with a fresh optimizer and learning-rate
schedule, as S3L's code does when it continues from a checkpoint with ``--pretrained``. Since a GAP
network accepts any input size, nothing in the network changes between stages: only the resolution
of the views, the learning-rate schedule and (by choice) the queue.

The cost of a stage is :math:`T_s\,B\,c(r_s)` FLOPs for batch :math:`B` and per-image step cost
:math:`c(r) \approx c(r_{\max})\,(r / r_{\max})^2`, so most of the schedule can be spent at low
resolution for a fraction of the price.

**MoCo's queue across stages.** The queue holds the last :math:`K` keys, computed at the previous
resolution. ``queue="keep"`` (S3L's choice: it loads the whole MoCo state) keeps them: for the first
:math:`K / B` steps of the new stage, queries at the new resolution are contrasted with keys of the old
one. ``"reset"`` refills the queue with random unit vectors as at the start of MoCo; ``"refill"``
recomputes it with the key encoder on :math:`K` fresh views at the new resolution.

Book section: *S3L* "Multi-stage resolution".
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..ssl.augment import GPUAugment
from ..ssl.pretrain import PretrainConfig, pretrain
from ..train import CHECKPOINT_NAME, load_checkpoint
from .architecture import check_resolution
from .cost import train_step_flops

QUEUE_POLICIES = ("keep", "reset", "refill")


@dataclass(frozen=True)
class Stage:
    """One stage: its resolution, and how long (``steps``, or ``epochs`` over the data); ``lr`` overrides
    the base learning rate (each stage restarts its warm-up and cosine schedule).
    Book section: *S3L* "Multi-stage resolution"."""

    resolution: int
    steps: int | None = None
    epochs: int | None = None
    lr: float | None = None


def check_stages(stages: Sequence[Stage | int], network: nn.Module | None = None) -> tuple[Stage, ...]:
    """Validate a schedule: not empty, strictly increasing resolutions, each at least the network's total
    stride, a positive length per stage. Integers are accepted as resolutions (lengths given later).

    Book section: *S3L* "Multi-stage resolution".
    """
    if isinstance(stages, (Stage, int)) or stages is None:
        raise TypeError(f"stages must be a list of stages or resolutions, got {stages!r}")
    stages = tuple(s if isinstance(s, Stage) else Stage(s) for s in stages)
    if not stages:
        raise ValueError("the stage list is empty: give at least one resolution")
    resolutions = [s.resolution for s in stages]
    for r in resolutions:
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ValueError(f"every resolution must be a positive integer number of pixels, got {r!r} in {resolutions}")
    for a, b in zip(resolutions, resolutions[1:]):
        if b <= a:
            raise ValueError(
                f"stage resolutions must increase strictly (low to high), got {resolutions}: {b} px follows {a} px"
            )
    for s in stages:
        for name in ("steps", "epochs"):
            v = getattr(s, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ValueError(f"{name} of the {s.resolution} px stage must be a positive integer, got {v!r}")
        if s.lr is not None and not s.lr > 0:
            raise ValueError(f"lr of the {s.resolution} px stage must be positive, got {s.lr}")
    if network is not None:
        for r in resolutions:
            check_resolution(network, r)
    return stages


def split_budget(resolutions: Sequence[int], fractions: Sequence[float], budget: float, cost_per_step: dict) -> list[int]:
    """Steps per stage so that stage ``s`` spends ``fractions[s] * budget`` (seconds, FLOPs, any unit)
    at ``cost_per_step[resolution]`` per step; at least one step per stage.

    Book section: *S3L* "Quick run".
    """
    if len(resolutions) != len(fractions):
        raise ValueError(f"{len(resolutions)} resolutions but {len(fractions)} budget fractions")
    if any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"budget fractions must be positive and sum to 1, got {list(fractions)}")
    if not budget > 0:
        raise ValueError(f"budget must be positive, got {budget}")
    missing = [r for r in resolutions if r not in cost_per_step]
    if missing:
        raise ValueError(f"no cost per step known for resolution(s) {missing}")
    return [max(1, int(f * budget / cost_per_step[r])) for r, f in zip(resolutions, fractions)]


@torch.no_grad()
def prepare_next_stage(
    method: nn.Module, queue: str = "keep", data: torch.Tensor | None = None, resolution: int | None = None,
    augment: dict | None = None, batch_size: int = 256, generator: torch.Generator | None = None,
) -> dict:
    """Get ``method`` ready for the next, higher-resolution stage. Weights, statistics and heads are
    left exactly as they are; only MoCo's queue depends on ``queue``:

    - ``"keep"``: untouched, keys of the old resolution included (S3L's choice);
    - ``"reset"``: random unit vectors and pointer 0, as a new MoCo starts;
    - ``"refill"``: the key encoder's keys of ``K`` views of ``data`` (random images, augmented at
      ``resolution`` with ``augment``), computed in training mode on a copy so that no statistic moves.

    Methods without a queue (SimSiam, BYOL, SimCLR) are left alone whatever ``queue`` says.
    Returns what was done. Book section: *S3L* "Multi-stage resolution".
    """
    if queue not in QUEUE_POLICIES:
        raise ValueError(f"queue must be one of {QUEUE_POLICIES}, got {queue!r}")
    buf = getattr(method, "queue", None)
    if not torch.is_tensor(buf) or buf.shape[0] == 0:
        return {"queue": "none"}
    k, dim = buf.shape
    if queue == "keep":
        return {"queue": "keep", "size": k}
    if queue == "reset":
        fresh = torch.randn(k, dim, generator=generator).to(buf.device)
        buf.copy_(F.normalize(fresh, dim=1))
        method.queue_ptr.zero_()
        return {"queue": "reset", "size": k}
    if data is None or resolution is None:
        raise ValueError('queue="refill" needs the data and the new resolution')
    if len(data) < k:
        raise ValueError(f'queue="refill" needs at least K={k} images, got {len(data)}')
    aug = GPUAugment(resolution, **(augment or {}))
    key_encoder = copy.deepcopy(method.key_encoder).train()
    key_projector = copy.deepcopy(method.key_projector).train()
    device = buf.device
    idx = torch.randperm(len(data), generator=generator)[:k]
    keys = []
    for chunk in idx.split(batch_size):
        views = aug(data[chunk].to(device), generator=generator)  # (b, C, r, r)
        keys.append(F.normalize(key_projector(key_encoder(views)).float(), dim=1))  # (b, dim)
    buf.copy_(torch.cat(keys).to(buf.dtype))
    method.queue_ptr.zero_()
    return {"queue": "refill", "size": k, "resolution": resolution}


@dataclass
class StageResult:
    """What one stage did: steps, wall seconds, FLOPs (per image per step x batch x steps), last loss, and
    the step it resumed from when a checkpoint was found (``None``: a fresh start).
    Book section: *S3L* "Multi-stage resolution"."""

    resolution: int
    steps: int
    seconds: float
    flops: float
    flops_per_image_step: float
    loss: float
    queue: dict = field(default_factory=dict)
    resumed_from: int | None = None


def stage_checkpoint_dir(root: str | Path | None, index: int, resolution: int) -> str | None:
    """``<root>/stage<index>_<resolution>px``: where stage ``index`` keeps its ``last.pt``.
    Book section: *S3L* "Multi-stage resolution"."""
    return None if root is None else str(Path(root) / f"stage{index}_{resolution}px")


def multi_stage_pretrain(
    method: nn.Module, data: torch.Tensor, stages: Sequence[Stage], config: PretrainConfig, queue: str = "keep",
) -> tuple[nn.Module, list[StageResult]]:
    """Pretrain ``method`` through ``stages`` (low to high resolution), one :func:`companion.ssl.pretrain`
    call per stage on the same module, so each stage continues from every weight of the last.

    ``config`` supplies everything but the resolution and length (and ``lr`` when a stage sets it); stage
    ``s`` uses seed ``config.seed + s`` and, when ``config.checkpoint_dir`` is set, its own checkpoint
    folder (:func:`stage_checkpoint_dir`), so an interrupted schedule resumes in the stage it stopped in.
    Between stages :func:`prepare_next_stage` applies the ``queue`` policy. A single-stage list is plain
    pretraining. Book section: *S3L* "Multi-stage resolution".
    """
    if not isinstance(method, nn.Module):
        raise TypeError(f"method must be a ready SSL module (e.g. companion.ssl.MoCo), got {type(method).__name__}")
    if queue not in QUEUE_POLICIES:
        raise ValueError(f"queue must be one of {QUEUE_POLICIES}, got {queue!r}")
    stages = check_stages(stages, getattr(method, "encoder", None) if _is_resnet_encoder(method) else None)
    for s in stages:
        if s.steps is None and s.epochs is None:
            raise ValueError(f"the {s.resolution} px stage needs steps or epochs")
    channels = int(data.shape[1]) if torch.is_tensor(data) else 3
    out: list[StageResult] = []
    for i, st in enumerate(stages):
        report = {}
        if i > 0:
            gen = torch.Generator().manual_seed(config.seed + i)
            report = prepare_next_stage(method, queue, data if torch.is_tensor(data) else None, st.resolution,
                                        {**config.augment, "blur": config.blur}, generator=gen)
        cfg = config.replace(
            resolution=st.resolution, steps=st.steps, epochs=st.epochs if st.steps is None else None,
            lr=st.lr if st.lr is not None else config.lr, seed=config.seed + i,
            checkpoint_dir=stage_checkpoint_dir(config.checkpoint_dir, i, st.resolution),
        )
        method, fit = pretrain(method, None, data, cfg)
        per_image = train_step_flops(method, st.resolution, channels)
        out.append(StageResult(st.resolution, fit.steps, fit.seconds, per_image * cfg.batch_size * fit.steps, per_image,
                               fit.last("loss"), report, fit.resumed_from))
    return method, out


def _is_resnet_encoder(method: nn.Module) -> bool:
    from torchvision.models import ResNet

    enc = getattr(method, "encoder", None)
    return isinstance(getattr(enc, "net", enc), ResNet)


def load_stage_checkpoint(method: nn.Module, directory: str | Path) -> list[str]:
    """Load the ``last.pt`` a stage wrote in ``directory`` into ``method``, strictly: every tensor of the
    method (both encoders, heads, batch-norm statistics, MoCo's queue and pointer) must be in the file and
    nothing else, else ``RuntimeError``. Returns the names loaded. This is how a new process continues a
    schedule from a finished stage. Book section: *S3L* "Multi-stage resolution".
    """
    if not (Path(directory) / CHECKPOINT_NAME).exists():
        raise FileNotFoundError(f"no {CHECKPOINT_NAME} in {directory}: run the earlier stage first")
    ckpt = load_checkpoint(directory)
    method.load_state_dict(ckpt["model"], strict=True)
    return list(ckpt["model"])
