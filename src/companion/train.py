"""The one training loop every chapter reuses.

Device placement, mixed precision on CUDA, ``tqdm.auto`` progress, warm-up then cosine schedule,
atomic checkpoints (model, optimizer, scheduler, scaler, step, RNG state, extra state) and exact
resume, and DistributedDataParallel when launched with ``torchrun``.

Book section: *How to read this book*, "Full runs: checkpoints and resume".

Exact resume: data order comes from a sampler seeded by ``(seed, epoch)`` that can start mid-epoch,
and every RNG is restored, so a run stopped after k steps and resumed ends with the same weights as
an uninterrupted one. This holds with ``num_workers=0`` (what quick runs and in-memory data use);
with worker processes the weights, optimizer and data order still resume exactly, but the random
augmentations drawn inside workers differ.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from . import validation as v
from .validation import check, invalid

CHECKPOINT_NAME = "last.pt"


@dataclass
class FitConfig:
    """Everything :func:`fit` needs besides the model, the data and the loss.

    ``batch_size`` is per process: under ``torchrun`` with N processes each optimizer step sees
    ``N * batch_size`` examples (see :func:`fit`).

    On resume the checkpoint's settings must equal these, except the ones that do not change the
    result: ``checkpoint_dir``, ``checkpoint_every``, ``resume``, ``progress``, ``log_every``,
    ``num_workers``, ``time_budget_s``, ``device``, ``accumulate`` and ``allow_new_steps``. ``allow_new_steps=True``
    lets ``steps`` differ too, to extend a finished run: the schedule is then recomputed for the
    new total from the resumed step on, so a cosine run extended this way differs from one planned
    that long from the start.

    ``accumulate=k`` splits each batch into ``k`` micro-batches, one forward and backward each, and
    steps once: the same update with about ``1/k`` of the activation memory (see :func:`fit`).
    """

    steps: int
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adamw"  # "adamw" or "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"  # "cosine" or "constant"
    min_lr_ratio: float = 0.0
    seed: int = 0
    amp: bool | None = None  # None: on when the device is CUDA
    grad_clip: float | None = None
    checkpoint_dir: str | os.PathLike | None = None
    checkpoint_every: int = 0  # 0: only at the end (when checkpoint_dir is set)
    resume: bool = True
    progress: bool = True
    log_every: int = 1
    num_workers: int = 0
    drop_last: bool = True
    time_budget_s: float | None = None  # stop early once this much wall time is spent
    device: str | None = None
    allow_new_steps: bool = False  # resume a checkpoint saved with another ``steps``
    accumulate: int = 1  # micro-batches per batch (gradient accumulation): less memory, the same step

    def __post_init__(self):
        check(
            self, steps=v.positive_int, batch_size=v.positive_int, lr=v.positive, optimizer=v.one_of("adamw", "sgd"),
            momentum=v.number(0, 1, high_open=True), weight_decay=v.non_negative, warmup_steps=v.non_negative_int,
            schedule=v.one_of("cosine", "constant"), min_lr_ratio=v.fraction, seed=v.train_seed, amp=v.optional(v.flag()),
            grad_clip=v.optional(v.positive), checkpoint_dir=v.optional(v.path()), checkpoint_every=v.non_negative_int,
            resume=v.flag(), progress=v.flag(), log_every=v.positive_int, num_workers=v.non_negative_int,
            drop_last=v.flag(), time_budget_s=v.optional(v.positive), device=v.optional(v.device()),
            allow_new_steps=v.flag(), accumulate=v.positive_int,
        )
        if self.batch_size % self.accumulate:
            invalid(self, "accumulate", f"divide batch_size={self.batch_size} (equal micro-batches)")
        if self.warmup_steps > self.steps:
            invalid(self, "warmup_steps", f"be in [0, steps={self.steps}]")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    resumed_from: int | None = None

    def last(self, key: str = "loss") -> float:
        return next((h[key] for h in reversed(self.history) if key in h), float("nan"))


def lr_factor(step: int, total: int, warmup: int, schedule: str, min_ratio: float = 0.0) -> float:
    r"""Linear warm-up for ``warmup`` steps, then cosine decay to ``min_ratio``.

    .. math:: \eta_t = \eta \cdot \big(r + (1-r)\tfrac12(1+\cos(\pi\,\tfrac{t-w}{T-w}))\big)
    """
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class EpochSampler(Sampler[int]):
    """A permutation per epoch from ``(seed, epoch)``, startable mid-epoch, split across ranks.

    Rank ``r`` of ``world`` takes every ``world``-th index of the one global permutation, starting at
    ``r``, so step ``s`` of N processes with batch ``b`` covers exactly the indices that step ``s`` of
    one process with batch ``N * b`` covers. ``start`` counts this rank's indices already used.
    """

    def __init__(self, n: int, seed: int, epoch: int = 0, start: int = 0, rank: int = 0, world: int = 1):
        self.n, self.seed, self.epoch, self.start, self.rank, self.world = n, seed, epoch, start, rank, world

    def indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        per_rank = self.n // self.world
        return perm[: per_rank * self.world][self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        return self.n // self.world - self.start


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors (also inside tuples, lists and dicts) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())  # RNG states are CPU byte tensors, wherever the checkpoint was mapped
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


class CheckpointMismatchError(ValueError):
    """A checkpoint was written by a run with other settings (or another model) than this one."""


class CheckpointCorruptError(RuntimeError):
    """A checkpoint file cannot be read back (a truncated or damaged write)."""


_HOST = socket.gethostname().replace(".", "-")


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def clean_stale_tmp(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files that killed :func:`atomic_save` calls left next to ``path``.

    A temporary file names its host and process; it is stale when that process is gone (same host)
    or, from another host or an older version, when it has not changed for an hour.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(_tmp_prefix(path) + "*.tmp"):
        parts = tmp.name[len(_tmp_prefix(path)) : -len(".tmp")].split(".")
        try:
            if len(parts) == 3 and parts[0] == _HOST:
                pid = int(parts[1])
                if pid == os.getpid():
                    continue
                try:
                    os.kill(pid, 0)
                    continue  # its writer still runs
                except ProcessLookupError:
                    pass
                except PermissionError:
                    continue  # alive, another user's
            elif time.time() - tmp.stat().st_mtime < 3600:
                continue
            tmp.unlink()
            removed.append(tmp)
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to judge
    return removed


def _fsync_dir(directory: Path) -> None:
    # makes the rename itself durable; not every platform can open a directory
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, flush it to disk, then rename.

    A crash mid-write leaves the previous file at ``path`` untouched (rename is atomic on POSIX);
    the folder is fsynced after the rename so the new name survives a power loss too. Temporary
    files of earlier killed writes are removed first (:func:`clean_stale_tmp`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_tmp_prefix(path)}{_HOST}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _unreadable(e: BaseException) -> bool:
    """Whether ``torch.load`` failed because the bytes are damaged (not a missing class, not permissions)."""
    if isinstance(e, (EOFError, pickle.UnpicklingError)):
        return True
    if isinstance(e, (PermissionError, FileNotFoundError, IsADirectoryError)):
        return False
    if isinstance(e, OSError):
        return True  # e.g. Errno 22 from a file cut short
    return isinstance(e, RuntimeError) and ("PytorchStreamReader" in str(e) or "zip archive" in str(e))


def load_checkpoint(directory: str | os.PathLike, map_location="cpu") -> dict | None:
    """The last checkpoint in ``directory``, or ``None`` when there is none.

    A file that cannot be read back raises :class:`CheckpointCorruptError` naming it.
    """
    path = Path(directory) / CHECKPOINT_NAME
    clean_stale_tmp(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        if not _unreadable(e):
            raise
        raise CheckpointCorruptError(
            f"checkpoint {path} is corrupt or truncated ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            f"a write was probably cut short. Delete it to start this run over, or point checkpoint_dir at "
            f"another folder."
        ) from e


def _config_differences(saved: dict, config: FitConfig, world: int, saved_world: int | None) -> dict:
    """``{field: (saved, now)}`` for the settings that change the result."""
    ignored = {"checkpoint_dir", "checkpoint_every", "resume", "progress", "log_every", "num_workers",
               "time_budget_s", "device", "allow_new_steps", "accumulate"}
    if config.allow_new_steps:
        ignored.add("steps")
    now = asdict(config)
    diff = {k: (saved[k], now[k]) for k in now if k not in ignored and k in saved and saved[k] != now[k]}
    if saved_world is not None and saved_world != world:
        diff["world_size"] = (saved_world, world)  # batch_size is per process
    return diff


def distributed_context() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)``; starts the process group when run under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return dist.get_rank(), local, world


def is_main_process() -> bool:
    """False on every process but rank 0 of a ``torchrun`` run (those must not write results files)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def build_optimizer(params, config: FitConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


class _TensorBatches(Dataset):
    """Index a tuple of equally long tensors; batches are sliced, not stacked item by item."""

    def __init__(self, tensors: Sequence[torch.Tensor]):
        n = {len(t) for t in tensors}
        if len(n) != 1:
            raise ValueError(f"tensors must have the same length, got {[len(t) for t in tensors]}")
        self.tensors = tuple(tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


def _batches(data, sampler: EpochSampler, config: FitConfig, collate_fn) -> Iterator:
    if isinstance(data, _TensorBatches):
        idx = sampler.indices()[sampler.start :]
        bs = config.batch_size
        stop = len(idx) - (len(idx) % bs if config.drop_last else 0)
        for i in range(0, stop, bs):
            j = torch.tensor(idx[i : i + bs])
            yield tuple(t[j.to(t.device)] for t in data.tensors)
        return
    loader = DataLoader(
        data, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
        drop_last=config.drop_last, collate_fn=collate_fn, pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
        # its own generator: creating the iterator must not draw from the global RNG, or a run
        # resumed mid-epoch would drift from an uninterrupted one
        generator=torch.Generator().manual_seed(sampler.seed * 1_000_003 + sampler.epoch),
    )
    yield from loader


def _as_dataset(data) -> Dataset:
    if isinstance(data, DataLoader):
        raise TypeError(
            "fit takes the dataset itself (or a tuple of tensors), not a DataLoader: it builds its own "
            "loader so that data order resumes exactly. Pass loader.dataset and set FitConfig(batch_size=..., "
            "num_workers=...) (and fit(collate_fn=...) for a custom collate)"
        )
    if isinstance(data, Dataset):
        return data
    if isinstance(data, torch.Tensor):
        raise TypeError(f"data must be a Dataset or a tuple of tensors; got one tensor of shape {tuple(data.shape)}: pass (x,)")
    if not isinstance(data, (tuple, list)) or not data or not all(isinstance(t, torch.Tensor) for t in data):
        raise TypeError(
            f"data must be a Dataset or a non-empty tuple of tensors, got {type(data).__name__}"
            + (f" of {[type(t).__name__ for t in data]}" if isinstance(data, (tuple, list)) else "")
        )
    return _TensorBatches(data)


def _check_loss(logs: dict, step: int) -> torch.Tensor:
    """The loss from ``step_fn``'s output, or an error that says what is wrong with it."""
    if "loss" not in logs:
        raise KeyError(f"step_fn returned a dict without 'loss' (keys: {sorted(logs)}); put the value to minimize under 'loss'")
    loss = logs["loss"]
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"the loss must be a tensor that depends on the model, got {type(loss).__name__} {loss!r}")
    if loss.numel() != 1:
        raise ValueError(
            f"the loss must be a single number (a 0-d tensor), got shape {tuple(loss.shape)}; "
            "reduce it, e.g. with .mean()"
        )
    if not loss.requires_grad:
        raise ValueError("the loss does not depend on any trainable parameter (requires_grad is False); "
                         "was it computed under torch.no_grad() or detached?")
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"loss became {loss.item()} at step {step}; lower the learning rate (or set grad_clip). "
            "On the first step this usually means NaN or infinite values in the data or in step_fn"
        )
    return loss.reshape(())


