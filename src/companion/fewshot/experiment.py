"""The experiment: pre-train on base classes, then score every method on the same fixed episodes.

``run(config)`` does it all and records the numbers in ``results/fewshot.json``.

Book section: *Worst case* "Quick run" and "Full run".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import results, runtime, train
from ..runtime import pick_device, torch_threads
from .config import METHOD_LABELS, FewShotConfig
from .data import FewShotData, load
from .episodes import Episode, sample_episodes, stack_episodes
from .finetune import EpisodeFineTuner, FineTune, prototype_scores, random_resized_crop
from .metrics import episode_accuracy, summarize
from .model import BlockBackbone, build_backbone

CHAPTER = "fewshot"


@dataclass
class FewShotResult:
    """What :func:`run` measured.

    ``accuracies[shot][method]``: per-episode accuracies in percent, episode order (the same
    episodes for every method). ``metrics``: what was written to ``results/fewshot.json``.
    """

    config: FewShotConfig
    metrics: dict
    accuracies: dict[int, dict[str, np.ndarray]]
    seconds: dict[str, float] = field(default_factory=dict)
    backbone: BlockBackbone | None = None
    data: FewShotData | None = None
    episodes: dict[int, list[Episode]] = field(default_factory=dict)
    claims: list = field(default_factory=list)
    by_seed: list = field(default_factory=list)  # accuracies of every seed (the first is ``accuracies``)

    def table(self, shot: int, digits: int = 1, names: list[str] | None = None, labels: dict | None = None) -> str:
        """A Markdown table of the methods' mean, std, 95% interval of the mean, acc1, acc10 (and
        acc100 when there are more than 100 episodes) and the paired difference to plain fine-tuning."""
        block = self.metrics[f"{shot}shot"]
        names = [n for n in (names or self.config.methods) if n in block]
        n = block[names[0]]["n"]
        worst = ["acc1", "acc10"] + (["acc100"] if n > 100 else [])
        head = ["method", "mean", "std", "95% CI of mean", *worst, "mean − fine-tune (paired 95% CI)"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in names:
            s = block[name]
            d = s.get("vs_finetune")
            diff = "—" if d is None else f"{d['mean']:+.{digits}f} ± {d['ci95']:.{digits}f}"
            cells = [(labels or {}).get(name) or method_label(name), f"{s['mean']:.{digits}f}", f"{s['std']:.{digits}f}",
                     f"± {s['ci95']:.{digits}f}", *[_fmt(s[w], digits) for w in worst], diff]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def ac_table(self, shot: int, digits: int = 1) -> str:
        """Fine-tune + SR with the last 1, 2, ... blocks trainable (AC's knob), all blocks last."""
        sweep = sorted({self.config.tune_blocks, *self.config.ac_sweep})
        names = [("ac_sr" if t == self.config.tune_blocks else f"sr_tune{t}") for t in sweep] + ["sr"]
        labels = {n: f"last {t} block{'s' if t > 1 else ''} + head" for n, t in zip(names, sweep)}
        labels["sr"] = "every block + head (no AC)"
        return self.table(shot, digits, [n for n in names if n in self.metrics[f"{shot}shot"]], labels)


def _fmt(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def method_label(name: str) -> str:
    """Readable name of a method key (``sr_tune2`` is fine-tune + SR with the last 2 blocks trainable)."""
    if name.startswith("sr_tune"):
        return f"fine-tune + SR, last {name.removeprefix('sr_tune')} blocks (AC)"
    return METHOD_LABELS.get(name, name)


def paired_difference(a, b) -> dict:
    """Mean and 95% half-interval of the per-episode difference ``a - b`` (same episodes).

    Book section: *Worst case* "Quick run".
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.ndim != 1 or d.size < 2:
        raise ValueError("need two equally long 1-D lists of at least two episode accuracies")
    return {"mean": float(d.mean()), "ci95": float(1.96 * d.std(ddof=1) / np.sqrt(d.size))}


#: The steps of the paper's recipe, each compared with the method it adds to.
STEPS = (("sr", "finetune", "adding SR to fine-tuning"), ("ac_sr", "sr", "adding AC (only the last block moves)"),
         ("ac_ensr", "ac_sr", "adding the ensemble"))


def findings(result: FewShotResult, shot: int) -> list[str]:
    """One sentence per step of the recipe (SR, AC, ensemble): how the mean, std, acc1 and acc10
    moved, and whether the change of the mean is larger than its paired 95% interval.

    Book section: *Worst case* "Quick run".
    """
    accs, block = result.accuracies[shot], result.metrics[f"{shot}shot"]
    out = []
    for new, old, what in STEPS:
        if new not in accs or old not in accs:
            continue
        d = paired_difference(accs[new], accs[old])
        a, b = block[new], block[old]
        verdict = "beyond" if abs(d["mean"]) > d["ci95"] else "within"
        out.append(
            f"{shot}-shot, {what}: mean {d['mean']:+.1f} (paired 95% interval ±{d['ci95']:.1f}, {verdict} the noise), "
            f"std {b['std']:.1f} → {a['std']:.1f}, acc1 {b['acc1']:.1f} → {a['acc1']:.1f}, "
            f"acc10 {_fmt(b['acc10'])} → {_fmt(a['acc10'])}."
        )
    return out


class _Classifier(nn.Module):
    def __init__(self, backbone: BlockBackbone, n_classes: int):
        super().__init__()
        self.backbone, self.fc = backbone, nn.Linear(backbone.feature_dim, n_classes)

    def forward(self, x):
        return self.fc(self.backbone(x))


def pretrain(backbone: BlockBackbone, images: torch.Tensor, labels: torch.Tensor, config: FewShotConfig,
             device: torch.device, checkpoint_dir: Path | None = None) -> train.FitResult:
    """Train ``backbone`` with a linear head on the base classes (cross-entropy with label smoothing
    0.1, random resized crops) through :func:`companion.train.fit`; the head is then discarded.

    Book section: *Worst case* "Base and novel classes".
    """
    model = _Classifier(backbone, int(labels.max()) + 1)

    def step(model, batch):
        x, y = batch
        if config.pretrain_crop is not None:
            x = random_resized_crop(x, config.pretrain_crop, config.pretrain_flip)
        logits = model(x)
        return {"loss": F.cross_entropy(logits, y, label_smoothing=0.1),
                "acc": (logits.argmax(1) == y).float().mean().detach()}

    fit_config = train.FitConfig(
        steps=config.pretrain_steps, batch_size=config.pretrain_batch, lr=config.pretrain_lr,
        optimizer=config.pretrain_optimizer, weight_decay=config.pretrain_weight_decay,
        warmup_steps=config.pretrain_warmup, seed=config.seed, progress=config.progress,
        log_every=max(1, config.pretrain_steps // 50), device=str(device),
        checkpoint_dir=checkpoint_dir, checkpoint_every=1000 if checkpoint_dir else 0,
    )
    if device.type == "cuda":
        images, labels = images.to(device), labels.to(device)
    result = train.fit(model, (images, labels), step, fit_config)
    backbone.eval()
    return result


def _run_seed(config: FewShotConfig, shot: int, episode: int, member: int) -> int:
    # the head of member m in episode e is the same for every method: paired comparisons
    return (config.seed * 1_000_003 + shot * 10_007 + episode) * 16 + member


def evaluate(method: FineTune | None, backbone: BlockBackbone, data: FewShotData, episodes: list[Episode],
             config: FewShotConfig, device: torch.device, shot: int, progress_file: Path | None = None,
             desc: str = "") -> np.ndarray:
    """Per-episode accuracies (percent) of one method on ``episodes``, ``config.chunk`` episodes at a time.

    ``method=None`` is the nearest-class-mean baseline. With ``progress_file`` the accuracies of
    finished chunks are saved atomically and a restarted run continues after the last one.

    Book section: *Worst case* "Quick run".
    """
    done: list[float] = []
    # what the saved accuracies depend on; a file written under other settings is not reused
    key = repr((config.seed, config.dataset, config.backbone, config.widths, config.pretrain_steps, config.n_way,
                shot, config.q_query, config.chunk, method))
    if progress_file is not None and progress_file.exists():
        saved = torch.load(progress_file, weights_only=False)
        if saved.get("key") == key:
            done = list(saved["accuracies"])
    if len(done) >= len(episodes):
        return np.asarray(done[: len(episodes)], dtype=np.float64)
    tuner = None
    base_images = None
    if method is not None:
        base_images = data.images[torch.as_tensor(data.base_indices())] if method.beta > 0 else None
        tuner = EpisodeFineTuner(backbone, base_images, method, config.n_way, device, seed=config.seed)
    from tqdm.auto import tqdm

    starts = range(len(done), len(episodes), config.chunk)
    for start in tqdm(starts, desc=desc, disable=not config.progress, leave=False):
        chunk = episodes[start : start + config.chunk]
        s, sy, q, qy = stack_episodes(chunk)
        sx, qx = data.images[s], data.images[q]  # (E, NK, C, H, W), (E, NQ, C, H, W)
        if tuner is None:
            scores = prototype_scores(backbone, sx, sy, qx, config.n_way, device)
        else:
            seeds = [_run_seed(config, shot, start + e, m) for e in range(len(chunk)) for m in range(method.members)]
            scores, _ = tuner(sx.to(device), sy.to(device), qx.to(device), seeds, seed=config.seed * 7919 + shot * 101 + start)
        done.extend(episode_accuracy(scores, qy).tolist())
        if progress_file is not None:
            train.atomic_save({"accuracies": done, "key": key}, progress_file)
    return np.asarray(done[: len(episodes)], dtype=np.float64)


def flop_estimate(config: FewShotConfig) -> dict:
    """Floating-point operations of a run, in PFLOP, counted (forward on one image with
    :class:`torch.utils.flop_counter.FlopCounterMode`; backward taken as twice the forward) and
    multiplied out over pre-training steps, episodes, fine-tuning steps, SR images and members.
    An estimate of the work, from which a run time follows for an assumed throughput.

    Book section: *Worst case* "Full run".
    """
    from ..flops import count_flops
    from .model import split_backbone

    shape = {"digits": (1, 8, 8), "cifar_fs": (3, 32, 32)}[config.dataset]
    net = build_backbone(config.backbone, shape, config.widths, config.dropout).eval()
    x = torch.zeros(1, *shape)

    def flops(module, inp):
        with torch.no_grad():
            return count_flops(module, inp)

    full = flops(net, x)
    out = {"pretrain": config.pretrain_steps * config.pretrain_batch * 3 * full / 1e15}
    names = [(n, config.method(n)) for n in config.methods]
    names += [(f"sr_tune{t}", config.method("sr", tune_blocks=t)) for t in config.ac_sweep]
    for name, m in names:
        total = 0.0
        for shot in config.shots:
            nk, nq = config.n_way * shot, config.n_way * config.q_query
            if m is None:
                total += (nk + nq) * full
                continue
            prefix, tail = split_backbone(net, m.tune_blocks)
            tail_f = flops(tail.eval(), prefix(x))
            per_step = nk * (3 * tail_f + full - tail_f) + (m.aux_batch * 3 * tail_f if m.beta > 0 else 0)
            total += m.members * (m.steps * per_step + nq * full)
        out[name] = config.n_episodes * total / 1e15
    out["total"] = sum(out.values())
    return out


#: Base images per data set (CIFAR-FS: 64 classes of 600; digits 0-4): what an epoch of pre-training is.
BASE_IMAGES = {"cifar_fs": 38_400, "digits": 901}


def run_hours(config: FewShotConfig | None = None) -> runtime.TimeEstimate:
    """The estimated Colab T4 time of ``config`` (default: the full preset), from :func:`flop_estimate`
    (counted FLOPs: pre-training steps, and per episode every method's fine-tuning) at the throughput
    assumed in :data:`runtime.T4_FLOPS`, once per seed.

    Book section: *Worst case* "Full run".
    """
    from .config import full

    cfg = config or full()
    work = flop_estimate(cfg)
    seeds = len(cfg.seeds) or 1
    images = cfg.pretrain_steps * cfg.pretrain_batch
    # the episodes' work counted in fine-tuning steps (each member's, every method's, every episode's);
    # prototypes' forward passes ride along in the FLOPs
    methods = [cfg.method(n) for n in cfg.methods] + [cfg.method("sr", tune_blocks=t) for t in cfg.ac_sweep]
    steps = cfg.n_episodes * len(cfg.shots) * max(1, sum(m.members * m.steps for m in methods if m is not None))
    episode_flops = sum(v for k, v in work.items() if k not in ("pretrain", "total")) * 1e15
    parts = [("pre-training", runtime.estimate_hours(
                  BASE_IMAGES[cfg.dataset], images / BASE_IMAGES[cfg.dataset],
                  runtime.items_per_second(work["pretrain"] * 1e15 / images), runs=seeds)),
             ("episodes (items: fine-tuning steps of every method and member)", runtime.estimate_hours(
                  steps, 1, runtime.items_per_second(episode_flops / steps), runs=seeds))]
    return runtime.TimeEstimate(sum(p.hours for _, p in parts),
                                "; ".join(f"{name}: {p.basis}" for name, p in parts)
                                + "; FLOPs counted (fewshot.flop_estimate) at runtime.T4_FLOPS (assumed)")


#: What a full (or colab) run should show, and on what basis (printed when it starts).
FULL_EXPECT = ("AC+EnSR above plain fine-tuning in the worst episodes (acc1 per block of 20) and in the mean, and AC "
               "raising the 5-shot mean of fine-tuning with SR: the paper's direction. Its CIFAR-FS numbers could "
               "not be verified (and it starts from other weights), so no value is expected.")


def checkpoint_folder(config: FewShotConfig) -> Path | None:
    """Where ``config``'s pre-training checkpoints and finished episode chunks go: ``checkpoint_dir``
    (default for the full and colab presets: ``runtime.checkpoint_root("fewshot")``) / ``seed<seed>``, one
    folder per seed so that another seed never resumes them; None when nothing is checkpointed."""
    if config.checkpoint_dir is not None:
        root = Path(config.checkpoint_dir)
    elif config.preset == "full":
        root = runtime.checkpoint_root(CHAPTER)
    else:
        return None
    return root / f"seed{config.seed}"


def run_one(config: FewShotConfig) -> FewShotResult:
    """Pre-train with ``config.seed``, draw its fixed episodes, score every method on them and return
    the numbers (nothing is recorded; :func:`run` records).

    Book section: *Worst case* "Quick run" and "Full run".
    """
    began = time.perf_counter()
    device = pick_device(config.device)
    ckpt = checkpoint_folder(config)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    data = load(config.dataset, config.data_root, config.download)
    torch.manual_seed(config.seed)
    backbone = build_backbone(config.backbone, tuple(data.images.shape[1:]), config.widths, config.dropout)
    base_x, base_y = data.base_set()
    history = pretrain(backbone, base_x, base_y, config, device, ckpt / "pretrain" if ckpt else None)
    backbone.to(device).eval()
    seconds["pretrain"] = time.perf_counter() - t

    accuracies: dict[int, dict[str, np.ndarray]] = {}
    metrics: dict = {}
    all_episodes = {}
    labels = data.labels.numpy()
    for shot in config.shots:
        episodes = sample_episodes(labels, data.novel_classes, config.n_way, shot, config.q_query, config.n_episodes,
                                   seed=config.seed * 1000 + shot)
        all_episodes[shot] = episodes
        accuracies[shot] = {}
        runs = [(name, config.method(name)) for name in config.methods]
        runs += [(f"sr_tune{t}", config.method("sr", tune_blocks=t)) for t in config.ac_sweep]
        for name, method in runs:
            t = time.perf_counter()
            progress = ckpt / "episodes" / f"{shot}shot_{name}.pt" if ckpt else None
            accuracies[shot][name] = evaluate(method, backbone, data, episodes, config, device, shot, progress,
                                              desc=f"{shot}-shot {name}")
            seconds[f"{shot}shot/{name}"] = time.perf_counter() - t
        block = {name: summarize(acc) for name, acc in accuracies[shot].items()}
        if "finetune" in accuracies[shot]:
            for name, acc in accuracies[shot].items():
                if name != "finetune":
                    block[name]["vs_finetune"] = paired_difference(acc, accuracies[shot]["finetune"])
        metrics[f"{shot}shot"] = block
    metrics["pretrain_base_accuracy"] = 100 * history.last("acc")
    seconds["total"] = time.perf_counter() - began  # returned, not recorded: results stay reproducible

    n_base = len(data.base_indices())
    scale = (
        f"{config.preset}: {data.name}, {len(data.base_classes)} base / {len(data.novel_classes)} novel classes "
        f"({n_base} base images), {config.backbone} {config.widths}, {config.n_way}-way "
        f"{'/'.join(map(str, config.shots))}-shot, {config.q_query} queries, {config.n_episodes} fixed episodes, "
        f"{config.finetune.steps} fine-tuning steps, {device.type}"
    )
    metrics["scale"] = scale
    return FewShotResult(config, metrics, accuracies, seconds, backbone, data, all_episodes)


def block_worst(accuracies, block: int = 20) -> np.ndarray:
    """The worst episode of each run of ``block`` consecutive episodes: ``(n,) -> (n // block,)``.

    :math:`\text{acc}_1` of a block of 20 episodes is the accuracy a user meets once in 20 tries
    (the worst 5%). Blocks give several worst cases from one set of episodes, so the worst case
    gets an interval like the mean.

    Book section: *Worst case* "Claims, intervals and verdicts".
    """
    a = np.asarray(accuracies, dtype=np.float64)
    if a.ndim != 1 or a.size < 2 * block:
        raise ValueError(f"need at least {2 * block} episode accuracies for blocks of {block}, got shape {a.shape}")
    return a[: a.size // block * block].reshape(-1, block).min(axis=1)


def claims_from(tier: str, by_seed: list[dict], block: int = 20) -> list[dict]:
    """The chapter's claims from per-episode accuracies (``by_seed[i][shot][method]``).

    Worst case (AC+EnSR minus fine-tuning): the worst episode per block of ``block`` episodes,
    paired over blocks (one seed) or over seeds (several; each seed's mean over its blocks).
    Mean: with several seeds, each seed's mean over its episodes, paired over seeds: the seed redraws
    the network, so episodes of one seed are not independent units; with one seed, paired over its
    episodes (an interval conditional on that one network).
    Each claim is stated in the paper's direction (AC is meant to help), so a finding against the
    paper reads "does not hold".

    Book section: *Worst case* "Claims, intervals and verdicts".
    """
    def worst(shot, method):
        per = [block_worst(acc[shot][method], block) for acc in by_seed]
        return per[0] if len(per) == 1 else np.array([p.mean() for p in per])

    def episodes(shot, method):
        if len(by_seed) == 1:
            return np.asarray(by_seed[0][shot][method], dtype=np.float64)
        return np.array([np.mean(acc[shot][method]) for acc in by_seed])

    unit = "episodes of one seed" if len(by_seed) == 1 else "seeds (each the mean over its episodes)"

    over = f"blocks of {block} episodes" if len(by_seed) == 1 else f"seeds (each the mean over its blocks of {block})"
    out = []
    for shot in (1, 5):
        if not all(shot in acc and {"ac_ensr", "finetune"} <= set(acc[shot]) for acc in by_seed):
            continue
        out.append(results.claim(
            f"worst_case_{shot}shot",
            f"In {shot}-shot episodes, fine-tuning with SR, AC and the ensemble (AC+EnSR) raises the worst case "
            "over plain fine-tuning.",
            f"worst episode accuracy per block of {block} episodes, AC+EnSR minus fine-tune, {shot}-shot, "
            f"paired over {over}", tier, worst(shot, "ac_ensr"), worst(shot, "finetune")))
        out.append(results.claim(
            f"mean_{shot}shot",
            f"In {shot}-shot episodes, AC+EnSR raises the mean accuracy over plain fine-tuning.",
            f"mean episode accuracy, AC+EnSR minus fine-tune, {shot}-shot, paired over {unit}",
            tier, episodes(shot, "ac_ensr"), episodes(shot, "finetune")))
    if all(5 in acc and {"ac_sr", "sr"} <= set(acc[5]) for acc in by_seed):
        out.append(results.claim(
            "ac_raises_mean",
            "Adaptability calibration (only the last block moves) raises the 5-shot mean accuracy of "
            "fine-tuning with SR (the paper: AC reduces the bias).",
            f"mean episode accuracy, SR+AC minus SR, 5-shot, paired over {unit}", tier,
            episodes(5, "ac_sr"), episodes(5, "sr")))
    return out


def run(config: FewShotConfig) -> FewShotResult:
    """Run every seed of the preset (:func:`run_one`), compute the claims and record
    ``results/fewshot.json`` under the preset's tier; returns the first seed's result with the
    claims and every seed's accuracies.

    Book section: *Worst case* "Quick run" and "Full run".
    """
    from dataclasses import replace

    began = time.perf_counter()
    seeds = config.seeds or (config.seed,)
    if config.preset == "full":
        runtime.announce(f"Worst-case few-shot on {config.dataset}: pre-training, then {config.n_episodes} episodes "
                         f"of each of {'/'.join(map(str, config.shots))}-shot", run_hours(config), FULL_EXPECT,
                         checkpoint_folder(config).parent)
    with torch_threads(config.threads):
        outs = [run_one(replace(config, seed=s)) for s in seeds]
    first = outs[0]
    by_seed = [o.accuracies for o in outs]
    claims = claims_from(config.preset, by_seed) if config.n_episodes >= 40 else []  # 2 blocks of 20
    metrics = dict(first.metrics)
    scale = metrics.pop("scale") + (f"; {len(seeds)} seeds" if len(seeds) > 1 else "")
    if len(seeds) > 1:
        metrics["by_seed"] = [{k: v for k, v in o.metrics.items() if k != "scale"} for o in outs]
    timings = {"seconds": {f"seed{s}": o.seconds for s, o in zip(seeds, outs)}, "wall_s": time.perf_counter() - began}
    results.write(CHAPTER, config.preset, metrics, scale, claims=claims, seeds=list(seeds), timings=timings,
                  preset=config.preset, config=config)
    first.metrics, first.claims, first.by_seed = metrics, claims, by_seed
    return first


