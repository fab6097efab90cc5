"""The chapter's experiment: instance-discrimination pretraining + fine-tuning vs training from scratch,
with the same ViT and the same total number of optimizer steps, and the paper's ablation rows.

Book section: *ViT with 2040 images* "Quick run" and "Full run".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import results, train
from ..runtime import pick_device, process_map, seed_everything, torch_threads
from .config import ABLATION_STEPS, Ablation, Config, Stage
from .data import Split, digits_split, flowers_split
from .finetune import Supervised, accuracy
from .model import build_vit, encoder, resize_vit
from .instance import InstanceDiscrimination, as_float, pretrain

CHAPTER = "vit2040"


@dataclass
class Result:
    """What :func:`run` measured (``metrics``, accuracies in percent, as written to results/vit2040.json),
    plus the first seed's models and training curves for the chapter's figures.

    Book section: *ViT with 2040 images* "Quick run".
    """

    metrics: dict
    models: dict = field(default_factory=dict)  # "random init", "pretrained", "fine-tuned", "from scratch"
    history: dict = field(default_factory=dict)  # stage name -> FitResult.history
    seconds: dict = field(default_factory=dict)  # stage name -> wall seconds (not recorded: machine-dependent)
    split: Split | None = None
    claims: list = field(default_factory=list)  # the claim records written with the metrics


class _Resized(nn.Module):
    """Feed an encoder images of another size (uint8 or float): converted, then resized to ``size``."""

    def __init__(self, enc: nn.Module, size: int):
        super().__init__()
        self.enc, self.size = enc, size

    def forward(self, x):
        x = as_float(x)
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return self.enc(x)


def knn_percent(model: nn.Module, split: Split, k: int) -> float:
    """Weighted kNN accuracy (%) of the class-token features (shared toolkit ``companion.ssl.evaluate``).

    Book section: *ViT with 2040 images* "Quick run" (kNN of the class token).
    """
    from ..ssl.evaluate import extract_features, knn_accuracy

    enc = _Resized(encoder(model), model.image_size)
    device = next(model.parameters()).device
    f_tr = extract_features(enc, split.train_x, device=device)
    f_te = extract_features(enc, split.test_x, device=device)
    return 100 * knn_accuracy(f_tr, split.train_y, f_te, split.test_y, k=k)


def linear_percent(model: nn.Module, split: Split, seed: int = 0) -> float:
    """Linear-probe accuracy (%) of the frozen class-token features (the sanity_linear claim).

    Book section: *ViT with 2040 images* "Quick run" (kNN of the class token).
    """
    from ..ssl.evaluate import extract_features, linear_probe

    enc = _Resized(encoder(model), model.image_size)
    device = next(model.parameters()).device
    f_tr = extract_features(enc, split.train_x, device=device)
    f_te = extract_features(enc, split.test_x, device=device)
    return 100 * linear_probe(f_tr, split.train_y, f_te, split.test_y, seed=seed, device=device)


#: The ablation ladder's claims: (claim id, row, the row below it, what the step adds).
LADDER = (
    ("ablation_ls", "ls", "none", "label smoothing in fine-tuning"),
    ("ablation_small_res", "small_res", "ls", "pretraining at half the resolution"),
    ("ablation_multicrop", "multicrop", "small_res", "multi-crop in pretraining"),
    ("ablation_cutmix", "cutmix", "multicrop", "CutMix in pretraining"),
)


def vit_claims(config: Config, per_seed: dict, final_key: str) -> list[dict]:
    """Claims from per-seed accuracies: the premises (each baseline's class token beats the untrained
    ViT's by ``config.learn_margin`` kNN points; CutMix pastes at least a patch in ``config.cutmix_margin``
    % of its draws), pretraining + fine-tuning vs scratch at equal total steps, the linear-probe sanity
    of the pretrained class token, and each step of the ablation ladder (when run).

    Book section: *ViT with 2040 images* "Claims, intervals and verdicts".
    """
    tier, m = config.mode, config.learn_margin
    out = [results.claim(
        "premise_pretrain_learns",
        f"Instance discrimination makes the class token a better kNN feature than at random initialization, "
        f"by at least {m:g} points",
        "kNN accuracy of the class token, pretrained minus untrained, paired by seed", tier,
        per_seed["knn.pretrained"], per_seed["knn.random_init"], margin=m)]
    out.append(results.claim(
        "premise_scratch_learns",
        f"Training from scratch with labels makes the class token a better kNN feature than at random "
        f"initialization, by at least {m:g} points",
        "kNN accuracy of the class token, trained from scratch minus untrained, paired by seed", tier,
        per_seed["knn.scratch"], per_seed["knn.random_init"], margin=m))
    cutmix_premise = ()
    if "cutmix.patch_share" in per_seed:
        cutmix_premise = ("premise_cutmix_pastes",)
        out.append(results.claim(
            "premise_cutmix_pastes",
            f"CutMix pastes a real region: at least {config.cutmix_margin:g} % of its pretraining draws paste "
            "at least one patch's area",
            "share of the pretraining CutMix draws (full recipe) that pasted at least one patch's area, per seed",
            tier, per_seed["cutmix.patch_share"], margin=config.cutmix_margin, unit="%"))
    out.append(results.claim(
        "pretrain_vs_scratch",
        "Instance-discrimination pretraining then fine-tuning beats training the same ViT from scratch for "
        "as many steps",
        "top-1 test accuracy, pretrained + fine-tuned minus from scratch (equal total steps), paired by seed",
        tier, per_seed[f"ablation.{final_key}"], per_seed["scratch"],
        premises=("premise_pretrain_learns", "premise_scratch_learns")))
    out.append(results.claim(
        "sanity_linear", "Pretraining makes the class token a better feature than at random initialization",
        "linear-probe accuracy of the class token, pretrained minus untrained, paired by seed", tier,
        per_seed["linear.pretrained"], per_seed["linear.random_init"]))
    for cid, row, below, what in LADDER:
        if f"ablation.{row}" in per_seed and f"ablation.{below}" in per_seed:
            out.append(results.claim(
                cid, f"Adding {what} raises the fine-tuned accuracy (the paper's ablation ladder)",
                f"top-1 test accuracy, row '{row}' minus row '{below}', paired by seed", tier,
                per_seed[f"ablation.{row}"], per_seed[f"ablation.{below}"],
                premises=cutmix_premise if cid == "ablation_cutmix" else ()))
    return out


def stage_steps(stage: Stage, n: int) -> int:
    """Optimizer steps of ``stage`` on ``n`` images (full batches only, as ``fit`` runs them)."""
    if n < stage.batch_size:
        raise ValueError(f"{n} training images are fewer than one batch of {stage.batch_size}")
    return stage.epochs * (n // stage.batch_size)


def _fit_config(config: Config, stage: Stage, n: int, seed: int, ckpt: Path | None, device,
                steps: int | None = None) -> train.FitConfig:
    per_epoch = n // stage.batch_size
    steps = steps or stage_steps(stage, n)
    return train.FitConfig(
        steps=steps, batch_size=stage.batch_size, lr=stage.lr, weight_decay=stage.weight_decay,
        warmup_steps=min(steps, round(stage.warmup_epochs * per_epoch)), schedule="cosine", seed=seed,
        checkpoint_dir=ckpt, checkpoint_every=max(1, steps // 20) if ckpt else 0, progress=config.progress,
        device=str(device),
    )


def _checkpoints(config: Config) -> Path | None:
    if config.checkpoint_dir:
        return Path(config.checkpoint_dir)
    if config.mode == "full":
        from ..runtime import checkpoint_root

        return checkpoint_root(CHAPTER)
    return None


def expectation(config: Config) -> str:
    """What a full or colab run should show, and on what that rests (printed before it starts)."""
    paper = results.paper_number("vit2040/flowers_ablation_cutmix")
    data = "Flowers-102" if config.dataset == "flowers102" else "digits"
    return (f"top-1 on the {data} test images, the full recipe above the same ViT trained from scratch for as "
            f"many steps (the paper's claim; the size of the gap at this schedule is not verified). The paper's "
            f"Table 8 reports {paper.shown}% on Flowers-102 for the full recipe (backbone and schedule not shown in "
            f"the table); the colab preset's shorter schedule is expected to land lower.")


def announce(config: Config, ckpt: Path | None) -> str:
    """Print the run's estimated T4 time (:func:`~companion.vit2040.estimate.run_hours`), the result to
    expect and where it checkpoints; returns the text."""
    from ..runtime import announce as say
    from .estimate import run_hours

    data = "Flowers-102" if config.dataset == "flowers102" else "digits"
    what = (f"vit2040 on {data}: {config.pretrain.epochs} pretraining + {config.finetune.epochs} fine-tuning "
            f"epochs, {results.plural(len(config.seeds), 'seed')}"
            + (", the ablation ladder" if config.run_ablation else ""))
    return say(what, run_hours(config), expectation(config), ckpt)


def load_split(config: Config) -> Split:
    """The data of ``config``: digits (quick) or Flowers-102 (full).

    Book section: *ViT with 2040 images* "Quick run" and "Full run".
    """
    if config.dataset == "digits":
        return digits_split(config.per_class, config.shape.image_size)
    return flowers_split(train_size=config.shape.image_size * 8 // 7, test_size=config.shape.image_size)


def pretrain_stage(config: Config, ablation: Ablation, split: Split, seed: int, device, ckpt: Path | None):
    """Build a ViT with one class per training image and pretrain it; returns (model, FitResult, seconds).

    Book section: *ViT with 2040 images* "Instance discrimination".
    """
    res = config.pretrain_resolution(ablation)
    seed_everything(seed)
    model = build_vit(config.shape, len(split.train_x), image_size=res)
    step = InstanceDiscrimination(len(split.train_x), res, config.crops, multi_crop=ablation.multi_crop,
                                  cutmix=ablation.cutmix, alpha=config.cutmix_alpha,
                                  patch_size=config.shape.patch_size)
    name = f"pretrain_{res}px" + ("_multicrop" if ablation.multi_crop else "") + ("_cutmix" if ablation.cutmix else "")
    fc = _fit_config(config, config.pretrain, len(split.train_x), seed, ckpt / name if ckpt else None, device)
    began = time.perf_counter()
    fitted = pretrain(model, split.train_x, step, fc)
    return model, fitted, time.perf_counter() - began


def supervised_stage(config: Config, model, ablation: Ablation, split: Split, seed: int, device,
                     ckpt: Path | None, steps: int | None = None):
    """Fine-tune ``model`` (or train it from scratch) on the labels; returns (FitResult, seconds).

    Book section: *ViT with 2040 images* "Fine-tuning".
    """
    n = len(split.train_x)
    step = Supervised(split.num_classes, config.shape.image_size, n // config.finetune.batch_size,
                      augment=config.finetune_augment,
                      label_smoothing=config.label_smoothing if ablation.label_smoothing else 0.0,
                      mix=config.finetune_mix, alpha=config.cutmix_alpha)
    fc = _fit_config(config, config.finetune, n, seed, ckpt, device, steps)
    began = time.perf_counter()
    fitted = train.fit(model, (split.train_x, split.train_y), step, fc, extra_state=step)
    return fitted, time.perf_counter() - began


def _steps(config: Config) -> tuple:
    """The ablation rows to train: the whole ladder, or only the configured recipe (under its row's key)."""
    if config.run_ablation:
        return ABLATION_STEPS
    key = next((k for k, _, a in ABLATION_STEPS if a == config.ablation), "recipe")
    return ((key, key, config.ablation),)


def _one_seed(config: Config, seed: int, first: bool, device=None) -> dict:
    """Everything one seed trains and measures: ``{"values": [(key, value), ...], "history", "seconds",
    "models"}`` (the last three for the first seed only). Seeds share nothing, so they may run in
    parallel processes (``config.workers``) with the same numbers as in a row.
    """
    device = torch.device(device or config.device or pick_device())
    ckpt_root = _checkpoints(config)
    steps = _steps(config)
    values, history, seconds, models = [], {}, {}, {}

    def keep(key, value):
        values.append((key, value))

    with torch_threads(config.threads if device.type == "cpu" else None):
        split = load_split(config)
        on_device = replace(split, train_x=split.train_x.to(device), train_y=split.train_y.to(device))
        n = len(split.train_x)
        scratch_steps = stage_steps(config.pretrain, n) + stage_steps(config.finetune, n)
        # one folder per schedule and seed: another preset never resumes from these checkpoints
        ckpt = ckpt_root / f"{config.pretrain.epochs}+{config.finetune.epochs}ep_seed{seed}" if ckpt_root else None
        pretrained = {}
        for key, _, ablation in steps:
            res = config.pretrain_resolution(ablation)
            pkey = (res, ablation.multi_crop, ablation.cutmix)
            if pkey not in pretrained:
                pretrained[pkey] = pretrain_stage(config, ablation, on_device, seed, device, ckpt)
                if first:
                    history[f"pretrain {key}"] = pretrained[pkey][1].history
                    seconds[f"pretrain {key}"] = pretrained[pkey][2]
            model = resize_vit(pretrained[pkey][0], config.shape.image_size, split.num_classes)
            fitted, secs = supervised_stage(config, model, ablation, on_device, seed, device,
                                            ckpt / f"finetune_{key}" if ckpt else None)
            keep(f"ablation.{key}", 100 * accuracy(model, split.test_x, split.test_y))
            if first:
                seconds[f"finetune {key}"] = secs
        final_ablation = steps[-1][2]
        final_pre, final_fit, _ = pretrained[(config.pretrain_resolution(final_ablation),
                                              final_ablation.multi_crop, final_ablation.cutmix)]
        logged = [h for h in final_fit.history if "cutmix_patch" in h]
        if logged:  # what the full recipe's CutMix pasted, over all its logged draws
            keep("cutmix.patch_share", 100 * sum(h["cutmix_patch"] for h in logged) / len(logged))
            keep("cutmix.area", 100 * sum(h["cutmix_area"] for h in logged) / len(logged))
        keep("knn.pretrained", knn_percent(final_pre, split, config.knn_k))
        keep("linear.pretrained", linear_percent(final_pre, split, seed))
        seed_everything(seed)
        random_init = build_vit(config.shape, len(split.train_x),
                                image_size=config.pretrain_resolution(final_ablation)).to(device)
        keep("knn.random_init", knn_percent(random_init, split, config.knn_k))
        keep("linear.random_init", linear_percent(random_init, split, seed))

        seed_everything(seed)
        scratch = build_vit(config.shape, split.num_classes).to(device)
        fitted, secs = supervised_stage(config, scratch, final_ablation, on_device, seed, device,
                                        ckpt / "scratch" if ckpt else None, steps=scratch_steps)
        keep("scratch", 100 * accuracy(scratch, split.test_x, split.test_y))
        keep("knn.scratch", knn_percent(scratch, split, config.knn_k))
        if config.short_baseline:
            # the same ViT from scratch with only the fine-tuning steps: what pretraining adds as an init
            seed_everything(seed)
            short = build_vit(config.shape, split.num_classes).to(device)
            supervised_stage(config, short, final_ablation, on_device, seed, device,
                             ckpt / "scratch_short" if ckpt else None)
            keep("scratch_short", 100 * accuracy(short, split.test_x, split.test_y))
        if first:
            seconds["scratch"] = secs
            history["scratch"] = fitted.history
            models = {
                "random init": resize_vit(random_init, config.shape.image_size, split.num_classes),
                "pretrained": resize_vit(final_pre, config.shape.image_size, split.num_classes),
                "fine-tuned": model,
                "from scratch": scratch,
            }
    return {"values": values, "history": history, "seconds": seconds, "models": models}


def run(config: Config) -> Result:
    """Pretrain (instance discrimination) + fine-tune vs from scratch, over ``config.seeds``; record it.

    For each seed: every ablation row (or only ``config.ablation`` when ``run_ablation`` is off) is
    pretrained and fine-tuned (rows differing only in label smoothing share their pretraining), and
    the same ViT is trained from scratch for as many steps as pretraining and fine-tuning together
    (and, with ``short_baseline``, for the fine-tuning steps only). Accuracies are on the
    held-out test images; kNN accuracies of the class token compare random and pretrained features.
    On a CPU the seeds run in ``config.workers`` processes at once (one per core).

    Book section: *ViT with 2040 images* "Quick run".
    """
    began = time.perf_counter()
    device = torch.device(config.device) if config.device else pick_device()
    if config.mode == "full":
        announce(config, _checkpoints(config))
    final_key = _steps(config)[-1][0]
    with torch_threads(config.threads if device.type == "cpu" else None):
        split = load_split(config)
        n = len(split.train_x)
        budget = {"pretrain": stage_steps(config.pretrain, n), "finetune": stage_steps(config.finetune, n)}
        budget["scratch"] = budget["pretrain"] + budget["finetune"]  # the same ViT, the same number of steps
    firsts = [seed == config.seeds[0] for seed in config.seeds]
    workers = min(config.workers, len(config.seeds)) if device.type == "cpu" else 1
    if workers > 1:
        # an interrupt stops the seeds' processes at once (nothing is recorded: results.write runs after)
        done = process_map(_one_seed, [config] * len(config.seeds), config.seeds, firsts,
                           [str(device)] * len(config.seeds), workers=workers)
    else:
        done = [_one_seed(config, seed, first, device) for seed, first in zip(config.seeds, firsts)]
    out = Result(metrics={}, split=split, history=done[0]["history"], seconds=done[0]["seconds"],
                 models=done[0]["models"])
    per_seed: dict[str, list[float]] = {}
    for one in done:
        for key, value in one["values"]:
            per_seed.setdefault(key, []).append(value)

    mean = {k: sum(v) / len(v) for k, v in per_seed.items()}
    metrics: dict = {
        "pretrained_finetuned": mean[f"ablation.{final_key}"],
        "scratch": mean["scratch"],
        "gain": mean[f"ablation.{final_key}"] - mean["scratch"],
        **({"scratch_short": mean["scratch_short"]} if "scratch_short" in mean else {}),
        "knn": {k.split(".", 1)[1]: v for k, v in mean.items() if k.startswith("knn.")},
        "linear": {k.split(".", 1)[1]: v for k, v in mean.items() if k.startswith("linear.")},
        **({"cutmix": {k.split(".", 1)[1]: v for k, v in mean.items() if k.startswith("cutmix.")}}
           if "cutmix.area" in mean else {}),
        "seeds": list(config.seeds),
        "per_seed": per_seed,
        "budget_steps": budget,
    }
    metrics["ablation"] = {k.split(".", 1)[1]: v for k, v in mean.items() if k.startswith("ablation.")}
    s = config.shape
    scale = (f"{config.mode}: {split.description}; ViT {s.layers} layers x {s.dim} wide, {s.heads} heads, "
             f"{s.patch_size}-px patches, fine-tuned at {s.image_size} px; {config.pretrain.epochs} pretraining + "
             f"{config.finetune.epochs} fine-tuning epochs vs {budget['scratch']} steps from scratch; "
             f"{results.plural(len(config.seeds), 'seed')}; {device.type}")
    claims = vit_claims(config, per_seed, final_key) if len(config.seeds) >= 2 else []
    results.write(CHAPTER, config.mode, metrics, scale, claims=claims, seeds=list(config.seeds),
                  wall_s=time.perf_counter() - began, timings={k.replace(" ", "_") + "_s": round(v, 2) for k, v in out.seconds.items()},
                  config=config)
    out.metrics = metrics
    out.claims = claims
    return out