def _check_resume(ckpt: dict, config: FitConfig, world: int, path: Path) -> None:
    saved = ckpt.get("config")
    if saved is not None:
        diff = _config_differences(saved, config, world, ckpt.get("world_size"))
        if diff:
            lines = "\n".join(f"  {k}: {a!r} in the checkpoint, {b!r} now" for k, (a, b) in diff.items())
            hint = " To extend or shorten the run, set FitConfig(allow_new_steps=True)." if set(diff) == {"steps"} else ""
            raise CheckpointMismatchError(
                f"checkpoint {path} was written with other settings than this run:\n{lines}\n"
                f"Resume with the checkpoint's settings, or start a new run with another checkpoint_dir "
                f"(or resume=False, which overwrites it).{hint}"
            )
    if int(ckpt["step"]) > config.steps:
        raise CheckpointMismatchError(
            f"checkpoint {path} is at step {int(ckpt['step'])}, past steps={config.steps}; "
            "raise steps, or use another checkpoint_dir"
        )


def micro_batches(batch: Any, k: int) -> list:
    """``batch`` cut into ``k`` parts along the first dimension: every tensor, inside tuples, lists and
    dicts, is split the same way; anything else (flags, 0-d tensors) goes to every part."""
    def cut(x):
        if torch.is_tensor(x) and x.dim() > 0:
            return list(torch.tensor_split(x, k))
        if isinstance(x, dict):
            parts = {key: cut(value) for key, value in x.items()}
            return [{key: parts[key][i] for key in x} for i in range(k)]
        if isinstance(x, (tuple, list)):
            parts = [cut(value) for value in x]
            return [type(x)(p[i] for p in parts) for i in range(k)]
        return [x] * k

    return cut(batch)


def _batch_len(batch: Any) -> int:
    if torch.is_tensor(batch) and batch.dim() > 0:
        return len(batch)
    for value in (batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else ()):
        n = _batch_len(value)
        if n >= 0:
            return n
    return -1


def _accumulated_backward(model, core, batch, step_fn, k: int, step: int, scaler, autocast) -> dict:
    """Forward and backward ``batch`` in ``k`` micro-batches, leaving the full batch's gradient.

    Each micro-batch's loss is weighted by its ``"weight"`` (the step's logs; default: its number of
    examples) and the summed gradient divided by the total weight, so a loss that is a mean over
    examples, or over counted tokens when the step logs their count as ``"weight"``, gives the
    gradient of the whole batch (up to float rounding). Returns the weighted means of the logs.
    """
    import contextlib

    parts = [part for part in micro_batches(batch, k) if _batch_len(part) != 0]
    total, sums = 0.0, {}
    for i, part in enumerate(parts):
        # under DDP, gradients are averaged across processes once, after the last micro-batch
        sync = model.no_sync() if isinstance(model, nn.parallel.DistributedDataParallel) and i < len(parts) - 1 \
            else contextlib.nullcontext()
        with sync:
            with autocast():
                out = step_fn(model, part) if step_fn is not None else model(*part)
            logs = out if isinstance(out, dict) else {"loss": out}
            loss = _check_loss(logs, step)
            weight = logs.pop("weight", None)
            weight = float(_batch_len(part) if weight is None else weight)
            scaler.scale(loss * weight).backward()
        total += weight
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + weight * float(value.detach() if torch.is_tensor(value) else value)
    for p in core.parameters():
        if p.grad is not None:
            p.grad.div_(total)
    return {key: value / total for key, value in sums.items()}


def fit(
    model: nn.Module,
    data: Dataset | Sequence[torch.Tensor],
    step_fn: Callable[[nn.Module, Any], torch.Tensor | dict] | None,
    config: FitConfig,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    after_step: Callable[[nn.Module, int], None] | None = None,
    extra_state: Any = None,
    collate_fn: Callable | None = None,
) -> FitResult:
    """Train ``model`` for ``config.steps`` optimizer steps.

    ``data``: a ``Dataset`` or a tuple of tensors (sliced in place, on whatever device they live).
    ``step_fn(model, batch)`` returns the loss, or a dict with ``"loss"`` and other scalars to log;
    without it ``model(*batch)`` is called. Under DDP ``model`` is the wrapped module, so put the loss
    in the model's ``forward`` when training on several GPUs.
    ``after_step(model, step)`` runs after each optimizer step (EMA teachers, memory banks).
    ``extra_state``: an object with ``state_dict``/``load_state_dict`` saved with the checkpoint.
    ``fit`` builds its own loader (that is what makes data order resume exactly), so pass the
    dataset, not a ``DataLoader``.

    Under ``torchrun`` with N processes, ``config.batch_size`` is per process and each step averages
    the gradients of N * ``batch_size`` examples: with ``drop_last`` (the default) N processes with
    batch b take the same steps, on the same examples, as one process with batch N * b (equal up to
    float rounding when ``step_fn`` is deterministic and the loss is a mean over the batch). Rank 0
    alone writes checkpoints; each rank's RNG state is saved, and resuming needs the same N.
    Logged losses are rank 0's own.

    With ``config.accumulate = k`` each batch runs as ``k`` micro-batches before the one optimizer
    step (gradient accumulation, for a GPU too small for the batch): each micro-batch's loss is weighted
    by the ``"weight"`` its step logs (default: its number of examples), so the step is the full batch's.

    Resuming from ``config.checkpoint_dir`` checks the checkpoint's settings against ``config``
    (:class:`FitConfig` lists the ones that may differ) and raises :class:`CheckpointMismatchError`
    naming each difference.
    """
    data = _as_dataset(data)
    rank, local_rank, world = distributed_context()
    device = torch.device(config.device) if config.device else (
        torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    )
    n = len(data)
    steps_per_epoch = (n // world) // config.batch_size if config.drop_last else math.ceil((n // world) / config.batch_size)
    if steps_per_epoch == 0:
        raise ValueError(
            f"the dataset has {n} items, fewer than one batch of {config.batch_size} per process; "
            "lower batch_size or use more data"
        )

    model.to(device)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
    core = unwrap(model)
    if optimizer is None:
        optimizer = build_optimizer([p for p in core.parameters() if p.requires_grad], config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, config.steps, config.warmup_steps, config.schedule, config.min_lr_ratio)
    )
    # On by default on CUDA. Asked for (amp=True) it runs on the CPU too, in float16 with a GradScaler as on
    # a T4, so that the branch a Colab run takes is exercised by the CPU tests.
    use_amp = (device.type == "cuda") if config.amp is None else bool(config.amp and device.type in ("cuda", "cpu"))
    # bf16 only where the hardware has it (Ampere and newer); a T4 reports bf16 "supported" by emulation
    amp_dtype = (torch.bfloat16 if use_amp and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8
                 else torch.float16)
    scaler = torch.amp.GradScaler(device.type if device.type == "cpu" else "cuda",
                                  enabled=use_amp and amp_dtype == torch.float16)

    result = FitResult()
    start_step = 0
    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    if ckpt_dir is not None and config.resume:
        ckpt = load_checkpoint(ckpt_dir, map_location="cpu")  # load_state_dict moves tensors to the model's device
        if ckpt is not None:
            path = ckpt_dir / CHECKPOINT_NAME
            if not isinstance(ckpt, dict) or not {"model", "optimizer", "step"} <= set(ckpt):
                raise CheckpointCorruptError(
                    f"{path} is not a checkpoint written by fit (no model, optimizer and step in it); "
                    "delete it or point checkpoint_dir at another folder"
                )
            _check_resume(ckpt, config, world, path)
            try:
                core.load_state_dict(ckpt["model"])
                optimizer.load_state_dict(ckpt["optimizer"])
            except (RuntimeError, ValueError, KeyError) as e:
                raise CheckpointMismatchError(
                    f"checkpoint {path} does not fit this model or optimizer ({type(e).__name__}: {e}); "
                    "use another checkpoint_dir for a different model"
                ) from e
            scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            if extra_state is not None and ckpt.get("extra") is not None:
                extra_state.load_state_dict(ckpt["extra"])
            per_rank = ckpt.get("rng_per_rank")
            set_rng_state(per_rank[rank] if per_rank and len(per_rank) == world else ckpt["rng"])
            start_step = int(ckpt["step"])
            result.history = list(ckpt.get("history", []))
            result.resumed_from = start_step
    if start_step == 0:
        from .runtime import seed_everything

        seed_everything(config.seed + rank)

    def save(step: int) -> None:
        if ckpt_dir is None:
            return
        rngs = [rng_state()]
        if world > 1:  # every rank draws its own noise, so every rank's RNG must resume
            import torch.distributed as dist

            rngs = [None] * world
            dist.all_gather_object(rngs, rng_state())
        if rank != 0:
            return
        atomic_save(
            {
                "model": core.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "extra": extra_state.state_dict() if extra_state is not None else None,
                "rng": rngs[0], "rng_per_rank": rngs, "world_size": world,
                "step": step, "history": result.history, "config": asdict(config),
            },
            ckpt_dir / CHECKPOINT_NAME,
        )

    from tqdm.auto import tqdm

    # TQDM_DISABLE=1 (the book build) must win: an explicit disable=False would override it
    env_off = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
    bar = tqdm(total=config.steps, initial=start_step, disable=not config.progress or rank != 0 or env_off,
               desc="train", leave=False)
    model.train()
    began = time.perf_counter()
    step = start_step
    try:
        while step < config.steps:
            epoch, offset = divmod(step, steps_per_epoch)
            sampler = EpochSampler(n, config.seed, epoch, offset * config.batch_size, rank, world)
            for batch in _batches(data, sampler, config, collate_fn):
                batch = to_device(batch, device)
                if config.accumulate == 1:
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                        out = step_fn(model, batch) if step_fn is not None else model(*batch)
                    logs = out if isinstance(out, dict) else {"loss": out}
                    loss = _check_loss(logs, step)
                    logs.pop("weight", None)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                else:
                    optimizer.zero_grad(set_to_none=True)
                    logs = _accumulated_backward(model, core, batch, step_fn, config.accumulate, step, scaler,
                                                 lambda: torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp))
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(core.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                if after_step is not None:
                    after_step(core, step)
                step += 1
                if step % config.log_every == 0 or step == config.steps:
                    entry = {"step": step, "lr": scheduler.get_last_lr()[0]}
                    entry.update({k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in logs.items()})
                    result.history.append(entry)
                    bar.set_postfix(loss=f"{entry['loss']:.4f}")
                bar.update(1)
                if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.steps:
                    save(step)
                if step >= config.steps:
                    break
                if config.time_budget_s is not None and time.perf_counter() - began > config.time_budget_s:
                    result.stopped_early = True
                    break
            if result.stopped_early:
                break
    finally:
        bar.close()
    save(step)
    result.steps = step
    result.seconds = time.perf_counter() - began
    return result
